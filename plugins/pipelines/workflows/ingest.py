"""``ingest``: source -> raw partition of the interval."""

from __future__ import annotations

from airflow.sdk import TaskGroup

from pipelines.components.lake import Lake
from pipelines.components.operators import ExtractOperator
from pipelines.partitions import Layer
from pipelines.registry import Dataset
from pipelines.workflows.assets import step_group, table_asset


def ingest(dataset: Dataset, lake: Lake) -> TaskGroup:
    """Task group ``ingest`` with task ``extract``."""
    return step_group(
        "ingest",
        f"{dataset.source} -> raw",
        ExtractOperator,
        "extract",
        dataset,
        lake,
        outlets=[table_asset(lake, Layer.RAW, dataset.name)],
        doc_md=f"Reads `{dataset.source}` for the interval into raw `ds=`.",
    )
