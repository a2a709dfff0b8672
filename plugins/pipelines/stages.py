"""The stages of a dataset DAG: one task group each, holding the step that names its task.

``ingest`` (``extract``) -> ``clean`` (``merge``) -> ``check`` (``check_keys``) -> ``aggregate``
(``aggregate``). The group and task ids are the operators' (:mod:`pipelines.components.operators`);
every task declares the lake tables it reads and writes as Airflow Assets.
"""

from __future__ import annotations

from airflow.sdk import Asset, TaskGroup

from pipelines.components.lake import Lake
from pipelines.components.operators import (
    AggregateOperator,
    CheckKeysOperator,
    DatasetStepOperator,
    ExtractOperator,
    MergeOperator,
)
from pipelines.config import AggregateSpec
from pipelines.partitions import Layer
from pipelines.registry import Dataset


def table_asset(lake: Lake, layer: Layer, name: str) -> Asset:
    """The table's lake URI, used as the asset's name too.

    Airflow ties a name to one URI, and the lake root may differ between deployments or tests;
    the readable ``{namespace}.{layer}.{name}`` is in ``extra["table"]``.
    """
    uri = lake.asset_uri(layer, name)
    table = f"{lake.namespace}.{layer}.{name}"
    return Asset(name=uri, uri=uri, group="pipelines", extra={"table": table})


def stage(
    operator: type[DatasetStepOperator],
    tooltip: str,
    dataset: Dataset,
    lake: Lake,
    *,
    outlets: list[Asset] | None = None,
    doc_md: str | None = None,
) -> TaskGroup:
    """The task group ``operator.group`` holding the one step ``operator.step`` of ``dataset``,
    with the dataset's tables the step reads and writes as its inlets and outlets.

    :param outlets: tables the step writes besides its dataset's own
    """
    with TaskGroup(operator.group, tooltip=tooltip) as group:
        operator(
            task_id=operator.step,
            dataset=dataset.name,
            namespace=lake.namespace,
            inlets=[table_asset(lake, layer, dataset.name) for layer in operator.reads],
            outlets=[
                *(table_asset(lake, layer, dataset.name) for layer in operator.writes),
                *(outlets or []),
            ],
            doc_md=doc_md,
        )
    return group


def ingest(dataset: Dataset, lake: Lake) -> TaskGroup:
    """Source -> the raw partition of the interval."""
    doc = f"Reads `{dataset.source}` for the interval into raw `ds=`."
    return stage(ExtractOperator, f"{dataset.source} -> raw", dataset, lake, doc_md=doc)


def clean(dataset: Dataset, lake: Lake) -> TaskGroup:
    """Raw -> typed, deduplicated rows merged into cleaned (bad rows to quarantine)."""
    doc = f"{dataset.ingestion.value} merge by `{'|'.join(dataset.primary_key)}`"
    return stage(MergeOperator, "raw -> cleaned", dataset, lake, doc_md=doc)


def check(dataset: Dataset, lake: Lake) -> TaskGroup:
    """The quality gate between cleaned and aggregated."""
    return stage(CheckKeysOperator, "keys unique and not null; counts reconcile", dataset, lake)


def aggregate(dataset: Dataset, specs: list[AggregateSpec], lake: Lake) -> TaskGroup:
    """Cleaned -> the dataset's business tables from aggregates.yaml."""
    tables = [table_asset(lake, Layer.AGGREGATED, s.name) for s in specs]
    doc = ", ".join(f"`{s.name}`" for s in specs) or "no aggregates"
    return stage(
        AggregateOperator, "cleaned -> aggregated", dataset, lake, outlets=tables, doc_md=doc
    )
