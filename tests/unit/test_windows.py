"""A window both ways: the days D's window reads and the days whose windows hold a day C are the
two directions of one mapping (each the inverse of the other), for days and for snapshots."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.common.windows import Days, Window

# across a month's end and a leap day
CALENDAR = [(dt.date(2024, 2, 20) + dt.timedelta(days=n)).isoformat() for n in range(20)]
WINDOWS = [Window(1), Window(2), Window(3), Window(7), Window(None)]


@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("snapshots", [False, True], ids=["days", "snapshots"])
def test_a_day_is_read_by_d_exactly_when_d_is_reached_by_the_day(window, snapshots):
    for d in CALENDAR:
        for c in CALENDAR:
            reads = c in window.reads(d, snapshots=snapshots)
            assert reads == (d in window.reached_by(c, snapshots=snapshots)), (d, c)


@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("snapshots", [False, True], ids=["days", "snapshots"])
def test_both_directions_agree_with_what_select_picks_from_every_day(window, snapshots):
    for c in CALENDAR:  # every day has its partition (or snapshot): select picks the window's
        picked_by = [d for d in CALENDAR if c in window.select(CALENDAR, d, snapshots=snapshots)]
        assert window.reached_by(c, snapshots=snapshots).of(CALENDAR) == picked_by, c
    for d in CALENDAR:
        read = window.reads(d, snapshots=snapshots).of(CALENDAR)
        assert read == window.select(CALENDAR, d, snapshots=snapshots), d


def test_the_days_each_way_spelled_out():
    assert Window(3).reads("2024-03-01") == Days("2024-02-28", "2024-03-01")
    assert Window(3).reached_by("2024-02-28") == Days("2024-02-28", "2024-03-01")
    assert list(Window(3).reached_by("2024-02-28")) == ["2024-02-28", "2024-02-29", "2024-03-01"]
    assert Window(1).reached_by("2024-03-01") == Days("2024-03-01", "2024-03-01")
    assert Window(None).reads("2024-03-01") == Days(None, "2024-03-01")
    assert Window(None).reached_by("2024-03-01") == Days("2024-03-01", None)
    assert Window(None).reached_by("2024-03-01").of(["2024-03-02", "2024-02-29"]) == ["2024-03-02"]


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_a_snapshot_reaches_its_own_day_only(window):
    assert window.reached_by("2024-03-01", snapshots=True) == Days("2024-03-01", "2024-03-01")
    assert window.reads("2024-03-01", snapshots=True) == Days("2024-03-01", "2024-03-01")


def test_a_snapshot_window_over_all_falls_back_to_the_newest_before_d():
    # D without a snapshot of its own: `all` reads the newest before it, `1d` nothing
    assert Window(None).select(["2024-02-27", "2024-02-28"], "2024-03-01", snapshots=True) == [
        "2024-02-28"
    ]
    assert Window(1).select(["2024-02-27", "2024-02-28"], "2024-03-01", snapshots=True) == []


def test_an_open_range_has_no_end_to_count_to():
    assert Window(None).reached_by("2024-03-01").bounded is False
    with pytest.raises(ValueError, match="no bound"):
        list(Window(None).reached_by("2024-03-01"))


# --- completeness: the days a window needs before it is read (issue 25) ---


def test_a_window_needs_every_day_it_reads_from_the_producers_start():
    assert Window(3).needs("2024-01-05", "2024-01-01") == ["2024-01-03", "2024-01-04", "2024-01-05"]
    assert Window(3).needs("2024-01-02", "2024-01-01") == ["2024-01-01", "2024-01-02"]  # not 12-31
    assert Window(None).needs("2024-01-03", dt.date(2024, 1, 1)) == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
    ]
    assert Window(None).needs("2024-01-03", None) == ["2024-01-03"]  # no start: D alone
    assert Window(None).needs("2024-01-03", "2024-01-01", snapshots=True) == ["2024-01-03"]
    assert Window(3).needs("2023-12-30", "2024-01-01") == []  # before the start: nothing due


def test_day_ranges_are_spelled_shortly():
    from pipelines.common.windows import ranges, ranges_text

    days = ["2024-01-05", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-09"]
    assert ranges(days) == [
        ("2024-01-01", "2024-01-03"),
        ("2024-01-05", "2024-01-05"),
        ("2024-01-09", "2024-01-09"),
    ]
    assert ranges_text(days, shown=2) == "2024-01-01..2024-01-03, 2024-01-05 (+1 more)"


def _snapshot(version: int, runs: dict[str, dict], partitions: list[str]):
    """A table version whose runs table recorded ``runs`` (day -> metrics), each at its own
    ``version`` key (default the snapshot's)."""
    import json

    import pyarrow as pa

    from pipelines.lake.runs import Recorded
    from pipelines.lake.tables import Snapshot

    rows = {
        "ds": list(runs),
        "metrics": [json.dumps({k: v for k, v in m.items() if k != "at"}) for m in runs.values()],
        "version": [m.get("at", version) for m in runs.values()],
        "config": [None] * len(runs),
    }
    records = pa.table(rows, schema=pa.schema([
        ("ds", pa.string()), ("metrics", pa.string()), ("version", pa.int64()),
        ("config", pa.string()),
    ]))  # fmt: skip
    parts = {p: {"rows": 1} for p in partitions}
    return Snapshot(version, parts, recorded=lambda: Recorded(records), key="dt")


def _state(window: str, runs: dict[str, dict], partitions: list[str], min_days=None):
    from pipelines.common.partitions import Layer
    from pipelines.project.workflows import WorkflowInput, WorkflowSpec
    from pipelines.steps.window_inputs import Source, WindowState

    item = WorkflowInput("recent", "orders", Layer.CLEANED, Window.parse(window), min_days)
    spec = WorkflowSpec("wf", "m:f", (item,))
    src = Source(None, False, "orders", "@daily", dt.date(2024, 1, 1))
    return WindowState(spec, item, "2024-01-04", src, _snapshot(9, runs, partitions))


PASSED = {"checks": "passed"}
FAILED = {"checks": "failed: 2 of 5 raw rows quarantined (40%)"}


def test_a_window_with_a_missing_day_is_refused_naming_it_and_the_command():
    days = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    state = _state("3d", {"2024-01-03": PASSED, "2024-01-04": PASSED}, days)
    assert state.needed == days[1:] and state.missing == ["2024-01-02"] and not state.readable
    assert str(state.refusal()) == (
        "wf: input recent (cleaned orders, 3d) is missing 2024-01-02 of its window for "
        "2024-01-04: run orders for them first (pipelines run orders --date 2024-01-02), or pass "
        "--upstream"
    )
    whole = _state("3d", {d: PASSED for d in days[1:]}, days)
    assert whole.readable and whole.partitions == days[1:]
    several = _state("all", {"2024-01-04": PASSED}, days)
    assert "is missing 2024-01-01..2024-01-03 of its window" in str(several.refusal())
    assert "(pipelines backfill orders --start 2024-01-01 --end 2024-01-03)" in str(
        several.refusal()
    )


def test_a_failed_day_is_named_and_never_among_the_partitions_read():
    days = ["2024-01-02", "2024-01-03", "2024-01-04"]
    state = _state("3d", {"2024-01-02": PASSED, "2024-01-03": FAILED, "2024-01-04": PASSED}, days)
    assert (
        state.failed == {"2024-01-03": "2 of 5 raw rows quarantined (40%)"} and not state.readable
    )
    assert str(state.refusal()) == (
        "wf: input recent (cleaned orders, 3d) failed its checks for 2024-01-03 (2 of 5 raw rows "
        "quarantined (40%)): fix it and rerun orders for 2024-01-03"
    )
    partial = _state(
        "3d", {"2024-01-02": PASSED, "2024-01-03": FAILED, "2024-01-04": PASSED}, days, 2
    )
    assert partial.readable and partial.partitions == ["2024-01-02", "2024-01-04"]


def test_min_days_reads_a_partial_window_only_with_d_and_enough_days():
    days = ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert _state("3d", {"2024-01-03": PASSED, "2024-01-04": PASSED}, days, 2).readable
    assert not _state("3d", {"2024-01-04": PASSED}, days, 2).readable  # one day landed
    assert not _state("3d", {"2024-01-02": PASSED, "2024-01-03": PASSED}, days, 2).readable  # no D
    pending = _state("3d", {"2024-01-04": PASSED, "2024-01-03": {"checks": "pending"}}, days, 2)
    assert pending.missing == ["2024-01-02", "2024-01-03"] and not pending.readable


# --- staleness: what an output read against what its inputs recorded since ---


def _input(window: str, runs: dict[str, dict], partitions: list[str]):
    from pipelines.common.partitions import Layer
    from pipelines.project.workflows import WorkflowInput
    from pipelines.steps.staleness import _Input, _Rewrite
    from pipelines.steps.window_inputs import Source

    item = WorkflowInput("recent", "orders", Layer.CLEANED, Window.parse(window))
    snap = _snapshot(20, runs, partitions)
    src = Source(None, False, "orders", "@daily", dt.date(2024, 1, 1))
    rewrites = []
    for day in runs:
        wrote = snap.wrote(day)
        if wrote:
            rewrites.append(_Rewrite(wrote[0], day, tuple(wrote[1])))
    return _Input(item, src, snap, tuple(sorted(rewrites, key=lambda r: -r.version)))


def _wrote(version: int, *partitions: str) -> dict:
    return {"checks": "passed", "wrote": {"version": version, "partitions": list(partitions)}}


def test_an_output_is_stale_when_a_partition_of_its_window_was_rewritten_after_it_read():
    days = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    runs = {d: _wrote(i, d) for i, d in enumerate(days)}
    runs["2024-01-05"] = _wrote(12, "2024-01-05", "2024-01-02")  # a late update to day 2
    each = _input("3d", runs, days)
    start = dt.date(2024, 1, 1)
    assert each.why_stale("2024-01-04", {"version": 4}, start) == (
        "input recent (cleaned orders) 2024-01-02 rewritten after it (run 2024-01-05)"
    )
    assert each.why_stale("2024-01-04", {"version": 12}, start) is None  # read after it
    assert each.why_stale("2024-01-01", {"version": 4}, start) is None  # window ends before 2
    assert "not an input" in each.why_stale("2024-01-04", None, start)


def test_an_output_whose_needed_day_failed_since_is_stale():
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    runs = {d: _wrote(i, d) for i, d in enumerate(days)}
    runs["2024-01-02"] = {**FAILED, "wrote": runs["2024-01-02"]["wrote"]}
    each = _input("3d", runs, days)
    assert each.why_stale("2024-01-03", {"version": 5}, dt.date(2024, 1, 1)) == (
        "input recent (cleaned orders) 2024-01-02 no longer landed (failed or removed)"
    )


def test_a_workflow_on_a_cron_is_not_stale_for_a_day_it_never_waited_for():
    days = ["2024-01-01", "2024-01-03"]  # 2024-01-02 never ran: a cron workflow reads on
    each = _input("all", {d: _wrote(i, d) for i, d in enumerate(days)}, days)
    read = {"version": 5}
    assert each.why_stale("2024-01-03", read, dt.date(2024, 1, 1), waits=False) is None
    assert "2024-01-02 no longer landed" in each.why_stale("2024-01-03", read, "2024-01-01")
