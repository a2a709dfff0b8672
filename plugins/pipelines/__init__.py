"""pipelines: a registry-driven, idempotent Airflow 3 DAG factory (raw -> cleaned -> aggregated).

The top level stays import-light (DAG files import :mod:`pipelines.factory` directly);
``read`` and ``Client`` load their dependencies when first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Client", "read"]


def read(name: str, layer: str = "cleaned", namespace: str | None = None, as_of=None):
    """A lake table as a pandas DataFrame; see :func:`pipelines.reader.read`."""
    from pipelines.reader import read as _read

    return _read(name, layer, namespace, as_of)


def __getattr__(attr: str):
    if attr == "Client":
        from pipelines.client import Client

        return Client
    raise AttributeError(attr)
