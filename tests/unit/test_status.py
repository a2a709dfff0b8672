"""The pure parts of ``pipelines status``: gap ranges, run days, durations, freshness words, and
how a row shows a workflow's stale and failed days (its cells, its JSON, the page's data)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from pipelines.common.partitions import intervals_between, run_days
from pipelines.inspection import status_page
from pipelines.inspection.status import COLUMNS, Day, Freshness, Status, duration, gap_text, gaps
from pipelines.project.config import Kind

DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    "cron", ["0 0 * * *", "0 0 * * 1", "0 0 1 * *", "0 6 * * *", "30 0 * * *", "0 0 */2 * *"]
)
def test_run_days_are_the_days_of_the_intervals(cron):
    first, last = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
    days = list(dict.fromkeys(i.ds for i in intervals_between(cron, first, last)))
    assert run_days(cron, first, last) == days
    assert run_days(cron, last, first) == []


def test_gaps_are_ranges_of_consecutive_run_days():
    expected = [f"2024-01-{d:02d}" for d in range(1, 11)]
    present = ["2024-01-01", "2024-01-02", "2024-01-06", "2024-01-08", "2024-01-10"]
    assert gaps(expected, present) == (
        ("2024-01-03", "2024-01-05"),
        ("2024-01-07", "2024-01-07"),
        ("2024-01-09", "2024-01-09"),
    )
    assert gaps(expected, expected) == ()
    weekly = ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"]
    assert gaps(weekly, ["2024-01-01", "2024-01-22"]) == (("2024-01-08", "2024-01-15"),)
    assert [gap_text(*g) for g in gaps(expected, present)][:2] == [
        "2024-01-03..2024-01-05",
        "2024-01-07",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [(3 * DAY, "3d"), (dt.timedelta(hours=5), "5h"), (2 * DAY + dt.timedelta(hours=4), "2d 4h")]
    + [(dt.timedelta(minutes=40), "40m"), (dt.timedelta(0), "0m")],
)
def test_durations_read_like_the_registry(value, text):
    assert duration(value) == text


def test_freshness_words_and_lateness():
    hour = dt.timedelta(hours=1)
    assert str(Freshness(None, None, None, None, hour)) == "not due yet"
    assert str(Freshness("2024-01-04", "2024-01-04", dt.timedelta(0), None, hour)) == "up to date"
    behind = Freshness("2024-01-04", "2024-01-02", 2 * DAY, 27 * hour, 2 * hour)
    assert (str(behind), behind.late) == ("2d behind, late", True)
    within = Freshness("2024-01-04", "2024-01-03", DAY, hour, 2 * hour)
    assert (str(within), within.late) == ("1d behind", False)
    never = Freshness("2024-01-04", None, None, 27 * hour, None)
    assert (str(never), never.late) == ("no data", False)  # no allowance: never late


CODE = "the code changed (features:customer_features, its module or params)"
REWRITTEN = "input orders (cleaned orders) 2024-01-02 rewritten after it (run 2024-01-02)"


def workflow_row(**changes) -> Status:
    """A workflow's row: 01..03 written, 04 failed (refused), 01 and 02 stale."""
    row = Status(
        name="customer_features",
        kind=Kind.WORKFLOW,
        ingestion=None,
        newest_raw=None,
        partition="2024-01-03",
        key="ds",
        rows=4,
        quarantined=None,
        checks="failed: customer_features: input orders (cleaned orders, 3d) has no data",
        failed_days=("2024-01-04",),
        gaps=(),
        freshness=Freshness("2024-01-04", "2024-01-03", DAY, DAY, None),
        days=(
            Day("2024-01-01", 5, stale=True),
            Day("2024-01-02", 4, stale=True),
            Day("2024-01-03", 4),
            Day("2024-01-04", 0, failed=True),
        ),
        start="2024-01-01",
        dag_id="local__workflow__customer_features",
        stale=(("2024-01-01", CODE), ("2024-01-02", REWRITTEN)),
    )
    return dataclasses.replace(row, **changes)


def test_a_stale_workflow_names_its_days_and_the_newest_reason():
    row = workflow_row()
    cells = dict(zip(COLUMNS, row.cells(), strict=True))
    assert cells["STALE"] == f"2024-01-01..2024-01-02: {REWRITTEN} (+1 other reason)"
    assert cells["CHECKS"] == "failed" and cells["GAPS"] == "-"  # a failed day is no gap
    assert cells["FRESHNESS"] == "1d behind"  # the last column still: scripts read it there
    assert COLUMNS[-1] == "FRESHNESS" and COLUMNS.index("STALE") == COLUMNS.index("GAPS") + 1
    one = workflow_row(stale=(("2024-01-02", REWRITTEN), ("2024-01-03", REWRITTEN)))
    assert one.stale_text == f"2024-01-02..2024-01-03: {REWRITTEN}"
    scattered = tuple((f"2024-01-{d:02d}", CODE) for d in (1, 3, 5, 7))
    assert workflow_row(stale=scattered).stale_text == (f"2024-01-01, 2024-01-03 (+2 more): {CODE}")
    fresh = workflow_row(stale=(), checks="passed", failed_days=())
    assert (fresh.stale_text, fresh.checks_text, fresh.stale_days) == ("-", "passed", ())
    earlier = workflow_row(checks="passed")
    assert earlier.checks_text == "passed; 1 earlier failed"


def test_a_damaged_table_s_checks_say_damaged_in_json_as_in_text():
    row = workflow_row(checks="passed", damaged=("part-0.parquet: cut short",))
    assert row.checks_text == row.as_dict()["checks"] == "damaged"
    assert workflow_row(checks="passed").as_dict()["checks"] == "passed"


def test_the_json_row_has_the_stale_days_their_reasons_and_each_days_state():
    body = workflow_row().as_dict()
    assert body["stale"] == {
        "days": ["2024-01-01", "2024-01-02"],
        "reasons": {"2024-01-01": CODE, "2024-01-02": REWRITTEN},
    }
    assert [(d["ds"], d["state"]) for d in body["days"]] == [
        ("2024-01-01", "stale"),
        ("2024-01-02", "stale"),
        ("2024-01-03", "ok"),
        ("2024-01-04", "failed"),
    ]
    assert body["failed_days"] == ["2024-01-04"]
    assert json.loads(json.dumps(body, default=str))["stale"] == body["stale"]
    assert Day("2024-01-05", 1, failed=True, stale=True).state == "failed"  # a failure first


def test_the_page_carries_stale_days_in_their_own_colour_with_a_legend():
    now = dt.datetime(2024, 1, 5, 3, tzinfo=dt.UTC)
    text = status_page.render([workflow_row()], namespace="local", lake="/lake", now=now)
    data = json.loads(text.split('id="status-data">', 1)[1].split("</script>", 1)[0])
    [row] = data["rows"]
    assert row["days"] == [
        ["2024-01-01", 5, 0, 0, 1],
        ["2024-01-02", 4, 0, 0, 1],
        ["2024-01-03", 4, 0, 0, 0],
        ["2024-01-04", 0, 0, 1, 0],
    ]
    assert row["stale"]["reasons"]["2024-01-02"] == REWRITTEN
    assert row["cells"][data["columns"].index("STALE")] == workflow_row().stale_text
    legend = text.split('<p class="legend">', 1)[1].split("</p>", 1)[0]
    stale_colour = dict((t, c) for c, t in status_page.LEGEND)[
        "stale (an input rewritten, or the code changed)"
    ]
    assert f'<i style="background:{stale_colour}"></i>stale' in legend
    assert stale_colour not in {c for c, t in status_page.LEGEND if not t.startswith("stale")}
    assert f'bar(TOP + H - hk, hk, "{stale_colour}", "stale")' in text  # a stale day's bar
