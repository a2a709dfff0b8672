"""Which dates a run may be for: refused with one line that says why and what would do."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.common.partitions import date_option
from pipelines.exceptions import DateError
from pipelines.project.config import load_project
from pipelines.project.run_dates import run_dates
from tests.conftest import write_registry

NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
HEADER = (
    "dataset,source,primary_key,incremental_field,partition_field,ingestion,schedule,start_date"
)


@pytest.fixture
def project(home):
    write_registry(
        home,
        f"{HEADER}\n"
        "daily,d_{ds}.csv,id,ts,ts,incremental,@daily,2024-01-05\n"
        "monthly,m_{ds}.csv,id,ts,ts,incremental,@monthly,2000-01-01\n"
        "weekly,w_{ds}.csv,id,,,full,@weekly,2024-01-01\n",
    )
    (home / "include" / "cookbooks.yaml").write_text(
        "- {name: both, steps: [daily, monthly]}\n"
        "- {name: hourly, schedule: '0 * * * *', steps: [daily]}\n"
    )
    return load_project()


def dates(project, name, first, last=None, **kwargs):
    last = last or first
    return run_dates(project, name, dt.date.fromisoformat(first), dt.date.fromisoformat(last),
                     now=NOW, **kwargs)  # fmt: skip


def test_a_range_gives_the_schedule_points_in_it(project):
    assert dates(project, "daily", "2024-01-05", "2024-01-07") == [
        "2024-01-05",
        "2024-01-06",
        "2024-01-07",
    ]
    assert dates(project, "monthly", "2000-01-01", "2000-03-31") == [
        "2000-01-01",
        "2000-02-01",
        "2000-03-01",
    ]


@pytest.mark.parametrize(
    ("name", "day", "message"),
    [
        (
            "daily",
            "2024-01-02",
            "daily: 2024-01-02 is before its start_date 2024-01-05 (registry.csv line 2); "
            "the first date it can run is 2024-01-05",
        ),
        (
            "monthly",
            "2000-01-15",
            "monthly: no run of its schedule ('0 0 1 * *') starts on 2000-01-15; "
            "the nearest dates are 2000-01-01 and 2000-02-01",
        ),
    ],
    ids=["before-start-date", "off-the-schedule"],
)
def test_a_refused_date_says_why_and_names_the_dates_that_would_do(project, name, day, message):
    with pytest.raises(DateError) as caught:
        dates(project, name, day)
    assert str(caught.value) == message


def test_a_range_with_no_schedule_point_is_refused(project):
    with pytest.raises(DateError, match="starts between 2000-01-02 and 2000-01-31"):
        dates(project, "monthly", "2000-01-02", "2000-01-31")


def test_an_interval_still_running_is_refused_unless_asked_for(project):
    with pytest.raises(DateError) as caught:
        dates(project, "daily", "2024-03-10")
    assert str(caught.value).startswith(
        "daily: the interval of 2024-03-10 ends 2024-03-11 00:00 UTC, which is still to come "
        "(the latest complete date is 2024-03-09); pass --allow-incomplete"
    )
    assert dates(project, "daily", "2024-03-10", allow_incomplete=True) == ["2024-03-10"]
    with pytest.raises(DateError, match="latest complete date is 2024-02-01"):
        dates(project, "monthly", "2024-03-01")  # March is not over on the 10th


def test_the_future_is_refused_even_when_incomplete_is_allowed(project):
    with pytest.raises(DateError) as caught:
        dates(project, "daily", "2024-03-11", allow_incomplete=True)
    assert str(caught.value) == (  # the date it names is one that run would take
        "daily: 2024-03-11 is in the future; the latest date it can run is 2024-03-10, "
        "still incomplete"
    )
    assert dates(project, "daily", "2024-03-10", allow_incomplete=True) == ["2024-03-10"]


@pytest.mark.parametrize(("name", "latest"), [("daily", "2024-03-09"), ("both", "2024-02-29")])
def test_the_future_and_an_incomplete_interval_name_the_same_latest_date(project, name, latest):
    """At one moment, refusing tomorrow and refusing today name one latest date: the latest
    complete one (a cookbook's: its monthly child's February), the date that would be run."""
    with pytest.raises(DateError) as future:
        dates(project, name, "2024-03-11")
    with pytest.raises(DateError) as incomplete:
        dates(project, name, "2024-03-10")
    assert str(future.value) == (
        f"{name}: 2024-03-11 is in the future; the latest complete date is {latest}"
    )
    assert f"(the latest complete date is {latest});" in str(incomplete.value)
    assert dates(project, name, latest) == [latest]


def test_a_cookbook_checks_every_child(project):
    assert dates(project, "both", "2024-01-05") == ["2024-01-05"]
    with pytest.raises(DateError, match=r"both: 2024-01-04 is before daily's start_date"):
        dates(project, "both", "2024-01-04")
    with pytest.raises(DateError, match="ends 2024-04-01 00:00 UTC.*complete date is 2024-02-29"):
        dates(project, "both", "2024-03-09")  # its monthly child's March is not over


def test_an_empty_range_is_refused(project):
    with pytest.raises(DateError, match="the end 2024-01-05 is before the start 2024-01-06"):
        dates(project, "daily", "2024-01-06", "2024-01-05")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2010/01/02", "--date: '2010/01/02' is not a date in the form YYYY-MM-DD"),
        ("tomorrow", "--date: 'tomorrow' is not a date in the form YYYY-MM-DD"),
        # in the form, but no day of the calendar: said so, not that the form is wrong
        ("2010-02-30", "--date: '2010-02-30' is not a real date: February 2010 has days 1 to 28"),
        ("2012-02-30", "--date: '2012-02-30' is not a real date: February 2012 has days 1 to 29"),
        ("2010-04-00", "--date: '2010-04-00' is not a real date: April 2010 has days 1 to 30"),
        ("2010-13-01", "--date: '2010-13-01' is not a real date: there is no month 13"),
        ("0000-01-01", "--date: '0000-01-01' is not a real date: there is no year 0"),
    ],
)
def test_a_malformed_date_names_the_option_and_the_value(value, message):
    with pytest.raises(DateError) as caught:
        date_option(value, "--date")
    assert str(caught.value) == message


def test_a_cookbook_that_runs_hourly_runs_once_a_day_when_asked_for_days(project):
    assert dates(project, "hourly", "2024-01-05", "2024-01-06") == ["2024-01-05", "2024-01-06"]
