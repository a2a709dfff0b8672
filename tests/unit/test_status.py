"""The pure parts of ``pipelines status``: gap ranges, run days, durations, freshness words."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.common.partitions import intervals_between, run_days
from pipelines.inspection.status import Freshness, duration, gap_text, gaps

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
