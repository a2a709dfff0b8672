"""pipelines: a registry-driven, idempotent Airflow 3 DAG factory (raw -> cleaned -> aggregated).

The top level stays import-light (DAG files import :mod:`pipelines.wiring.factory` directly);
``read``, ``Client`` and ``Output`` (what a workflow returns) load their dependencies when first
used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Client", "Output", "read"]


def read(name: str, layer: str = "cleaned", namespace: str | None = None, as_of=None):
    """A lake table as a pandas DataFrame; see :func:`pipelines.inspection.reader.read`."""
    from pipelines.inspection.reader import read as _read

    return _read(name, layer, namespace, as_of)


def __getattr__(attr: str):
    if attr == "Client":
        from pipelines.client import Client

        return Client
    if attr == "Output":  # what a workflow function may return: no Airflow, no lake
        from pipelines.steps.output import Output

        return Output
    raise AttributeError(attr)
