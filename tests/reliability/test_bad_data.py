"""Bad data: quarantined with a reason and counted, never silently dropped and never in cleaned;
deterministic duplicate winners; empty intervals; shrinking snapshots; schema drift; quality
checks that block the aggregate step."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from pipelines.common.partitions import parse_date
from pipelines.exceptions import QualityCheckFailed, SchemaDriftError
from tests.reliability import workload
from tests.reliability.workload import DAYS, Env, fingerprint, read_table

DUPLICATE = "duplicate key in this delivery: superseded by a later version"
MINI = "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,{extra}\n"


def mini(home, rows: str, files: dict[str, str], extra: str = "start_date") -> Env:
    """A one-dataset project ``m`` (per-day CSV ``m_{ds}.csv``) with the given deliveries."""
    include = home / "include"
    include.mkdir(parents=True)
    (include / "registry.csv").write_text(MINI.format(extra=extra) + rows)
    for day, text in files.items():
        (include / f"m_{day}.csv").write_text(text)
    return Env(str(home), str(home / "lake"))


def expected_winners(delivery: pd.DataFrame) -> pd.DataFrame:
    """Independently: per key, the greatest updated_at, then the later row of the file."""
    valid = delivery[delivery["entry_id"].notna()].copy()
    valid["_t"] = pd.to_datetime(valid["updated_at"], utc=True, errors="coerce")
    valid["_b"] = pd.to_datetime(valid["booked_on"], utc=True, errors="coerce")
    valid = valid[valid["_t"].notna() & valid["_b"].notna()]
    valid["_pos"] = range(len(valid))
    ranked = valid.sort_values(["entry_id", "_t", "_pos"])
    return ranked.drop_duplicates("entry_id", keep="last").set_index("entry_id")


def test_bad_rows_are_quarantined_with_reason_counted_and_not_in_cleaned(project, fast_dir):
    env = Env(str(project), str(fast_dir / "lake"))
    out = _run_one(env, "ledger", DAYS[0])
    raw = read_table(env, "ledger", "raw")
    cleaned = read_table(env, "ledger", "cleaned")
    quarantine = read_table(env, "ledger", "quarantine")
    where = fast_dir / "lake" / "local" / "quarantine" / "ledger" / f"ds={DAYS[0]}"
    assert where.is_dir() and any(where.glob("*.parquet"))
    assert sorted(quarantine["_reason"].unique()) == [
        "booked_on: missing or not an ISO 8601 timestamp",
        DUPLICATE,
        "entry_id: primary key is null",
        "updated_at: missing or not an ISO 8601 timestamp",
    ]
    assert out["merge"].quarantined == len(quarantine) == 11  # 2 null, 2 bad stamps, 7 dupes
    assert out["merge"].superseded == 7
    # nothing dropped silently: every raw row is in cleaned or in quarantine, once
    assert sorted([*cleaned["_row"], *quarantine["_row"]]) == sorted(raw["_row"])
    assert not {"E00bad1", "E00bad2"} & set(cleaned["entry_id"])


def _run_one(env: Env, name: str, day: str, steps=None) -> dict:
    from pipelines.steps.dataset import STEPS, run_steps

    with env.active():
        return run_steps(name, day, steps or STEPS, project=env.project(), lake=env.lake_obj())


def test_duplicate_keys_have_one_deterministic_winner(project, fast_dir):
    env = Env(str(project), str(fast_dir / "lake"))
    _run_one(env, "ledger", DAYS[0])
    source = pd.read_csv(project / "include" / "data" / f"ledger_{DAYS[0]}.csv", dtype="string")
    want = expected_winners(source)
    got = read_table(env, "ledger", "cleaned").set_index("entry_id")
    assert sorted(got.index) == sorted(want.index)
    assert (got.loc[want.index, "amount"].astype(float) == want["amount"].astype(float)).all()
    ties = source[source["amount"] == "9.99"]["entry_id"]
    assert len(ties) == 2 and (got.loc[ties, "amount"] == 9.99).all()  # later row of the file
    losers = read_table(env, "ledger", "quarantine").query("_reason == @DUPLICATE")
    assert len(losers) == 7 and set(losers["entry_id"]) <= set(want.index)


def test_an_empty_interval_is_a_success_with_zero_rows(fast_dir):
    header = "id,amount,updated_at,day\n"
    row = "m,m_{ds}.csv,csv,id,updated_at,day,incremental,2024-01-01\n"
    env = mini(
        fast_dir,
        row,
        {
            "2024-01-01": header + "1,5,2024-01-01T01:00:00Z,2024-01-01\n",
            "2024-01-02": "",
            "2024-01-03": header,
        },
    )
    before = None
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        out = _run_one(env, "m", day, ["extract", "merge", "check_keys"])
        if before is not None:
            assert out["extract"]["rows"] == 0 and out["merge"].delivered == 0
            assert out["merge"].touched == [] and out["check_keys"]["rows_checked"] == 0
            assert fingerprint(read_table(env, "m", "cleaned")) == before
        before = fingerprint(read_table(env, "m", "cleaned"))


def test_clicks_interval_with_no_events_is_empty_not_an_error(project, fast_dir):
    env = Env(str(project), str(fast_dir / "lake"))
    out = _run_one(env, "clicks", "2024-03-01")  # after the file's last event
    assert out["merge"].delivered == 0 and out["check_keys"]["rows_checked"] == 0
    assert out["merge"].quarantined == 1  # the one unparseable event belongs to no interval


SNAP_HEADER = "id,name,updated_at,day\n"


def snapshot_rows(n: int) -> str:
    return SNAP_HEADER + "".join(f"{i},n{i},2024-01-01T00:00:00Z,2024-01-01\n" for i in range(n))


@pytest.mark.parametrize(
    ("kept", "limit", "fails"), [(4, "", True), (6, "", False), (4, "70", False), (9, "5", True)]
)
def test_full_snapshot_shrinking_past_max_drop_pct_is_refused(fast_dir, kept, limit, fails):
    row = f"m,m_{{ds}}.csv,csv,id,updated_at,day,full,2024-01-01,{limit}\n"
    files = {"2024-01-01": snapshot_rows(10), "2024-01-02": snapshot_rows(kept)}
    env = mini(fast_dir, row, files, extra="start_date,max_drop_pct")
    _run_one(env, "m", "2024-01-01")
    before = fingerprint(read_table(env, "m", "cleaned"))
    if not fails:
        _run_one(env, "m", "2024-01-02")
        assert workload.read_table(env, "m", "cleaned").groupby("ds").size().to_dict() == {
            "2024-01-01": 10,
            "2024-01-02": kept,
        }
        return
    with pytest.raises(
        QualityCheckFailed,
        match=rf"drop of {100 - kept * 10}% is over "
        r"max_drop_pct=\d+; the current snapshot is kept",
    ):
        _run_one(env, "m", "2024-01-02")
    assert fingerprint(read_table(env, "m", "cleaned")) == before


DRIFT_ROW = "m,m_{{ds}}.csv,csv,id,updated_at,day,incremental,2024-01-01,{policy}\n"
DAY1 = "id,amount,note,updated_at,day\n1,5,a,2024-01-01T01:00:00Z,2024-01-01\n"


@pytest.mark.parametrize(
    ("policy", "day2", "error"),
    [
        (
            "append",
            "id,amount,note,updated_at,day,channel\n2,7,b,2024-01-02T01:00:00Z,2024-01-02,web\n",
            None,
        ),
        (
            "",
            "id,amount,note,updated_at,day,channel\n2,7,b,2024-01-02T01:00:00Z,2024-01-02,web\n",
            None,
        ),
        (
            "append",
            "id,amount,note,updated_at,day\n2,lots,b,2024-01-02T01:00:00Z,2024-01-02\n",
            "column 'amount' changed type from int to string",
        ),
        (
            "fail",
            "id,amount,note,updated_at,day,channel\n2,7,b,2024-01-02T01:00:00Z,2024-01-02,web\n",
            "new column 'channel' in the source and on_schema_change is 'fail'",
        ),
        (
            "fail",
            "id,amount,updated_at,day\n2,7,2024-01-02T01:00:00Z,2024-01-02\n",
            "column 'note' is missing from the source",
        ),
    ],
    ids=[
        "append-new-column",
        "default-is-append",
        "type-change",
        "fail-on-new-column",
        "fail-on-missing-column",
    ],
)
def test_schema_drift_follows_on_schema_change(fast_dir, policy, day2, error):
    env = mini(
        fast_dir,
        DRIFT_ROW.format(policy=policy),
        {"2024-01-01": DAY1, "2024-01-02": day2},
        extra="start_date,on_schema_change",
    )
    _run_one(env, "m", "2024-01-01")
    before = fingerprint(read_table(env, "m", "cleaned"))
    if error is None:
        _run_one(env, "m", "2024-01-02")
        cleaned = read_table(env, "m", "cleaned").set_index("id")  # CSV keys: the text
        assert cleaned.loc["2", "channel"] == "web" and pd.isna(cleaned.loc["1", "channel"])
        return
    with pytest.raises(SchemaDriftError, match=f"m: {error}.*previous data is unchanged"):
        _run_one(env, "m", "2024-01-02")
    assert fingerprint(read_table(env, "m", "cleaned")) == before


def test_a_row_a_later_delivery_supersedes_leaves_cleaned_and_stays_in_raw(fast_dir):
    """What the README says of rows superseded across deliveries: not quarantined again, kept in
    the raw delivery they came in."""
    env = mini(
        fast_dir,
        "m,m_{ds}.csv,csv,id,updated_at,day,incremental,2024-01-01\n",
        {
            "2024-01-01": "id,amount,updated_at,day\n1,5,2024-01-01T01:00:00Z,2024-01-01\n",
            "2024-01-02": "id,amount,updated_at,day\n1,7,2024-01-02T01:00:00Z,2024-01-01\n",
        },
    )
    for day in ("2024-01-01", "2024-01-02"):
        _run_one(env, "m", day)
    assert read_table(env, "m", "cleaned")["amount"].tolist() == [7]
    assert read_table(env, "m", "quarantine").empty
    raw = read_table(env, "m", "raw")
    assert raw.set_index("ds")["amount"].to_dict() == {"2024-01-01": "5", "2024-01-02": "7"}


EVOLVING_ROW = "m,m_{ds}.csv,csv,id,ts,ts,incremental,2024-01-01,\n"
EVOLVING = {  # a column added on day 2, one dropped on day 3, a type widened (int -> float)
    "2024-01-01": "id,reading,ts\n1,5,2024-01-01T01:00:00Z\n2,6,2024-01-01T02:00:00Z\n",
    "2024-01-02": "id,reading,ts,unit\n3,7,2024-01-02T01:00:00Z,kWh\n",
    "2024-01-03": "id,ts,unit\n4,2024-01-03T01:00:00Z,Wh\n1,2024-01-03T02:00:00Z,Wh\n",
    "2024-01-04": "id,reading,ts,unit\n5,7.5,2024-01-04T01:00:00Z,kWh\n",
}


@pytest.mark.parametrize(
    "order",
    [
        ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
        ["2024-01-04", "2024-01-03", "2024-01-02", "2024-01-01"],
        ["2024-01-02", "2024-01-01", "2024-01-04", "2024-01-03"],
        ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-01", "2024-01-02"],
    ],
    ids=["in-order", "backwards", "shuffled", "reruns"],
)
def test_schema_evolution_gives_the_same_table_in_any_order(fast_dir, order):
    """A delivery without a column the table gained (or lost) merges: that column is null for its
    rows, as delivered; a widened type reads widened everywhere. Any order gives one table."""
    env = mini(fast_dir / "run", EVOLVING_ROW, EVOLVING, extra="start_date,on_schema_change")
    for day in order:
        _run_one(env, "m", day)
    cleaned = read_table(env, "m", "cleaned").set_index("id").sort_index()
    assert list(cleaned.index) == ["1", "2", "3", "4", "5"]  # CSV keys: the text delivered
    assert cleaned["reading"].dtype == "Float64"
    assert pd.isna(cleaned.loc["1", "reading"]) and cleaned.loc["1", "unit"] == "Wh"  # day 3 won
    assert cleaned.loc["2", "reading"] == 6.0 and pd.isna(cleaned.loc["2", "unit"])
    assert (cleaned.loc["3", "reading"], cleaned.loc["3", "unit"]) == (7.0, "kWh")
    assert pd.isna(cleaned.loc["4", "reading"]) and cleaned.loc["5", "reading"] == 7.5
    reference = mini(fast_dir / "ref", EVOLVING_ROW, EVOLVING, extra="start_date,on_schema_change")
    for day in sorted(EVOLVING):
        _run_one(reference, "m", day)
    for layer in ("raw", "cleaned", "quarantine"):
        assert fingerprint(read_table(env, "m", layer)) == fingerprint(
            read_table(reference, "m", layer)
        ), layer


def test_an_aggregate_of_a_column_that_arrives_later_ends_the_same_in_any_order(fast_dir):
    """Run forward, day 1's aggregate reads the column it does not have yet as null; day 2 adds
    the column and recomputes every aggregate partition (in the column's own type), so the end
    equals the backward run's."""
    days = {
        "2024-01-01": "id,updated_at,day\n1,2024-01-01T01:00:00Z,2024-01-01\n",
        "2024-01-02": "id,updated_at,day,amount\n2,2024-01-02T01:00:00Z,2024-01-02,5\n",
    }
    ends = []
    for order in (["2024-01-01", "2024-01-02"], ["2024-01-02", "2024-01-01"]):
        env = mini(
            fast_dir / order[0], "m,m_{ds}.csv,csv,id,updated_at,day,incremental,2024-01-01\n", days
        )
        (fast_dir / order[0] / "include" / "aggregates.yaml").write_text(
            "- {name: m_total, dataset: m, metrics: {n: count, total: 'sum:amount'}}\n"
        )
        for day in order:
            out = _run_one(env, "m", day)
            if day == order[0] == "2024-01-01":  # forward: day 1 has no amount yet
                [total] = read_table(env, "m_total", "aggregated")["total"]
                assert out["aggregate"]["m_total"]["rows"] == 1 and pd.isna(total)
        ends.append(fingerprint(read_table(env, "m_total", "aggregated")))
    assert ends[0] == ends[1] != "empty"
    totals = read_table(env, "m_total", "aggregated").set_index("dt")["total"]
    assert pd.isna(totals["2024-01-01"]) and totals["2024-01-02"] == 5
    assert str(totals.dtype) == "Int64"  # the sum of an int column, in either order


def _corrupting_merge(original):
    """merge(), then a second copy of one cleaned row committed behind its back."""

    def merge(dataset, interval, lake):
        result = original(dataset, interval, lake)
        table = lake.cleaned(dataset)
        base = table.snapshot()
        part = result.touched[0]
        rows = table.read_partition(part, base)
        table.commit(base, {part: pd.concat([rows, rows.iloc[:1]], ignore_index=True)})
        return result

    return merge


def _airflow_env(monkeypatch, home, lake):
    monkeypatch.setenv("PIPELINES_HOME", str(home))
    monkeypatch.setenv("PIPELINES_LAKE", str(lake))


def test_quality_check_failure_blocks_the_aggregate_step(
    airflow_db, project, fast_dir, monkeypatch
):
    import pipelines.steps.dataset
    from pipelines.runs.local import run_dag

    _airflow_env(monkeypatch, project, fast_dir / "lake")
    monkeypatch.setattr(
        pipelines.steps.dataset, "merge", _corrupting_merge(pipelines.steps.dataset.merge)
    )
    outcome = run_dag("local__ledger", DAYS[0])
    assert not outcome.ok and outcome.failed_task == "check.check_keys"
    assert "1 duplicate primary keys" in outcome.error
    env = Env(str(project), str(fast_dir / "lake"))
    assert read_table(env, "ledger_by_kind", "aggregated").empty  # aggregate never ran


def test_counts_that_do_not_reconcile_fail_the_check(project, fast_dir):
    from pipelines.steps.dataset import check_keys

    env = Env(str(project), str(fast_dir / "lake"))
    out = _run_one(env, "ledger", DAYS[0], ["extract", "merge"])
    dataset = env.project().dataset("ledger")
    interval = _interval(dataset, DAYS[0])
    lost = dataclasses.replace(out["merge"], quarantined=out["merge"].quarantined - 1)
    with pytest.raises(QualityCheckFailed, match=r"raw rows 161 != cleaned 150 \+ quarantined 10"):
        check_keys(dataset, interval, env.lake_obj(), lost)


def _interval(dataset, day):
    from pipelines.common.partitions import interval_for

    return interval_for(dataset.cron, parse_date(day))


def test_quarantine_counts_reach_the_run_outputs_and_asset_metadata(
    airflow_db, project, fast_dir, monkeypatch
):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from pipelines.runs.local import run_dag

    _airflow_env(monkeypatch, project, fast_dir / "lake")
    outcome = run_dag("local__ledger", DAYS[0], full_airflow=True)  # events in the database
    assert outcome.ok, outcome.error
    root = str(fast_dir / "lake")
    with create_session() as session:
        events = [e for e in session.scalars(select(AssetEvent)) if root in e.uri]
        extras = {e.uri.rsplit("/", 2)[-2]: e.extra for e in events}
    assert extras["quarantine"]["quarantined"] == 11
    assert extras["cleaned"]["delivered"] == 150 and extras["cleaned"]["superseded"] == 7


TYPED_ROW = "m,m_{ds}.csv,csv,id,updated_at,day,incremental,2024-01-01\n"
STAMP = "2024-01-01T01:00:00Z,2024-01-01"
# (case id, columns.yaml entry of m (or none), the day's delivery, cleaned ids, quarantine reasons)
TYPE_CASES = [
    (
        "leading-zeros-stay-keys",
        None,
        f"id,zip,updated_at,day\n007,02134,{STAMP}\n7,2134,{STAMP}\n0042,00501,{STAMP}\n",
        ["0042", "007", "7"],
        [],
    ),
    (
        "declared-integer-key-collapses-into-superseded",
        "m:\n  columns:\n    id: {type: integer}\n",
        f"id,zip,updated_at,day\n007,02134,{STAMP}\n7,2134,{STAMP}\n",
        [7],
        [DUPLICATE],
    ),
    (
        "one-instant-in-two-offsets-is-one-key",
        None,
        "id,v,updated_at,day\n"
        f"2024-03-01T08:00:00Z,a,{STAMP}\n2024-03-01T10:00:00+02:00,b,{STAMP}\n",
        [pd.Timestamp("2024-03-01T08:00:00Z")],
        [DUPLICATE],
    ),
    (
        "a-value-that-breaks-its-type",
        "m:\n  columns:\n    amount: {type: integer}\n",
        f"id,amount,updated_at,day\na,5,{STAMP}\nb,five,{STAMP}\n",
        ["a"],
        ["amount: 'five' is not an integer"],
    ),
    (
        "a-decimal-past-its-scale",
        "m:\n  columns:\n    amount: {type: 'decimal(6,2)'}\n",
        f"id,amount,updated_at,day\na,1.25,{STAMP}\nb,1.255,{STAMP}\nc,12345.6,{STAMP}\n",
        ["a"],
        ["amount: '1.255' is not a decimal(6,2)", "amount: '12345.6' is not a decimal(6,2)"],
    ),
    (
        "a-date-in-another-format",
        "m:\n  columns:\n    paid_on: {type: date, format: '%d.%m.%Y'}\n",
        f"id,paid_on,updated_at,day\na,31.01.2024,{STAMP}\nb,2024-01-31,{STAMP}\n",
        ["a"],
        ["paid_on: '2024-01-31' is not a date (format %d.%m.%Y)"],
    ),
    (
        "a-row-test",
        "m:\n  columns:\n    amount: {type: float, tests: [{min: 0}, not_null]}\n",
        f"id,amount,updated_at,day\na,1.5,{STAMP}\nb,-1,{STAMP}\nc,,{STAMP}\n",
        ["a"],
        ["amount: '' is null (not_null)", "amount: '-1' is below 0 (min)"],
    ),
]


@pytest.mark.parametrize(
    ("declared", "delivery", "ids", "reasons"),
    [c[1:] for c in TYPE_CASES],
    ids=[c[0] for c in TYPE_CASES],
)
def test_a_typed_value_is_kept_exactly_or_quarantined_with_its_reason(
    fast_dir, case, declared, delivery, ids, reasons
):
    """Types never lose a row: each raw row is in cleaned or in quarantine, once, and a value
    that does not fit says which column, value and rule."""
    env = mini(fast_dir, TYPED_ROW, {"2024-01-01": delivery})
    if declared is not None:
        (fast_dir / "include" / "columns.yaml").write_text(declared)
    out = _run_one(env, "m", "2024-01-01", ("extract", "merge"))["merge"]
    cleaned = read_table(env, "m", "cleaned")
    quarantine = read_table(env, "m", "quarantine")
    raw = read_table(env, "m", "raw")
    assert sorted(cleaned["id"].tolist()) == ids
    assert sorted(quarantine["_reason"].tolist()) == sorted(reasons)
    assert sorted([*cleaned["_row"], *quarantine["_row"]]) == sorted(raw["_row"])
    assert (out.raw_rows, out.delivered, out.quarantined) == (len(raw), len(ids), len(reasons))


def test_a_delivery_quarantined_whole_fails_its_check_and_has_not_landed(fast_dir):
    """A vendor's dates in a format nobody declared: every row quarantined is no success."""
    env = mini(
        fast_dir,
        TYPED_ROW,
        {"2024-01-01": "id,updated_at,day\na,01/01/2024 01:00,01/01/2024\n"},
    )
    with pytest.raises(QualityCheckFailed, match="every one of the 1 raw rows was quarantined"):
        _run_one(env, "m", "2024-01-01", ("extract", "merge", "check_keys"))
    (fast_dir / "include" / "columns.yaml").write_text(
        "m:\n  columns:\n"
        "    updated_at: {type: timestamp, format: '%m/%d/%Y %H:%M'}\n"
        "    day: {type: date, format: '%m/%d/%Y'}\n"
    )
    _run_one(env, "m", "2024-01-01", ("extract", "merge", "check_keys"))  # declared: it lands
    assert read_table(env, "m", "cleaned")["day"].tolist() == [pd.Timestamp("2024-01-01")]
