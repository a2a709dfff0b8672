"""Keeping a namespace's tables small and tidy: which tables it has (:func:`tables`), compacting
their small files (:func:`optimize`) and deleting the files no recent version needs
(:func:`vacuum`). No Airflow: ``pipelines show|optimize|vacuum`` and the namespace's maintenance
DAG both call these.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pipelines.common.partitions import Layer
from pipelines.exceptions import CommitConflict, PipelinesError
from pipelines.lake.delta import retention_problem

if TYPE_CHECKING:
    from pipelines.common.partitions import Ingestion
    from pipelines.lake.lake import Lake
    from pipelines.lake.tables import Table
    from pipelines.project.config import Project

log = logging.getLogger(__name__)


def tables(
    project: Project, lake: Lake, *, foreign: bool = True
) -> Iterator[tuple[Layer, str, Table, Ingestion | None]]:
    """(layer, name, table, ingestion kind or None) of every table the project can have.

    :param foreign: also the tables another namespace holds and this one reads in place (the
        upstream's raw layer, for a research namespace): shown, never maintained from here
    """
    for d in project.datasets:
        for layer in (Layer.RAW, Layer.CLEANED, Layer.QUARANTINE):
            if not (foreign or lake.owns(layer)):
                continue
            label = d.name if lake.owns(layer) else f"{d.name} (read from {lake.home_of(layer)})"
            yield layer, label, lake.table(layer, d.name, project), d.ingestion
    for a in project.aggregates:
        yield Layer.AGGREGATED, a.name, lake.aggregated(a.name), None
    for w in project.workflows:
        yield Layer.WORKFLOWS, w.name, lake.workflow(w.name), None


def owned(project: Project, lake: Lake) -> list[Any]:
    """Every table this namespace writes, and its runs table last: what maintenance touches.
    Each table's maintenance commit is recorded in the runs table (:meth:`Table.optimize`), in
    one append for them all (:meth:`RunLog.batched`), before the runs table's own turn."""
    return [t for _, _, t, _ in tables(project, lake, foreign=False)] + [lake.run_log()]


@dataclass(frozen=True)
class Compacted:
    """What :func:`optimize` did: small files of ``tables`` tables ``removed`` (from the current
    version; still on disk for older versions until a vacuum), ``added`` in their place.

    :param beaten: the tables a writer committed to while they were compacted (left as they
        were: the next optimize compacts them)
    """

    tables: int
    removed: int
    added: int
    beaten: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "beaten": list(self.beaten)}


@dataclass(frozen=True)
class Vacuumed:
    """What :func:`vacuum` did: ``deleted`` files of ``tables`` tables that no version of the
    last ``retention_hours`` needed."""

    tables: int
    deleted: int
    retention_hours: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def optimize(project: Project, lake: Lake) -> Compacted:
    """Compact the small files of every table the namespace writes, one commit per table.

    A table a writer commits to meanwhile is left for the next time, and the others are still
    compacted: maintenance never fails a namespace's runs, nor because of them.
    """
    removed = added = 0
    beaten: list[str] = []
    maintained = owned(project, lake)
    *tables_, runs = maintained
    with runs.batched():
        done = [_compacted(table, lake, beaten) for table in tables_]
    done.append(_compacted(runs, lake, beaten))
    for metrics in done:
        removed += int(metrics.get("numFilesRemoved", 0))
        added += int(metrics.get("numFilesAdded", 0))
    return Compacted(len(maintained), removed, added, tuple(beaten))


def _compacted(table: Any, lake: Lake, beaten: list[str]) -> dict:
    """``table.optimize()``'s metrics ({} when a writer committed first: named in ``beaten``)."""
    try:
        return table.optimize()
    except CommitConflict as exc:
        log.warning("not compacted (a writer committed first): %s", exc)
        beaten.append(table.path.removeprefix(f"{lake.prefix}/"))
        return {}


def vacuum(project: Project, lake: Lake, retention_hours: float) -> Vacuumed:
    """Delete the files of the namespace's tables that no version of the last
    ``retention_hours`` needs: those of replaced versions (a compaction's small files among
    them) and those crashed writers left.

    :raises PipelinesError: ``retention_hours`` is under
        :data:`~pipelines.lake.delta.MIN_RETENTION_HOURS`
    """
    why = retention_problem(retention_hours)
    if why:
        raise PipelinesError(f"retention_hours {why}")
    maintained = owned(project, lake)
    *tables_, runs = maintained
    with runs.batched():
        deleted = sum(len(t.vacuum(retention_hours)) for t in tables_)
    runs.compact()  # the vacuums' records join the file the optimize before left
    deleted += len(runs.vacuum(retention_hours))
    return Vacuumed(len(maintained), deleted, retention_hours)
