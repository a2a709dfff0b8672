"""What every workflow shares: the Airflow Asset of each lake table, and the one-step task group."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, TaskGroup

from pipelines.components.lake import Lake
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


def step_group(
    group_id: str,
    tooltip: str,
    operator: type,
    task_id: str,
    dataset: Dataset,
    lake: Lake,
    **kwargs: Any,
) -> TaskGroup:
    """A task group holding one step operator of ``dataset`` in ``lake``'s namespace."""
    with TaskGroup(group_id, tooltip=tooltip) as group:
        operator(task_id=task_id, dataset=dataset.name, namespace=lake.namespace, **kwargs)
    return group
