"""The lake of one namespace: which table holds each layer of a dataset, and the asset URIs.

Paths come from :mod:`pipelines.partitions`; bytes go through :mod:`.resources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pipelines.components import environment
from pipelines.components.resources import Storage, Table
from pipelines.partitions import Ingestion, Layer, partition_key, table_path


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

    def table(self, layer: Layer | str, name: str, *, kind: Ingestion | str | None = None) -> Table:
        """The table of ``name`` in ``layer``.

        :param kind: the dataset's ingestion kind; required for the cleaned layer, whose partition
            key (``dt`` or ``ds``) depends on it (see :func:`pipelines.partitions.partition_key`)
        """
        path = table_path(self.root, self.namespace, layer, name)
        return Table(self.storage, path, partition_key(layer, kind))

    def asset_uri(self, layer: Layer | str, name: str) -> str:
        """The URI that names a table as an Airflow Asset (no I/O)."""
        path = table_path(self.root, self.namespace, Layer(layer), name)
        return path if "://" in path else f"file://{path}"
