"""``aggregate``: cleaned -> the dataset's business tables from aggregates.yaml."""

from __future__ import annotations

from airflow.sdk import TaskGroup

from pipelines.components.lake import Lake
from pipelines.components.operators import AggregateOperator
from pipelines.config import AggregateSpec
from pipelines.partitions import Layer
from pipelines.registry import Dataset
from pipelines.workflows.assets import step_group, table_asset


def aggregate(dataset: Dataset, specs: list[AggregateSpec], lake: Lake) -> TaskGroup:
    """Task group ``aggregate`` with task ``aggregate`` writing every spec's table."""
    return step_group(
        "aggregate",
        "cleaned -> aggregated",
        AggregateOperator,
        "aggregate",
        dataset,
        lake,
        inlets=[table_asset(lake, Layer.CLEANED, dataset.name)],
        outlets=[table_asset(lake, Layer.AGGREGATED, s.name) for s in specs],
        doc_md=", ".join(f"`{s.name}`" for s in specs) or "no aggregates",
    )
