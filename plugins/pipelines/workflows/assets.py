"""The Airflow Asset of each lake table, so the UI shows lineage between layers."""

from __future__ import annotations

from airflow.sdk import Asset

from pipelines.components.lake import Lake
from pipelines.partitions import Layer


def table_asset(lake: Lake, layer: Layer, name: str) -> Asset:
    """``{namespace}.{layer}.{name}``, with the table's lake URI."""
    return Asset(
        name=f"{lake.namespace}.{layer}.{name}", uri=lake.asset_uri(layer, name), group="pipelines"
    )
