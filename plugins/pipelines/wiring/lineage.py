"""OpenLineage datasets of a task: the lake tables it read and wrote, for Airflow's OpenLineage
provider (the operators' ``get_openlineage_facets_on_*`` hooks return :func:`operator_lineage`).

A table is named from its asset URI (:meth:`Lake.asset_uri`, the URI of the task's inlet or
outlet asset), converted as the provider converts an Airflow asset (``file`` and a path, or
``s3://bucket`` and a key), so a catalogue joins the assets and the lineage on one name. A task
that finished reports what it moved: rows read (``inputStatistics``), rows written
(``outputStatistics``) and the schema of each table it wrote (``schema``: the columns its manifest
declares, else those of the Parquet file the run wrote). Only the provider calls this module, and
only when a transport is configured; it imports the provider and the OpenLineage client inside
its functions, never at DAG parse time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipelines.common.partitions import Layer
from pipelines.lake.lake import Lake
from pipelines.project.config import Project
from pipelines.runtime.secrets import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moved:
    """Rows a task read from or wrote to one lake table.

    :param rows: how many (None: not counted, or the task has not finished)
    :param partition: the partition the task wrote, whose file gives the schema of a table whose
        manifest declares none
    """

    layer: Layer
    table: str
    rows: int | None = None
    partition: str | None = None


@dataclass(frozen=True)
class TaskLineage:
    """What one task read and wrote: lake tables, and sources outside the lake (paths or URIs)."""

    reads: tuple[Moved, ...] = ()
    writes: tuple[Moved, ...] = ()
    sources: tuple[str, ...] = ()


def operator_lineage(project: Project, lake: Lake, moved: TaskLineage) -> Any:
    """The provider's ``OperatorLineage`` of a task of ``lake``'s namespace."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    inputs = [*(_source(where) for where in moved.sources), *(_input(lake, r) for r in moved.reads)]
    return OperatorLineage(inputs=inputs, outputs=[_output(project, lake, w) for w in moved.writes])


def dataset_name(uri: str) -> tuple[str, str]:
    """OpenLineage's ``(namespace, name)`` of a URI, as the provider names an Airflow asset of
    that URI (an s3 lake: ``("s3://bucket", "prefix/ns/cleaned/orders")``)."""
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset
    from airflow.sdk import Asset

    found = translate_airflow_asset(Asset(name=uri, uri=uri), None)
    if found is None:  # no provider converts the scheme: the provider's own fallback
        found = ExtractorManager.convert_to_ol_dataset_from_object_storage_uri(uri)
    return found.namespace, found.name


def _source(where: str) -> Any:
    """A source as lineage names it: a credential in its URI is not sent on (``***``)."""
    from openlineage.client.event_v2 import InputDataset

    where = redact(where)
    namespace, name = dataset_name(where if "://" in where else f"file://{where}")
    return InputDataset(namespace=namespace, name=name)


def _input(lake: Lake, read: Moved) -> Any:
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import input_statistics_input_dataset as stats

    namespace, name = dataset_name(lake.asset_uri(read.layer, read.table))
    facets = {}
    if read.rows is not None:
        facets["inputStatistics"] = stats.InputStatisticsInputDatasetFacet(rowCount=read.rows)
    return InputDataset(namespace=namespace, name=name, inputFacets=facets)


def _output(project: Project, lake: Lake, wrote: Moved) -> Any:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

    namespace, name = dataset_name(lake.asset_uri(wrote.layer, wrote.table))
    if wrote.rows is None:  # not finished: the table is named, nothing is measured
        return OutputDataset(namespace=namespace, name=name)
    fields = written_schema(project, lake, wrote)
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets={"schema": _schema_facet(fields)} if fields else {},
        outputFacets={
            "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(rowCount=wrote.rows)
        },
    )


def written_schema(project: Project, lake: Lake, wrote: Moved) -> list[tuple[str, str]]:
    """``[(column, type)]`` of a table as written: the kinds a cleaned table declares, else the
    pandas dtype each column of its Delta schema was written from (the partition column left
    out); [] when the lake cannot be read (lineage never fails a task, and never hides its
    datasets)."""
    try:
        snapshot = lake.table(wrote.layer, wrote.table, project).snapshot()
        declared = snapshot.meta.get("schema") or snapshot.meta.get("columns") or []
        return [(str(column), str(kind)) for column, kind in declared]
    except Exception:  # noqa: BLE001 - a schema the lineage cannot read is left out
        log.warning("lineage: no schema for %s.%s", wrote.layer, wrote.table, exc_info=True)
        return []


def _schema_facet(fields: Iterable[tuple[str, str]]) -> Any:
    from openlineage.client.facet_v2 import schema_dataset

    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]
    )
