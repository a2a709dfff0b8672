"""``check``: the quality gate between cleaned and aggregated."""

from __future__ import annotations

from airflow.sdk import TaskGroup

from pipelines.components.lake import Lake
from pipelines.components.operators import CheckKeysOperator
from pipelines.registry import Dataset


def check(dataset: Dataset, lake: Lake) -> TaskGroup:
    """Task group ``check`` with task ``check_keys``."""
    with TaskGroup("check", tooltip="keys unique and not null; counts reconcile") as group:
        CheckKeysOperator(task_id="check_keys", dataset=dataset.name, namespace=lake.namespace)
    return group
