"""A column that arrives later is normal (issue 24, case 4): a vendor adds ``exchange`` and
``fee`` on day 4. The first backfill of a fresh namespace runs every day; the aggregates over
those columns are null on the days before them, and end the same whatever order the days ran
in; ``validate --sources`` names the file it opened and calls the column a warning while the
dataset takes new columns (an error with ``on_schema_change=fail``)."""

from __future__ import annotations

import pandas as pd
import pytest

import pipelines
from pipelines.cli import main
from pipelines.steps.dataset import run_steps
from tests.conftest import write_registry
from tests.integration.test_run_command import lines

HEADER = "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date"
DAYS = [f"2024-01-0{d}" for d in range(1, 7)]
AGGREGATES = """\
- {name: by_exchange, dataset: trades, group_by: [exchange],
   metrics: {trades: count, fees: 'sum:fee', avg_fee: 'mean:fee', venue: 'max:exchange'}}
- {name: daily, dataset: trades, metrics: {trades: count, qty: 'sum:qty', fees: 'sum:fee'}}
"""


def project(home, change: str = "") -> None:
    row = f"trades,t_{{ds}}.csv,id,ts,ts,incremental,{DAYS[0]}"
    header = HEADER + (",on_schema_change" if change else "")
    write_registry(home, f"{header}\n{row}{',' + change if change else ''}\n")
    (home / "include" / "aggregates.yaml").write_text(AGGREGATES)
    for n, day in enumerate(DAYS, start=1):
        later = n >= 4  # the vendor adds exchange and fee on day 4
        text = "id,ts,qty" + (",exchange,fee" if later else "") + "\n"
        for i in range(3):
            text += f"{n}{i},{day}T0{i}:00:00Z,{i + 1}"
            text += f",{'LSE' if i == 0 else 'NYSE'},{2 * i}\n" if later else "\n"
        (home / "include" / f"t_{day}.csv").write_text(text)


def test_the_first_backfill_runs_every_day_and_earlier_days_aggregate_null(
    home, airflow_db, capsys
):
    project(home)
    assert main(["backfill", "trades", "--start", DAYS[0], "--end", DAYS[-1]]) == 0
    out = lines(capsys)
    assert out[0] == f"starting 6 runs of trades: {DAYS[0]} .. {DAYS[-1]}"
    assert all(line.startswith("ok   local__trades ") for line in out[1:7]), out
    assert out[1].endswith("s): raw 3, cleaned 3, quarantined 0, by_exchange 1 row, daily 1 row")
    assert out[4].endswith("by_exchange 5 rows, daily 4 rows")  # day 4 recomputes every day
    assert out[7] == "6/6 runs succeeded"
    by_exchange = pipelines.read("by_exchange", "aggregated").set_index(["dt", "exchange"])
    for day in DAYS[:3]:
        row = by_exchange.xs(day, level="dt")
        assert len(row) == 1 and pd.isna(row.index[0])  # one group: no exchange yet
        assert row["trades"].iloc[0] == 3
        assert all(pd.isna(row[c].iloc[0]) for c in ("fees", "avg_fee", "venue"))
    later = by_exchange.loc[(DAYS[3], "NYSE")]
    assert (later["trades"], later["fees"], later["avg_fee"], later["venue"]) == (2, 6, 3.0, "NYSE")
    daily = pipelines.read("daily", "aggregated").set_index("dt")
    assert list(daily["qty"]) == [6] * 6 and list(daily["trades"]) == [3] * 6
    assert daily.loc[DAYS[:3], "fees"].isna().all() and list(daily.loc[DAYS[3:], "fees"]) == [6] * 3


def test_the_days_end_the_same_in_any_order(home, monkeypatch):
    project(home)
    ends = []
    for name, order in (("forward", DAYS), ("backward", DAYS[::-1])):
        monkeypatch.setenv("PIPELINES_LAKE", str(home / name))
        for day in order:
            run_steps("trades", day)
        ends.append({a: pipelines.read(a, "aggregated") for a in ("by_exchange", "daily")})
    for name, frame in ends[0].items():
        other = ends[1][name]
        keys = ["dt", "exchange"] if name == "by_exchange" else ["dt"]
        pd.testing.assert_frame_equal(
            frame.sort_values(keys, ignore_index=True), other.sort_values(keys, ignore_index=True)
        )
    assert str(ends[0]["daily"]["fees"].dtype) == "Int64"  # the sum of the int column


@pytest.mark.parametrize("change", ["", "fail"])
def test_validate_sources_names_the_file_and_warns_while_new_columns_are_allowed(
    home, capsys, change
):
    project(home, change)
    assert main(["validate", "--sources"]) == (1 if change else 0)
    captured = capsys.readouterr()
    assert f"trades: opened t_{DAYS[0]}.csv" in captured.err
    said = "error" if change else "warning"
    problem = (
        "aggregates.yaml: by_exchange: column 'exchange' is not in the source of dataset trades "
        f"(t_{DAYS[0]}.csv)"
    )
    found = [line for line in (captured.out + captured.err).splitlines() if problem in line]
    assert found, captured
    assert all(line.startswith("warning: ") == (said == "warning") for line in found), found
