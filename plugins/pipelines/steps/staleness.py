"""Which days of a workflow's output are stale, and why: what each output read, against now.

A workflow's run for day D records, per input, the version of the table it read, and the hash
of its code (:func:`pipelines.steps.workflow_code.code_hash`); each run of an input's day records
the partitions it rewrote and the version that did (``wrote``,
:data:`pipelines.lake.tables.WROTE`).
An output day is **stale** when

* an input's run rewrote a partition of D's window at a version after the one D read (a late
  run, a rerun that changed rows, a late update reaching an older partition), or
* a day D's window needs no longer has landed (its rerun failed its checks), or
* the code changed: the module's source, the function named, or the params.

Only what the records say is used (the runs table, one read per table): ``status`` asks it of
every workflow. An output written before these records has none and is never called stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.common.windows import ranges_text
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot
from pipelines.project.config import Project
from pipelines.project.workflows import WorkflowInput, WorkflowSpec
from pipelines.steps.window_inputs import Source, source
from pipelines.steps.workflow_code import code_hash


@dataclass(frozen=True)
class _Rewrite:
    version: int
    day: str  # the input run's day
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class _Input:
    item: WorkflowInput
    src: Source
    snap: Snapshot
    rewrites: tuple[_Rewrite, ...]  # newest first

    @classmethod
    def of(cls, item: WorkflowInput, src: Source) -> _Input:
        snap = src.table.outline()
        runs = snap.meta["runs"]
        found = []
        for day in runs:
            wrote = snap.wrote(day)
            if wrote is not None:
                found.append(_Rewrite(wrote[0], day, tuple(wrote[1])))
        return cls(item, src, snap, tuple(sorted(found, key=lambda r: -r.version)))

    def why_stale(self, day: str, read: dict | None, start, *, waits: bool = True) -> str | None:
        """Why the output of ``day`` that read ``read`` of this input is stale (None: it is not).

        :param waits: the workflow waits for its inputs' days (not on a cron, which reads what
            has landed): a needed day that no longer has landed makes it stale
        """
        item = self.item
        label = f"input {item.alias} ({item.layer} {item.table})"
        if read is None:
            return f"{label} was not an input when it ran"
        window = item.window.reads(day, snapshots=self.src.snapshots)
        for rewrite in self.rewrites:
            if rewrite.version <= int(read["version"]):
                break
            inside = window.of(rewrite.partitions)
            if inside:
                return f"{label} {ranges_text(inside)} rewritten after it (run {rewrite.day})"
        if item.min_days is not None or not waits:
            return None  # a partial window, or none awaited: only what it read can be rewritten
        needed = item.window.needs(day, start, snapshots=self.src.snapshots)
        gone = [d for d in needed if not self.snap.has_landed(d)]
        return f"{label} {ranges_text(gone)} no longer landed (failed or removed)" if gone else None


def stale_days(
    spec: WorkflowSpec,
    lake: Lake,
    project: Project,
    days: Iterable[str] | None = None,
    include: Path | None = None,
) -> dict[str, str]:
    """``day -> why`` of the workflow's stale output days (of ``days``; default every day it
    wrote), oldest first."""
    written = lake.workflow(spec.name).outline()
    runs = written.meta["runs"]
    asked = sorted(runs if days is None else set(days) & set(runs))
    if not asked:
        return {}
    inputs = [_Input.of(item, source(project, lake, item)) for item in spec.inputs]
    code = code_hash(spec, include)
    stale: dict[str, str] = {}
    for day in asked:
        recorded = runs[day]
        if not written.has_landed(day) or "read" not in recorded:
            continue  # failed (status says so), or written before these records
        why = None
        if recorded.get("code") != code:
            why = f"the code changed ({spec.function}, its module or params)"
        for each in inputs:
            read = recorded["read"].get(each.item.alias)
            why = why or each.why_stale(day, read, each.src.start, waits=not spec.cron)
        if why:
            stale[day] = why
    return stale
