"""Issue 25's four cases, in-process: a window is whole or the run is refused; a failed day is
never read; --upstream fills the window; a stale output is flagged and --stale (or a dataset's
--downstream) reruns exactly the stale days. Each output is compared with a pandas computation
of its whole window over the cleaned table."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import pipelines
from pipelines.cli import main
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]

MODULE = """
import pandas as pd
from pipelines import Output

def totals(inputs, params, ds):
    recent, history = inputs["recent"], inputs["history"]
    table = pd.DataFrame({"order_id": recent["order_id"].astype(str), "amount": recent["amount"]})
    table = table.astype({"amount": float}).sort_values("order_id", ignore_index=True)
    spend = float(table["amount"].sum())
    metrics = {"recent_rows": len(recent), "history_rows": len(history), "spend": spend}
    return Output(table=table, metrics=metrics)
"""

ENTRY = """
- name: order_window
  function: windowed:totals
  inputs:
    recent: {{table: orders, window: 3d{extra}}}
    history: {{table: orders, window: all{history}}}
  primary_key: [order_id]
"""


def declare(home, extra: str = "", history: str = "") -> None:
    (home / "include" / "workflows" / "windowed.py").write_text(MODULE)
    path = home / "include" / "workflows.yaml"
    text = path.read_text().split("\n- name: order_window")[0]
    path.write_text(text + ENTRY.format(extra=extra, history=history))


@pytest.fixture
def window(home, airflow_db):
    declare(home)
    return home


def run(*argv: str) -> int:
    return main([*argv])


def expected(ds: str, days: int | None, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """The window's rows computed with pandas from the cleaned table as it stands."""
    cleaned = pipelines.read("orders")
    key = next(c for c in ("dt", "ds") if c in cleaned.columns)
    day = dt.date.fromisoformat(ds)
    first = None if days is None else (day - dt.timedelta(days=days - 1)).isoformat()
    parts = cleaned[key].astype(str)
    inside = (parts <= ds) & (parts >= first if first else True) & ~parts.isin(skip)
    rows = cleaned[inside]
    return pd.DataFrame(
        {"order_id": rows["order_id"].astype(str), "amount": rows["amount"].astype(float)}
    ).sort_values("order_id", ignore_index=True)


def output(ds: str) -> pd.DataFrame:
    out = pipelines.read("order_window", "workflows", as_of=ds)
    out = out[out["ds"].astype(str) == ds] if "ds" in out.columns else out
    return (
        pd.DataFrame({"order_id": out["order_id"].astype(str), "amount": out["amount"]})
        .sort_values("order_id", ignore_index=True)
        .astype({"amount": float})
    )


def written_days() -> list[str]:
    snap = Lake.from_env().workflow("order_window").snapshot()
    return sorted(snap.partitions)


def test_a_window_missing_a_day_is_refused_then_upstream_fills_it(window, capsys):
    assert run("backfill", "orders", "--start", DAYS[1], "--end", DAYS[2]) == 0
    capsys.readouterr()
    assert run("run", "order_window", "--date", DAYS[2]) == 1
    out = capsys.readouterr().out
    assert (
        "order_window: input recent (cleaned orders, 3d) is missing 2024-01-01 of its window for "
        "2024-01-03: run orders for them first (pipelines run orders --date 2024-01-01), or pass "
        "--upstream"
    ) in out
    assert DAYS[2] not in written_days()  # no partial output

    # --upstream runs the missing day only (not the days that landed), then the workflow
    assert run("run", "order_window", "--date", DAYS[2], "--upstream") == 0
    lines = [
        line.split()[:3]
        for line in capsys.readouterr().out.splitlines()
        if line[:4] in ("ok  ", "FAIL")
    ]
    assert lines == [
        ["ok", "local__orders", DAYS[0]],
        ["ok", "local__workflow__order_window", DAYS[2]],
    ]
    pd.testing.assert_frame_equal(output(DAYS[2]), expected(DAYS[2], 3))


def test_upstream_in_a_fresh_namespace_runs_every_day_of_the_window(window, capsys):
    assert run("run", "order_window", "--date", DAYS[2], "--upstream") == 0
    ran = [
        line.split()[1:3] for line in capsys.readouterr().out.splitlines() if line.startswith("ok ")
    ]
    assert ran == [
        ["local__orders", DAYS[0]],
        ["local__orders", DAYS[1]],
        ["local__orders", DAYS[2]],
        ["local__workflow__order_window", DAYS[2]],
    ]
    from pipelines.steps.workflow import metrics_of

    metrics = metrics_of("order_window", DAYS[2], Lake.from_env())
    assert metrics["recent_rows"] == len(expected(DAYS[2], 3)) == metrics["history_rows"]
    pd.testing.assert_frame_equal(output(DAYS[2]), expected(DAYS[2], 3))


def test_a_partial_window_is_read_only_when_allowed_and_says_how_many_days(window, capsys):
    declare(window, extra=", min_days: 2", history=", min_days: 1")
    assert run("backfill", "orders", "--start", DAYS[1], "--end", DAYS[2]) == 0
    assert run("run", "order_window", "--date", DAYS[2]) == 0
    from pipelines.steps.workflow import metrics_of

    metrics = metrics_of("order_window", DAYS[2], Lake.from_env())
    assert metrics["recent_days_read"] == 2
    pd.testing.assert_frame_equal(output(DAYS[2]), expected(DAYS[2], 2))
    capsys.readouterr()
    declare(window, extra=", min_days: 3", history=", min_days: 1")  # 3 days: not yet
    assert run("run", "order_window", "--date", DAYS[2]) == 1
    assert "(min_days 3: 2 landed)" in capsys.readouterr().out


def registry_with_gate(home, pct: str) -> None:
    path = home / "include" / "registry.csv"
    lines = path.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("dataset,"))
    lines[header] += ",max_quarantine_pct"
    for i, line in enumerate(lines):
        if line.startswith(("orders,", "customers,", "events,")):
            lines[i] = line + ("," + pct if line.startswith("orders,") else ",")
    path.write_text("\n".join(lines) + "\n")


def test_a_failed_day_is_never_read_and_reads_again_once_it_passes(window, capsys):
    from pipelines.steps.window_inputs import MissingInput
    from pipelines.testing import read_inputs

    original = (window / "include" / "registry.csv").read_text()
    registry_with_gate(window, "35")  # day 2 quarantines 40% of its rows: its gate fails
    assert run("backfill", "orders", "--start", DAYS[0], "--end", DAYS[2], "--keep-going") == 1
    snap = Lake.from_env().cleaned(load_project().dataset("orders")).snapshot()
    assert snap.run_metrics(DAYS[1])["checks"].startswith("failed")
    capsys.readouterr()
    # a later window holding the failed day is refused, naming it: not only day 2's own run
    assert run("run", "order_window", "--date", DAYS[2]) == 1
    assert (
        "order_window: input recent (cleaned orders, 3d) failed its checks for 2024-01-02"
        in capsys.readouterr().out
    )
    assert DAYS[2] not in written_days()
    with pytest.raises(MissingInput, match="failed its checks for 2024-01-02"):
        read_inputs("order_window", DAYS[2])
    # a partial window reads the days that passed, never the failed one (nor does `all`)
    declare(window, extra=", min_days: 2")
    assert run("run", "order_window", "--date", DAYS[2]) == 1  # `all` has no min_days
    declare(window, extra=", min_days: 2", history=", min_days: 1")
    read = read_inputs("order_window", DAYS[2])
    assert DAYS[1] not in set(read["recent"].iloc[:, 0].astype(str)) | set(
        read["history"][next(c for c in ("dt", "ds") if c in read["history"])].astype(str)
    )
    assert run("run", "order_window", "--date", DAYS[2]) == 0
    pd.testing.assert_frame_equal(output(DAYS[2]), expected(DAYS[2], 3, skip=(DAYS[1],)))
    # the gate lifted and the day rerun: it is read again
    (window / "include" / "registry.csv").write_text(original)
    declare(window)
    assert run("run", "orders", "--date", DAYS[1]) == 0
    assert run("run", "order_window", "--date", DAYS[2]) == 0
    pd.testing.assert_frame_equal(output(DAYS[2]), expected(DAYS[2], 3))


def test_a_late_run_makes_outputs_stale_and_stale_reruns_exactly_them(window, capsys):
    from pipelines.steps.staleness import stale_days

    assert run("backfill", "orders", "--start", DAYS[0], "--end", DAYS[2]) == 0
    assert run("backfill", "order_window", "--start", DAYS[0], "--end", DAYS[2]) == 0
    project, lake = load_project(), Lake.from_env()
    spec = project.workflow("order_window")
    assert stale_days(spec, lake, project) == {}
    source = window / "include" / "sample" / "orders" / f"orders_{DAYS[1]}.csv"
    source.write_text(source.read_text().replace("1006,c2,placed,30.00", "1006,c2,placed,31.00"))
    assert run("run", "orders", "--date", DAYS[1]) == 0  # a late correction of day 2
    stale = stale_days(spec, lake, project)
    assert {DAYS[1], DAYS[2]} <= set(stale)  # the windows that hold day 2
    assert (
        "input recent (cleaned orders) " in stale[DAYS[2]]
        and "rewritten after it" in stale[DAYS[2]]
    )
    capsys.readouterr()
    assert run("run", "order_window", "--stale") == 0
    lines = capsys.readouterr().out.splitlines()
    reran = [line.split()[2] for line in lines if line.startswith("ok ")]
    assert reran == sorted(stale)
    assert stale_days(spec, lake, project) == {}
    for day in DAYS:
        pd.testing.assert_frame_equal(output(day), expected(day, 3))
    capsys.readouterr()
    assert run("run", "order_window", "--stale") == 0
    assert "nothing stale" in capsys.readouterr().out

    # a dataset's backfill with --downstream reruns the workflow days it made stale
    source.write_text(source.read_text().replace("1006,c2,placed,31.00", "1006,c2,placed,32.00"))
    assert run("backfill", "orders", "--start", DAYS[1], "--end", DAYS[1], "--downstream") == 0
    out = capsys.readouterr().out
    assert "downstream: " in out and " stale workflow days rerun" in out
    assert stale_days(spec, lake, project) == {}
    for day in DAYS:
        pd.testing.assert_frame_equal(output(day), expected(day, 3))


def test_a_code_change_makes_every_day_stale(window):
    from pipelines.steps.staleness import stale_days

    assert run("backfill", "orders", "--start", DAYS[0], "--end", DAYS[1]) == 0
    assert run("backfill", "order_window", "--start", DAYS[0], "--end", DAYS[1]) == 0
    project, lake = load_project(), Lake.from_env()
    assert stale_days(project.workflow("order_window"), lake, project) == {}
    module = window / "include" / "workflows" / "windowed.py"
    edited = module.read_text().replace(".sum())", ".median())")  # mean -> median, say
    assert edited != module.read_text()
    module.write_text(edited)
    stale = stale_days(project.workflow("order_window"), lake, project)
    assert sorted(stale) == DAYS[:2] and stale[DAYS[0]].startswith("the code changed")
    assert run("backfill", "order_window", "--start", DAYS[0], "--end", DAYS[1], "--stale") == 0
    assert stale_days(project.workflow("order_window"), lake, project) == {}


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["run", "orders", "--stale"], "error: stale: orders is a dataset; only a workflow's"),
        (
            ["backfill", "order_window", "--start", DAYS[0], "--end", DAYS[1], "--downstream"],
            "error: downstream: order_window is a workflow; it reruns the workflow days",
        ),
        (["run", "order_window"], "error: give --date (or --stale: every stale day"),
        (
            ["run", "orders", "--date", DAYS[0], "--downstream", "--url", "http://127.0.0.1:9"],
            "error: --airflow, --upstream and --downstream run here: they cannot go with --url",
        ),
    ],
)
def test_wrong_uses_of_stale_and_downstream_are_one_line(window, capsys, argv, said):
    assert run(*argv) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert said in out and "Traceback" not in out
