"""``clean``: raw -> typed, deduplicated rows merged into cleaned (bad rows to quarantine)."""

from __future__ import annotations

from airflow.sdk import TaskGroup

from pipelines.components.lake import Lake
from pipelines.components.operators import MergeOperator
from pipelines.partitions import Layer
from pipelines.registry import Dataset
from pipelines.workflows.assets import step_group, table_asset


def clean(dataset: Dataset, lake: Lake) -> TaskGroup:
    """Task group ``clean`` with task ``merge``."""
    return step_group(
        "clean",
        "raw -> cleaned",
        MergeOperator,
        "merge",
        dataset,
        lake,
        inlets=[table_asset(lake, Layer.RAW, dataset.name)],
        outlets=[
            table_asset(lake, Layer.CLEANED, dataset.name),
            table_asset(lake, Layer.QUARANTINE, dataset.name),
        ],
        doc_md=f"{dataset.ingestion.value} merge by `{'|'.join(dataset.primary_key)}`",
    )
