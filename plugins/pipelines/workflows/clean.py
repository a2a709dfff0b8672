"""``clean``: raw -> typed, deduplicated rows merged into cleaned (bad rows to quarantine)."""

from __future__ import annotations

from airflow.sdk import TaskGroup

from pipelines.components.lake import Lake
from pipelines.components.operators import MergeOperator
from pipelines.partitions import Layer
from pipelines.registry import Dataset
from pipelines.workflows.assets import table_asset


def clean(dataset: Dataset, lake: Lake) -> TaskGroup:
    """Task group ``clean`` with task ``merge``."""
    with TaskGroup("clean", tooltip="raw -> cleaned") as group:
        MergeOperator(
            task_id="merge",
            dataset=dataset.name,
            namespace=lake.namespace,
            inlets=[table_asset(lake, Layer.RAW, dataset.name)],
            outlets=[
                table_asset(lake, Layer.CLEANED, dataset.name),
                table_asset(lake, Layer.QUARANTINE, dataset.name),
            ],
            doc_md=f"{dataset.ingestion.value} merge by `{'|'.join(dataset.primary_key)}`",
        )
    return group
