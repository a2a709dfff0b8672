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
