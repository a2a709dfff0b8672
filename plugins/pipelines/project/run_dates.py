"""Which logical dates a dataset, workflow or cookbook may be run for, and why a date is refused.

A run for D is refused, with one line that says why and names the nearest dates that would do,
when D is before the dataset's ``start_date``, when no run of its schedule starts on D, when D is
in the future, and (unless asked for) when D's interval has not ended yet: that run would record
a partial interval as the newest partition.
"""

from __future__ import annotations

import datetime as dt

from pipelines.common.partitions import DAILY, Interval, interval_for, intervals_between, utc
from pipelines.exceptions import DateError
from pipelines.project.config import RUNNABLE, Entry, Kind, Project
from pipelines.project.registry import Dataset
from pipelines.project.workflows import WorkflowSpec


def run_dates(
    project: Project,
    entry: Entry | str,
    first: dt.date,
    last: dt.date,
    *,
    allow_incomplete: bool = False,
    now: dt.datetime | None = None,
) -> list[str]:
    """The logical dates (``YYYY-MM-DD``) of the runs of ``entry`` from ``first`` to ``last``.

    :param entry: a dataset, workflow or cookbook (or its name, resolved here)
    :raises DateError: the range is empty, or a date in it cannot be run (see the module)
    """
    if last < first:
        raise DateError(f"the end {last} is before the start {first}")
    now = utc(now or dt.datetime.now(dt.UTC))
    entry = project.resolve(entry, *RUNNABLE)
    name = entry.name
    cron, datasets = _schedule(project, entry)
    intervals = intervals_between(cron, first, last)
    if not intervals:
        raise DateError(f"{name}: {_no_run(cron, first, last)}")
    for dataset in datasets:
        _check_start(dataset, intervals[0], name)
    _check_complete(name, datasets, cron, intervals[-1], now, allow_incomplete)
    return list(dict.fromkeys(i.ds for i in intervals))  # one run a day (an hourly cookbook too)


def latest_date(project: Project, entry: Entry | str, now: dt.datetime | None = None) -> dt.date:
    """The logical date of the latest complete interval of ``entry`` (every dataset it runs or
    reads has ended it): what a submission without a date runs.

    :param entry: a dataset, workflow or cookbook (or its name, resolved here)
    """
    cron, datasets = _schedule(project, project.resolve(entry, *RUNNABLE))
    return dt.date.fromisoformat(
        _latest_complete(cron, datasets, utc(now or dt.datetime.now(dt.UTC)))
    )


def waits_for(project: Project, entry: Entry | str) -> list[Dataset]:
    """The datasets whose intervals a run of ``entry`` waits for: itself, or those a cookbook
    runs or a workflow reads (through aggregates and workflows)."""
    return _schedule(project, project.resolve(entry, *RUNNABLE))[1]


def _schedule(project: Project, entry: Entry) -> tuple[str, list[Dataset]]:
    """The cron of the entry's runs, and the datasets whose intervals a run of it must wait for
    (itself, or those a cookbook runs or a workflow reads)."""
    if entry.kind is Kind.DATASET:
        return entry.spec.cron, [entry.spec]
    if entry.kind is Kind.COOKBOOK:
        return entry.spec.cron or DAILY, [d.spec for d in entry.runs(Kind.DATASET)]
    return entry.spec.cron or DAILY, _read_by(project, entry.spec)


def _read_by(project: Project, workflow: WorkflowSpec) -> list[Dataset]:
    """The datasets a workflow reads, through aggregates and the workflows it reads."""
    found: list[Dataset] = []
    for item in workflow.inputs:
        dataset = project.tables.dataset_of(item)
        found += [dataset] if dataset else _read_by(project, project.workflow(item.table))
    return list({d.name: d for d in found}.values())


def _no_run(cron: str, first: dt.date, last: dt.date) -> str:
    before = interval_for(cron, first)
    after = interval_for(cron, before.end)
    days = f"on {first}" if first == last else f"between {first} and {last}"
    return (
        f"no run of its schedule ({cron!r}) starts {days}; "
        f"the nearest dates are {before.ds} and {after.ds}"
    )


def _check_start(dataset: Dataset, interval: Interval, name: str) -> None:
    start = dt.datetime.combine(dataset.start_date, dt.time(), tzinfo=dt.UTC)
    if interval.start >= start:
        return
    first = interval_for(dataset.cron, start)
    first = first if first.start >= start else interval_for(dataset.cron, first.end)
    whose = "its" if dataset.name == name else f"{dataset.name}'s"
    raise DateError(
        f"{name}: {interval.ds} is before {whose} start_date {dataset.start_date} "
        f"(registry.csv line {dataset.line}); the first date it can run is {first.ds}"
    )


def _check_complete(
    name: str,
    datasets: list[Dataset],
    cron: str,
    last: Interval,
    now: dt.datetime,
    allow_incomplete: bool,
) -> None:
    if last.start > now:
        latest = _latest(cron, datasets, now, allow_incomplete)
        raise DateError(f"{name}: {last.ds} is in the future; {latest}")
    if allow_incomplete:
        return
    end = _ends(datasets, last)
    if end > now:
        raise DateError(
            f"{name}: the interval of {last.ds} ends {end:%Y-%m-%d %H:%M} UTC, which is still "
            f"to come ({_latest(cron, datasets, now, allow_incomplete)}); "
            "pass --allow-incomplete (allow_incomplete=True) to run it anyway"
        )


def _latest(cron: str, datasets: list[Dataset], now: dt.datetime, allow_incomplete: bool) -> str:
    """The latest date a run may be for at ``now``, in the words both refusals use: the latest
    complete one (:func:`_latest_complete`, what a run without a date runs), or with
    ``allow_incomplete`` the one whose interval has started."""
    if allow_incomplete:
        return f"the latest date it can run is {interval_for(cron, now).ds}, still incomplete"
    return f"the latest complete date is {_latest_complete(cron, datasets, now)}"


def _latest_complete(cron: str, datasets: list[Dataset], now: dt.datetime) -> str:
    """The newest date on ``cron`` whose intervals (every dataset's) have all ended."""
    candidate = interval_for(cron, now)
    while _ends(datasets, candidate) > now:
        candidate = interval_for(cron, candidate.start - dt.timedelta(microseconds=1))
    return candidate.ds


def _ends(datasets: list[Dataset], run: Interval) -> dt.datetime:
    """When the last of the datasets' intervals for the run's logical date ends."""
    return max((interval_for(d.cron, run.start).end for d in datasets), default=run.end)
