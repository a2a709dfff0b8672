"""The lake of one namespace: which table holds each layer of a dataset, and the asset URIs.

Paths come from :mod:`pipelines.partitions`; bytes go through :mod:`.resources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pipelines.components import environment
from pipelines.components.resources import Storage, Table
from pipelines.partitions import PARTITION_KEY, Layer, table_path


@dataclass(frozen=True)
class Lake:
    """Tables of one namespace under one lake root.

    :param root: local path or ``s3://bucket/prefix`` (default: ``PIPELINES_LAKE``)
    :param namespace: default ``PIPELINES_NAMESPACE``
    """

    root: str
    namespace: str

    @classmethod
    def from_env(cls, namespace: str | None = None) -> Lake:
        return cls(environment.lake_root(), namespace or environment.namespace())

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.root)

    def table(self, layer: Layer | str, name: str, *, key: str | None = None) -> Table:
        """The table of ``name`` in ``layer``; cleaned tables are keyed ``dt`` or ``ds``."""
        layer = Layer(layer)
        key = key or PARTITION_KEY.get(layer, "dt")
        return Table(self.storage, table_path(self.root, self.namespace, layer, name), key)

    def asset_uri(self, layer: Layer | str, name: str) -> str:
        """The URI that names a table as an Airflow Asset (no I/O)."""
        path = table_path(self.root, self.namespace, Layer(layer), name)
        return path if "://" in path else f"file://{path}"
