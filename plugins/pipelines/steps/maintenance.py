"""Keeping a namespace's tables small and tidy: which tables it has (:func:`tables`), compacting
their small files (:func:`optimize`) and deleting the files no recent version needs
(:func:`vacuum`). No Airflow: ``pipelines show|optimize|vacuum`` and the namespace's maintenance
DAG both call these.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pipelines.common.partitions import Layer

if TYPE_CHECKING:
    from pipelines.common.partitions import Ingestion
    from pipelines.lake.lake import Lake
    from pipelines.lake.tables import Table
    from pipelines.project.config import Project


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
    """Every table this namespace writes, and its runs table: what maintenance touches."""
    return [t for _, _, t, _ in tables(project, lake, foreign=False)] + [lake.run_log()]
