"""``check``: the quality gate between cleaned and aggregated."""

from __future__ import annotations

from airflow.sdk import TaskGroup

from pipelines.components.lake import Lake
from pipelines.components.operators import CheckKeysOperator
from pipelines.registry import Dataset
from pipelines.workflows.assets import step_group


def check(dataset: Dataset, lake: Lake) -> TaskGroup:
    """Task group ``check`` with task ``check_keys``."""
    return step_group(
        "check",
        "keys unique and not null; counts reconcile",
        CheckKeysOperator,
        "check_keys",
        dataset,
        lake,
    )
