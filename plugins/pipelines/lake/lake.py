"""The lake of one namespace: which table holds each layer of a dataset, and the asset URIs.

Paths come from :mod:`pipelines.common.partitions`; bytes go through :mod:`.resources`. A namespace
writes only under its own prefix ``{root}/{namespace}`` (the storage refuses anything else); a
namespace with an ``upstream`` (research) reads that namespace's raw layer in place instead of
ingesting its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from pipelines.common.partitions import Ingestion, Layer, partition_key, table_path
from pipelines.exceptions import NamespaceError
from pipelines.lake.tables import LOG_DIR, Storage, Table
from pipelines.runtime import environment
from pipelines.runtime.branch import NAMESPACE_RE

MARKER = "_namespace.json"  # {root}/{namespace}/_namespace.json: who writes this prefix


@dataclass(frozen=True)
class Lake:
    """Tables of one namespace under one lake root.

    :param root: local path or ``s3://bucket/prefix`` (default: ``PIPELINES_LAKE``)
    :param namespace: default: the resolved namespace (:func:`environment.namespace`)
    :param upstream: the namespace whose raw layer this one reads in place (a research
        namespace reads serving's); None: it ingests its own sources
    :param branch: the branch the namespace was resolved from; the first write claims the prefix
        for it, and another branch with the same normalised name is refused
    :param kind: the namespace's kind (serving, master, research), recorded in the claim
    """

    root: str
    namespace: str
    upstream: str | None = None
    branch: str | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        # the prefix is what the write guard trusts: it must be one plain namespace folder
        for name in filter(None, (self.namespace, self.upstream)):
            if not NAMESPACE_RE.match(name):
                raise NamespaceError(
                    f"{name!r} is not a namespace name ({NAMESPACE_RE.pattern}: lower-case "
                    "letters, digits and underscores)"
                )

    @classmethod
    def from_env(
        cls,
        namespace: str | None = None,
        *,
        upstream: str | None = None,
        branch: str | None = None,
        kind: str | None = None,
    ) -> Lake:
        """The lake of ``namespace`` (default: this process's) under ``PIPELINES_LAKE``."""
        if namespace is None:
            resolved = environment.resolve_namespace()
            namespace, branch = resolved.name, branch or resolved.branch
        return cls(environment.lake_root(), namespace, upstream, branch, kind)

    @property
    def prefix(self) -> str:
        """``{root}/{namespace}``: everything this namespace writes is under it."""
        return f"{self.root.rstrip('/')}/{self.namespace}"

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.root, writable=self.prefix, before_write=self._claim)

    def home_of(self, layer: Layer | str) -> str:
        """The namespace whose prefix holds ``layer``: the upstream's for raw, when there is one."""
        return self.upstream if self.upstream and Layer(layer) is Layer.RAW else self.namespace

    def owns(self, layer: Layer | str) -> bool:
        """Whether this namespace writes ``layer`` itself (False: it reads another's in place)."""
        return self.home_of(layer) == self.namespace

    def table(self, layer: Layer | str, name: str, *, kind: Ingestion | str | None = None) -> Table:
        """The table of ``name`` in ``layer``.

        :param kind: the dataset's ingestion kind; required for the cleaned layer, whose partition
            key (``dt`` or ``ds``) depends on it (see
            :func:`pipelines.common.partitions.partition_key`)
        """
        path = table_path(self.root, self.home_of(layer), layer, name)
        return Table(self.storage, path, partition_key(layer, kind))

    def asset_uri(self, layer: Layer | str, name: str) -> str:
        """The URI that names a table as an Airflow Asset (no I/O)."""
        path = table_path(self.root, self.home_of(layer), Layer(layer), name)
        return path if "://" in path else f"file://{path}"

    def _claim(self) -> None:
        """Record which branch writes this prefix, once; refuse another branch that normalises
        to the same namespace (two branches must never silently share one)."""
        marker = f"{self.prefix}/{MARKER}"
        body = {"namespace": self.namespace, "branch": self.branch, "kind": self.kind}
        if self.storage.create(marker, json.dumps(body, sort_keys=True).encode()):
            return
        try:
            owner = json.loads(self.storage.read(marker)).get("branch")
        except (FileNotFoundError, ValueError):
            return
        if self.branch and owner and owner != self.branch:
            raise NamespaceError(
                f"namespace {self.namespace!r} in {self.prefix} belongs to branch {owner!r}; "
                f"branch {self.branch!r} normalises to the same name: rename the branch, or set "
                "PIPELINES_NAMESPACE to another name"
            )

    def files(self) -> list[tuple[str, int]]:
        """Every file under this namespace's prefix, with its size."""
        return self.storage.files(self.prefix)

    def drop(self) -> int:
        """Delete everything under this namespace's prefix: the tables' manifest logs first (no
        table is left half-readable), then the data deepest first, the claim last.

        :return: the number of files deleted
        """
        storage = Storage(self.root, writable=self.prefix)  # no claim: it is going away
        paths = [p for p, _ in storage.files(self.prefix)]
        logs = [p for p in paths if f"/{LOG_DIR}/" in p]
        storage.delete(logs)
        rest = [p for p in paths if f"/{LOG_DIR}/" not in p]
        storage.delete(sorted(rest, key=lambda p: (-p.count("/"), p)))
        storage.prune(self.prefix)
        return len(paths)


def claimed(storage: Storage, prefix: str) -> dict:
    """What a namespace's claim records (``{}``: none)."""
    try:
        return json.loads(storage.read(f"{prefix.rstrip('/')}/{MARKER}"))
    except (FileNotFoundError, ValueError):
        return {}
