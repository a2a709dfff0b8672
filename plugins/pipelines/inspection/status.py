"""What each dataset, workflow and aggregate of a namespace holds and whether it is healthy, from
the namespace's runs table alone (one read of it; no table's Delta log is opened, but where its
records cannot say what the table holds: :meth:`Table.outline`): what ``pipelines status`` shows.

One :class:`Status` per table that a row of the project writes: a dataset's cleaned table (with
its raw deliveries and each day's run), an aggregate's and a workflow's output. Its **gaps** are
the run days from its start to its newest one that have nothing: no raw delivery for a dataset,
no recorded run for a workflow, neither a run nor a partition for an aggregate (a run recomputes
the ``dt`` of every row it touched: a late row's older day has data, though no run of its own).
Its **freshness** compares the newest day that has *landed* (run, and checks passed:
:meth:`Snapshot.has_landed`, what a workflow asks before it reads the day) with the latest
complete interval (:func:`pipelines.project.run_dates.latest_date`): it is *late* when the
first interval it lacks ended longer ago than its allowance. A workflow's output day is
**stale** when what it read has changed since (an input day of its window rewritten, or no
longer landed) or its code did
(:func:`pipelines.steps.staleness.stale_days`, from the same records); a workflow's day whose
run failed is **failed**, not a gap.

Allowances: a dataset's is its registry ``freshness`` (none: never late); an aggregate's is its
dataset's (the same run writes both); a workflow's is the largest of the datasets it waits for
(directly, or through the aggregates and workflows it reads): it cannot be due before its
slowest input, and has none when any of them has none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pipelines.common.partitions import DAILY, interval_for, run_days, utc
from pipelines.common.windows import range_text as gap_text
from pipelines.common.windows import ranges_text
from pipelines.exceptions import CorruptFile
from pipelines.lake.lake import Lake
from pipelines.lake.tables import FAILED, PASSED, Snapshot, Table
from pipelines.project.aggregates import AggregateSpec
from pipelines.project.columns import DATASET_TESTS, TABLE_TESTS
from pipelines.project.config import Kind, Project
from pipelines.project.registry import SHRINK_CHECK, Dataset
from pipelines.project.run_dates import latest_date, waits_for
from pipelines.project.workflows import WorkflowSpec
from pipelines.runtime.secrets import redact
from pipelines.steps.staleness import stale_days

STALE = "stale"
COLUMNS = (
    *("NAME", "KIND", "RAW", "PARTITION", "ROWS", "QUARANTINED", "CHECKS", "GAPS", "STALE"),
    "FRESHNESS",
)
RUN_COLUMN = "LATEST RUN"  # with Airflow's runs
SHOWN_GAPS = 2  # gap (and stale) ranges a table cell names (the JSON and the page have all)


class Day(NamedTuple):
    """One day of a table: the rows it got (a dataset's raw delivery), of which quarantined,
    whether its checks (a workflow's: its run) failed, and whether a workflow's output of it is
    stale (a tuple: a year of a hundred tables makes 70,000 of them)."""

    ds: str
    rows: int
    quarantined: int = 0
    failed: bool = False
    stale: bool = False

    @property
    def state(self) -> str:
        """``failed``, ``stale`` or ``ok``."""
        return FAILED if self.failed else STALE if self.stale else "ok"


@dataclass(frozen=True)
class Freshness:
    """How far a table's newest landed day is behind the latest complete interval.

    :param expected: the latest complete interval's day; None: none is due yet (it starts later)
    :param newest: the newest day that landed; None: none has
    :param behind: ``expected`` - ``newest`` (zero: up to date; None: nothing landed)
    :param overdue: how long ago the first interval it lacks ended (None: it lacks none)
    :param allowance: how long after that it may be (None: no allowance, never late)
    """

    expected: str | None
    newest: str | None
    behind: dt.timedelta | None
    overdue: dt.timedelta | None
    allowance: dt.timedelta | None

    @property
    def late(self) -> bool:
        return None not in (self.overdue, self.allowance) and self.overdue > self.allowance

    def __str__(self) -> str:
        if self.expected is None:
            return "not due yet"
        if self.overdue is None:
            return "up to date"
        shown = "no data" if self.behind is None else f"{duration(self.behind)} behind"
        return f"{shown}, late" if self.late else shown


@dataclass(frozen=True)
class LastRun:
    """The latest run of the DAG that writes a table, as Airflow reports it."""

    state: str
    ds: str

    def __str__(self) -> str:
        return f"{self.state} {self.ds}".strip()


@dataclass(frozen=True)
class Status:
    """One row of ``pipelines status``.

    :param kind: dataset, aggregate or workflow
    :param ingestion: a dataset's kind (incremental, full); None for the others
    :param newest_raw: a dataset's newest raw delivery; None for the others, or none yet
    :param partition: the newest partition of its table (cleaned, aggregated or workflows)
    :param key: that table's partition key (``ds`` or ``dt``)
    :param rows: its rows as it stands: a cleaned table's current partitions (a full dataset's
        newest snapshot), every partition of an aggregate, a workflow's newest output
    :param quarantined: rows a dataset's newest run quarantined
    :param checks: a dataset's newest run's checks (passed, pending, failed: ...); a
        workflow's newest run's (passed: it wrote its output; failed: why it did not)
    :param failed_days: the days whose checks (a workflow's: whose run) failed
    :param gaps: the days with nothing, as ranges ``(first, last)`` of consecutive run days
    :param days: what each day got, for the chart
    :param start: the first day it can have (its start_date, or its inputs' latest)
    :param dag_id: the DAG that writes the table
    :param stale: a workflow's stale output days and why each is, ``(day, why)`` oldest first
    :param run: its latest run (only when Airflow was asked)
    :param damaged: the damaged files of its tables, each ``file: what is wrong`` (the newest
        log entry of each, and the data files it adds: ``pipelines repair`` heals them)
    """

    name: str
    kind: Kind
    ingestion: str | None
    newest_raw: str | None
    partition: str | None
    key: str
    rows: int
    quarantined: int | None
    checks: str | None
    failed_days: tuple[str, ...]
    gaps: tuple[tuple[str, str], ...]
    freshness: Freshness
    days: tuple[Day, ...]
    start: str
    dag_id: str
    stale: tuple[tuple[str, str], ...] = ()
    run: LastRun | None = None
    damaged: tuple[str, ...] = ()

    @property
    def late(self) -> bool:
        return self.freshness.late

    def with_run(self, run: LastRun | None) -> Status:
        return dataclasses.replace(self, run=run)

    def cells(self, *, with_run: bool = False) -> tuple[str, ...]:
        """The row as the table shows it (``-``: nothing), :data:`COLUMNS` in order, then
        :data:`RUN_COLUMN` when asked."""
        shown = (
            self.name,
            str(self.kind),
            self.newest_raw or "-",
            f"{self.key}={self.partition}" if self.partition else "-",
            str(self.rows),
            "-" if self.quarantined is None else str(self.quarantined),
            self.checks_text,
            self.gaps_text,
            self.stale_text,
            str(self.freshness),
        )
        return (*shown, str(self.run) if self.run else "-") if with_run else shown

    @property
    def checks_text(self) -> str:
        """The newest run's checks in a word, and how many earlier days failed theirs."""
        if self.damaged:
            return "damaged"
        if self.checks is None:
            return "-"
        newest_failed = self.checks.startswith(FAILED)
        earlier = len(self.failed_days) - newest_failed
        word = FAILED if newest_failed else self.checks
        named = failed_tests(self.checks) if newest_failed else []
        word += f" ({', '.join(named)})" if named else ""
        return f"{word}; {earlier} earlier failed" if earlier else word

    @property
    def gaps_text(self) -> str:
        """The first gap ranges, and how many more there are."""
        if not self.gaps:
            return "-"
        shown = ", ".join(gap_text(*g) for g in self.gaps[:SHOWN_GAPS])
        more = len(self.gaps) - SHOWN_GAPS
        return f"{shown} (+{more} more)" if more > 0 else shown

    @property
    def stale_days(self) -> tuple[str, ...]:
        return tuple(day for day, _ in self.stale)

    @property
    def stale_text(self) -> str:
        """The first stale ranges, and why the newest stale day is (with how many other
        reasons the others have)."""
        if not self.stale:
            return "-"
        why = self.stale[-1][1]
        others = len({w for _, w in self.stale} - {why})
        more = f" (+{others} other reason{'s' if others > 1 else ''})" if others else ""
        return f"{ranges_text(self.stale_days, SHOWN_GAPS)}: {why}{more}"

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON values (durations in seconds, gaps as ``[first, last]``, stale days
        with their reasons, each day with its state; ``checks`` is ``damaged`` for a table with
        damaged files, as the text says: its recorded checks describe rows it cannot serve)."""
        fresh = self.freshness
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        body.update(
            kind=str(self.kind),
            failed_days=list(self.failed_days),
            gaps=[list(g) for g in self.gaps],
            stale={"days": list(self.stale_days), "reasons": dict(self.stale)},
            days=[{**d._asdict(), "state": d.state} for d in self.days],
            damaged=list(self.damaged),
            checks="damaged" if self.damaged else self.checks,
            run=dataclasses.asdict(self.run) if self.run else None,
            freshness={
                "expected": fresh.expected,
                "newest": fresh.newest,
                "behind_seconds": _seconds(fresh.behind),
                "overdue_seconds": _seconds(fresh.overdue),
                "allowance_seconds": _seconds(fresh.allowance),
                "late": fresh.late,
                "text": str(fresh),
            },
        )
        return body


def failed_tests(outcome: str) -> list[str]:
    """The declared table tests a failed outcome names (``unique zip``, ``min_rows``)."""
    phrases = outcome.removeprefix(FAILED).lstrip(": ").split("; ")
    heads = [p.split(":", 1)[0] for p in phrases if ":" in p]
    return [h for h in heads if h.split(" ", 1)[0] in (*TABLE_TESTS, *DATASET_TESTS, SHRINK_CHECK)]


def status(
    project: Project, lake: Lake, now: dt.datetime | None = None, *, days: bool = False
) -> list[Status]:
    """A row for every dataset, workflow and aggregate of ``project`` in ``lake``, in that order
    (each kind in file order), with freshness as of ``now`` (default: now).

    :param days: also what each day got (:attr:`Status.days`, for charts; a table needs none)
    """
    due = _Due(project, utc(now or dt.datetime.now(dt.UTC)), days)
    with lake.runs_held():  # one moment of each runs table for every row
        rows = [_dataset(d, lake, due) for d in project.datasets]
        rows += [_workflow(w, lake, due) for w in project.workflows]
        by_name = {d.name: d for d in project.datasets}
        rows += [_aggregate(a, by_name[a.dataset], lake, due) for a in project.aggregates]
    return rows


class _Due:
    """The latest complete day of each row, as of ``now``: a dataset's depends only on its
    schedule (asked once per schedule: a registry has a handful), a workflow's on its inputs'."""

    def __init__(self, project: Project, now: dt.datetime, days: bool) -> None:
        self.project = project
        self.now = now
        self.days = days
        self._by_cron: dict[str, dt.date] = {}
        self._run_days: dict[tuple[str, dt.date, dt.date], list[str]] = {}

    def run_days(self, cron: str, start: dt.date, end: dt.date) -> list[str]:
        """:func:`run_days`, asked once per schedule and span (most rows share one: a dataset
        and its aggregate, datasets of one start and schedule); not to be changed."""
        key = (cron, start, end)
        if key not in self._run_days:
            self._run_days[key] = run_days(cron, start, end)
        return self._run_days[key]

    def of(self, dataset: Dataset) -> dt.date:
        if dataset.cron not in self._by_cron:
            self._by_cron[dataset.cron] = latest_date(self.project, dataset.name, self.now)
        return self._by_cron[dataset.cron]

    def freshness(
        self,
        cron: str,
        start: dt.date,
        expected: dt.date,
        newest: str | None,
        allowance: dt.timedelta | None,
    ) -> Freshness:
        """How ``newest`` stands against ``expected``, the latest complete day since ``start``."""
        if expected < start:
            return Freshness(None, newest, None, None, allowance)
        if newest is not None and newest >= expected.isoformat():
            return Freshness(expected.isoformat(), newest, dt.timedelta(0), None, allowance)
        if newest is None:
            lacking = interval_for(cron, run_days(cron, start, expected)[0])
            behind = None
        else:
            lacking = interval_for(cron, interval_for(cron, newest).end)
            behind = dt.timedelta(days=(expected - dt.date.fromisoformat(newest)).days)
        overdue = max(self.now - lacking.end, dt.timedelta(0))
        return Freshness(expected.isoformat(), newest, behind, overdue, allowance)


def _dataset(dataset: Dataset, lake: Lake, due: _Due) -> Status:
    raw, raw_damage = _outline(lake.raw(dataset.name))
    table = lake.cleaned(dataset)
    cleaned, damaged = _outline(table)
    runs = cleaned.meta.get("runs", {})
    parts = sorted(cleaned.partitions)
    delivered = sorted(raw.partitions)
    last = runs.get(max(runs), {}) if runs else {}
    failed = cleaned.failed_days()
    failed_set = set(failed)
    days = tuple(
        Day(ds, raw.rows(ds), int(runs.get(ds, {}).get("quarantined", 0)), ds in failed_set)
        for ds in (delivered if due.days else ())
    )
    newest = _newest_landed(cleaned, runs, parts if table.key == "ds" else ())
    return Status(
        name=dataset.name,
        kind=Kind.DATASET,
        ingestion=str(dataset.ingestion),
        newest_raw=delivered[-1] if delivered else None,
        partition=parts[-1] if parts else None,
        key=table.key,
        rows=sum(cleaned.rows(p) for p in dataset.ingestion.current_partitions(parts)),
        quarantined=last.get("quarantined"),
        checks=last.get("checks"),
        failed_days=failed,
        gaps=gaps(due.run_days(dataset.cron, dataset.start_date, _day(delivered)), delivered),
        freshness=due.freshness(
            dataset.cron, dataset.start_date, due.of(dataset), newest, dataset.freshness
        ),
        days=days,
        start=dataset.start_date.isoformat(),
        dag_id=_dag_id(due.project, dataset.name, lake),
        damaged=raw_damage + damaged,
    )


def _outline(table: Table) -> tuple[Snapshot, tuple[str, ...]]:
    """:meth:`Table.outline`, and the damaged files of the table's newest log entry (one small
    read): a table whose log cannot be replayed is shown empty, and damaged."""
    try:
        snap = table.outline()
    except CorruptFile as exc:
        return Snapshot(-1, recorded=table.recorded, key=table.key), (_damage_text(exc),)
    return snap, tuple(f"{redact(d.path)}: {d.why}" for d in table.newest_damage(snap.version))


def _damage_text(exc: CorruptFile) -> str:
    return f"{redact(exc.path)}: {str(exc).split(' is damaged (', 1)[-1].split('): ', 1)[0]}"


def _aggregate(spec: AggregateSpec, dataset: Dataset, lake: Lake, due: _Due) -> Status:
    table = lake.aggregated(spec.name)
    snap, damaged = _outline(table)
    newest = _newest_landed(snap, snap.meta.get("runs", {}))
    start, cron = dataset.start_date, dataset.cron
    fresh = due.freshness(cron, start, due.of(dataset), newest, dataset.freshness)
    dag_id = _dag_id(due.project, dataset.name, lake)
    row = _output(spec.name, Kind.AGGREGATE, table.key, snap, (cron, start), fresh, dag_id, due)
    return dataclasses.replace(row, damaged=damaged)


def _workflow(spec: WorkflowSpec, lake: Lake, due: _Due) -> Status:
    """A workflow's row: an output, with its runs' outcomes (a failed run records its day as
    failed) and the days whose output is stale."""
    table = lake.workflow(spec.name)
    snap, damaged = _outline(table)
    cron, inputs = spec.cron or DAILY, waits_for(due.project, spec.name)
    start = spec.start_date or max((d.start_date for d in inputs), default=dt.date.min)
    allowances = [d.freshness for d in inputs]
    allowance = max(allowances) if allowances and None not in allowances else None
    expected = latest_date(due.project, spec.name, due.now)
    runs = snap.meta.get("runs", {})
    newest = _newest_landed(snap, runs, snap.partitions)
    fresh = due.freshness(cron, start, expected, newest, allowance)
    dag_id = _dag_id(due.project, spec.name, lake)
    include = Path(due.project.include) if due.project.include else None
    stale = stale_days(spec, lake, due.project, include=include) if runs else {}
    failed = snap.failed_days()
    schedule, marks = (cron, start), (set(failed), set(stale))
    row = _output(spec.name, Kind.WORKFLOW, table.key, snap, schedule, fresh, dag_id, due, marks)
    return dataclasses.replace(
        row,
        checks=runs[max(runs)].get("checks", PASSED) if runs else None,
        failed_days=failed,
        stale=tuple(stale.items()),
        damaged=damaged,
    )


def _output(
    name: str,
    kind: Kind,
    key: str,
    snap: Snapshot,
    schedule: tuple[str, dt.date],
    fresh: Freshness,
    dag_id: str,
    due: _Due,
    marks: tuple[set[str], set[str]] = (set(), set()),
) -> Status:
    """The row of an aggregate or a workflow: a day is a run it recorded (with the rows that run
    wrote; ``marks``: the days that failed, and that are stale), or a partition a run recomputed
    up to the newest run (an aggregate's ``dt`` of a late row: that day has data, no gap); its
    rows are every partition's for an aggregate (the table is by ``dt``), the newest output's
    for a workflow (one output a day)."""
    runs = snap.meta.get("runs", {})
    cron, start = schedule
    ran = (
        sorted({*runs, *snap.partitions}) if key == "ds" else _covered(runs, snap.partitions, start)
    )
    failed, stale = marks
    days = tuple(
        Day(ds, _rows_of(runs, snap, ds), 0, ds in failed, ds in stale)
        for ds in (ran if due.days else ())
    )
    newest = max(snap.partitions, default=None)
    rows = snap.rows(newest) if kind is Kind.WORKFLOW and newest else snap.rows()
    return Status(
        name=name,
        kind=kind,
        ingestion=None,
        newest_raw=None,
        partition=newest,
        key=key,
        rows=rows,
        quarantined=None,
        checks=None,
        failed_days=(),
        gaps=gaps(due.run_days(cron, start, _day(ran)), ran),
        freshness=fresh,
        days=days,
        start=start.isoformat(),
        dag_id=dag_id,
    )


def _covered(runs: dict, partitions: Iterable[str], start: dt.date) -> list[str]:
    """The days an aggregate has, oldest first: each day a run recorded, and each ``dt``
    partition from ``start`` up to the newest run (a run recomputes the ``dt`` of every row it
    touched, a late row's older day too: that day is covered, though no run was its own)."""
    newest = max(runs, default=None)
    first = start.isoformat()
    held = {p for p in partitions if newest is not None and first <= p <= newest}
    return sorted({*runs, *held})


def _newest_landed(snap: Snapshot, runs: dict, partitions: Iterable[str] = ()) -> str | None:
    """The newest day that landed (of the runs, and of ``ds`` partitions older than them)."""
    return next((d for d in sorted({*runs, *partitions}, reverse=True) if snap.has_landed(d)), None)


def _rows_of(runs: dict, snap: Snapshot, ds: str) -> int:
    """The rows the run of ``ds`` wrote (else its partition's)."""
    run = runs.get(ds)
    return int(run["rows"]) if run and "rows" in run else snap.rows(ds)


def _day(days: list[str]) -> dt.date:
    """The newest of ``days`` (sorted), or the day before any (no gap can be found)."""
    return dt.date.fromisoformat(days[-1]) if days else dt.date.min


def _dag_id(project: Project, name: str, lake: Lake) -> str:
    return project.dag_id(name, lake.namespace)


def gaps(expected: list[str], present: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The days of ``expected`` (in order) not in ``present``, as ranges of consecutive ones."""
    have = set(present)
    missing = [ds for ds in expected if ds not in have]
    if not missing:
        return ()
    position = {ds: n for n, ds in enumerate(expected)}
    ranges = [[missing[0], missing[0]]]
    for ds in missing[1:]:
        if position[ds] == position[ranges[-1][1]] + 1:
            ranges[-1][1] = ds
        else:
            ranges.append([ds, ds])
    return tuple((first, last) for first, last in ranges)


def duration(value: dt.timedelta) -> str:
    """``3d``, ``5h``, ``2d 4h``, ``40m``."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else ""]
    if not days:
        parts.append(f"{mins}m" if mins else "")
    return " ".join(p for p in parts if p) or "0m"


def _seconds(value: dt.timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()
