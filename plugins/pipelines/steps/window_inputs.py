"""What a workflow's run for day D reads: each input's window, whole, and only days that landed.

A window is **whole** when every day it reads from its producer's ``start_date`` on has
*landed* (a run for it committed and, for a cleaned table, its checks passed:
:meth:`Snapshot.has_landed`); a run on a window that is not whole is refused with one line naming
the input, the missing or failed days, and what to run (:class:`MissingInput`). An input may
allow a partial window with ``min_days: N``: it is read when N of its days landed, D among them.
A day that failed is never read, whatever the window (``all`` too, and a workflow on a cron,
which waits for no day). What a run read is recorded with its output (:func:`read_record`): each
input table's version, from which :mod:`pipelines.steps.staleness` tells when it went stale.

The other direction, which output days a changed input day reaches, is :func:`rerun_days` (the
rewrite signal on Airflow, ``--downstream`` without it); :func:`missing_upstream` lists what must
run before a window is whole (``--upstream``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pipelines.common.partitions import DAILY, Layer, interval_for
from pipelines.common.windows import ranges_text
from pipelines.exceptions import LakeError
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot, Table
from pipelines.project.config import Project
from pipelines.project.workflows import WorkflowInput, WorkflowSpec

if TYPE_CHECKING:
    import pandas as pd

DAYS_READ = "{alias}_days_read"  # the metric a partial window (min_days) adds: days it read


@dataclass(frozen=True)
class Source:
    """Where one input of a workflow is read from and who writes it."""

    table: Table
    snapshots: bool  # a full dataset's cleaned table: whole snapshots, not days
    producer: str  # the dataset or workflow whose runs write it
    cron: str  # the producer's schedule
    start: Any = None  # the producer's first day (dt.date; None: unknown)


def source(project: Project, lake: Lake, item: WorkflowInput) -> Source:
    """The table behind an input (the spec was checked: the name exists in its layer)."""
    if item.layer is Layer.WORKFLOWS:
        upstream = project.workflow(item.table)
        table = lake.workflow(item.table)
        return Source(table, False, item.table, upstream.cron or DAILY, upstream.start_date)
    dataset = project.tables.dataset_of(item)
    table = lake.table(item.layer, item.table, project)
    snapshots = item.layer is Layer.CLEANED and dataset.ingestion.keeps_snapshots
    return Source(table, snapshots, dataset.name, dataset.cron, dataset.start_date)


@dataclass(frozen=True)
class WindowState:
    """One input's window for day ``ds`` as its table stands: what it needs, what landed."""

    spec: WorkflowSpec
    item: WorkflowInput
    ds: str
    src: Source
    snap: Snapshot

    @cached_property
    def needed(self) -> list[str]:
        """The days that must have landed (none for a workflow on a cron: it waits for none)."""
        if self.spec.cron:
            return []
        return self.item.window.needs(self.ds, self.src.start, snapshots=self.src.snapshots)

    @cached_property
    def failed(self) -> dict[str, str]:
        """``day -> why`` of the needed days whose run failed its checks."""
        said = {day: self.snap.failed_checks(day) for day in self.needed}
        return {day: why for day, why in said.items() if why is not None}

    @cached_property
    def missing(self) -> list[str]:
        """The needed days that have not landed and did not fail (not run, or checks pending)."""
        return [d for d in self.needed if d not in self.failed and not self.snap.has_landed(d)]

    @property
    def landed(self) -> list[str]:
        return [d for d in self.needed if d not in self.failed and d not in self.missing]

    @property
    def readable(self) -> bool:
        """Whether the run may read it: whole, or (``min_days``) D and enough days landed."""
        if not self.failed and not self.missing:
            return True
        least = self.item.min_days
        return least is not None and self.ds in self.landed and len(self.landed) >= least

    @cached_property
    def partitions(self) -> list[str]:
        """The partitions to read, oldest first: those of the window whose day did not fail and
        is not missing (a partial window: a later delivery's update to a day that has not run
        is not that day; a snapshot input: the newest such snapshot at or before D)."""
        bad = {p for p in self.snap.partitions if self.snap.failed_checks(p) is not None}
        kept = [p for p in self.snap.partitions if p not in bad | set(self.missing)]
        return self.item.window.select(kept, self.ds, snapshots=self.src.snapshots)

    def refusal(self) -> MissingInput:
        return MissingInput(self)


class MissingInput(LakeError):
    """An input's window for day D is not whole: days of it have not landed, or failed."""

    def __init__(self, state: WindowState):
        self.state = state
        spec, item, ds, producer = state.spec, state.item, state.ds, state.src.producer
        self.workflow, self.input, self.day, self.producer = spec.name, item, ds, producer
        what = f"{spec.name}: input {item.alias} ({item.layer} {item.table}, {item.window})"
        need = f" (min_days {item.min_days}: {len(state.landed)} landed)" if item.min_days else ""
        if state.failed:
            day, why = next(iter(state.failed.items()))
            more = len(state.failed) - 1
            others = f" and {more} more day{'s' if more > 1 else ''} of its window" if more else ""
            super().__init__(
                f"{what} failed its checks for {day} ({why}){others}{need}: fix it and rerun "
                f"{producer} for {ranges_text(state.failed)}"
            )
            return
        if state.missing == [ds]:
            super().__init__(
                f"{what} has no data for {ds} yet{need}: run {producer} for {ds} first "
                f"(pipelines run {producer} --date {ds}), or pass --upstream"
            )
            return
        first, last = state.missing[0], state.missing[-1]
        command = (
            f"pipelines run {producer} --date {first}"
            if first == last
            else f"pipelines backfill {producer} --start {first} --end {last}"
        )
        super().__init__(
            f"{what} is missing {ranges_text(state.missing)} of its window for {ds}{need}: run "
            f"{producer} for them first ({command}), or pass --upstream"
        )


def window_states(spec: WorkflowSpec, ds: str, lake: Lake, project: Project) -> list[WindowState]:
    """Each input's window for ``ds``, in the spec's order."""
    states = []
    for item in spec.inputs:
        src = source(project, lake, item)
        states.append(WindowState(spec, item, ds, src, src.table.snapshot()))
    return states


def missing_upstream(
    spec: WorkflowSpec, ds: str, lake: Lake, project: Project
) -> list[tuple[str, str]]:
    """``(producer, day)`` of every missing or failed day of every input's window for ``ds``,
    upstream first (a workflow's own window before its day), each once, nothing that landed."""
    order: list[tuple[str, str]] = []
    for state in window_states(spec, ds, lake, project):
        upstream = project.workflow(state.src.producer)
        for day in sorted([*state.missing, *state.failed]):
            if upstream is not None:
                order += missing_upstream(upstream, day, lake, project)
            order.append((state.src.producer, day))
    return list(dict.fromkeys(order))


def rerun_days(
    project: Project, lake: Lake, workflow: str, layer: Layer, table: str, changed: list[str]
) -> list[str]:
    """The days ``workflow`` already ran for (written, or refused) whose input windows hold a
    changed day of ``table``: the days to run again (a day it never ran for waits for its
    first landing).

    The input's window says which days a changed day C reaches (:meth:`Window.reached_by`): C ..
    C+N-1 (``Nd``), every day from C on that the workflow ran for (``all``), C alone for a
    snapshot (each later day has a snapshot of its own).
    """
    spec = project.workflow(workflow)
    if spec is None:
        return []
    ran = lake.workflow(workflow).snapshot().meta.get("runs", {})
    days: set[str] = set()
    for item in spec.inputs:
        if (item.layer, item.table) != (layer, table):
            continue
        snapshots = source(project, lake, item).snapshots
        for day in changed:
            reached = item.window.reached_by(day, snapshots=snapshots)
            days.update(reached if reached.bounded else reached.of(ran))
    return sorted(d for d in days if d in ran)


def read_inputs(
    spec: WorkflowSpec, ds: str, lake: Lake, project: Project
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]]]:
    """``alias -> rows`` of each input's window for ``ds`` (with the partition column), and
    what was read (:func:`read_record`).

    :raises MissingInput: an input's window is not whole (a workflow on its inputs), or has
        nothing at or before ``ds`` (a workflow on a cron)
    """
    states = window_states(spec, ds, lake, project)
    for state in states:
        if not state.readable:
            raise state.refusal()
    inputs, read = {}, {}
    for state in states:
        wanted = state.partitions
        if spec.cron and not wanted:  # on the clock: the input's own latest day, named
            raise MissingInput(_nothing(spec, state, interval_for(state.src.cron, ds).ds))
        inputs[state.item.alias] = _rows(state.src.table, wanted, state.snap)
        read[state.item.alias] = read_record(state, wanted)
    return inputs, read


def _nothing(spec: WorkflowSpec, state: WindowState, day: str) -> WindowState:
    """The state a workflow on a cron reports when its input has nothing at or before D."""
    pinned = WindowState(spec, state.item, day, state.src, state.snap)
    pinned.__dict__.update(needed=[day], failed={}, missing=[day])
    return pinned


def read_record(state: WindowState, partitions: list[str]) -> dict[str, Any]:
    """What a run read of one input: the table's version and the partitions (their count and
    bounds), and how many of its window's days had landed."""
    return {
        "table": f"{state.item.layer}/{state.item.table}",
        "version": state.snap.version,
        "partitions": len(partitions),
        "first": partitions[0] if partitions else None,
        "last": partitions[-1] if partitions else None,
        "days": len(state.landed) if state.needed else len(partitions),
    }


def _rows(table: Table, partitions: list[str], snap: Snapshot) -> pd.DataFrame:
    """The partitions' rows in the table's kinds; an empty window still has the columns."""
    import pandas as pd

    rows, read_from = table.read_version(partitions, snap)
    rows = read_from.as_stored(rows)  # an empty read gets the cleaned schema's columns here
    rows = rows.drop(columns=[c for c in rows.columns if str(c).startswith("_")])
    if not rows.empty:
        return rows
    kinds = {table.key: "string", **dict(read_from.meta.get("columns", []))}  # a workflow's
    empty = {c: pd.Series(dtype=kinds.get(c, rows[c].dtype if c in rows else "string"))
             for c in dict.fromkeys([*kinds, *rows.columns])}  # fmt: skip
    return pd.DataFrame(empty)
