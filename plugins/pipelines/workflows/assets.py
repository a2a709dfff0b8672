"""The Airflow Asset of each lake table, so the UI shows lineage between layers."""

from __future__ import annotations

from airflow.sdk import Asset

from pipelines.components.lake import Lake
from pipelines.partitions import Layer


def table_asset(lake: Lake, layer: Layer, name: str) -> Asset:
    """The table's lake URI, used as the asset's name too.

    Airflow ties a name to one URI, and the lake root may differ between deployments or tests;
    the readable ``{namespace}.{layer}.{name}`` is in ``extra["table"]``.
    """
    uri = lake.asset_uri(layer, name)
    table = f"{lake.namespace}.{layer}.{name}"
    return Asset(name=uri, uri=uri, group="pipelines", extra={"table": table})
