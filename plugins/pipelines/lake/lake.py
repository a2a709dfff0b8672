"""The lake of one namespace: which table holds each layer of a dataset, and the asset URIs.

Paths come from :mod:`pipelines.common.partitions`; bytes go through :mod:`.tables`. A namespace
writes only under its own prefix ``{root}/{namespace}`` (the storage refuses anything else); a
namespace with an ``upstream`` (research) reads that namespace's raw layer in place instead of
ingesting its own. A table being rebuilt (``plan --apply``) is written beside the current one,
under ``{root}/{namespace}/_rebuild``, with its own runs table there: what every reader reads
stays as it was until the rebuild is switched in (:mod:`.staging`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

from pipelines.common.partitions import Ingestion, Layer, partition_key, table_path
from pipelines.exceptions import NamespaceError, UnknownNameError
from pipelines.lake.delta import LOG
from pipelines.lake.runs import FOLDER as RUNS
from pipelines.lake.runs import RunLog
from pipelines.lake.storage import Storage
from pipelines.lake.tables import Table
from pipelines.runtime import environment
from pipelines.runtime.branch import NAMESPACE_RE

MARKER = "_namespace.json"  # {root}/{namespace}/_namespace.json: who writes this prefix
STAGING = "_rebuild"  # {root}/{namespace}/_rebuild/{layer}/{name}: tables rebuilt beside


class Ingested(Protocol):
    """What addresses a dataset's cleaned table: its name and ingestion kind (a registry row)."""

    @property
    def name(self) -> str: ...

    @property
    def ingestion(self) -> Ingestion: ...


class Datasets(Protocol):
    """What knows the datasets by name (a project)."""

    def dataset(self, name: str) -> Ingested | None: ...


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
    :param rebuilt: the tables (``layer/name``) addressed beside the current ones, under
        :attr:`staging` (a rebuild's backfill writes them there; ``plan --apply`` switches them)
    """

    root: str
    namespace: str
    upstream: str | None = None
    branch: str | None = None
    kind: str | None = None
    rebuilt: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # the prefix is what the write guard trusts: it must be one plain namespace folder
        for name in filter(None, (self.namespace, self.upstream)):
            if not NAMESPACE_RE.fullmatch(name):
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
        """The lake of ``namespace`` (default: this process's) under ``PIPELINES_LAKE``, with
        the tables a rebuild's backfill writes beside (``PIPELINES_REBUILD``)."""
        if namespace is None:
            resolved = environment.resolve_namespace()
            namespace, branch = resolved.name, branch or resolved.branch
        rebuilt = environment.rebuilt_tables(namespace)
        return cls(environment.lake_root(), namespace, upstream, branch, kind, rebuilt)

    @property
    def prefix(self) -> str:
        """``{root}/{namespace}``: everything this namespace writes is under it."""
        return f"{self.root.rstrip('/')}/{self.namespace}"

    @property
    def staging(self) -> str:
        """``{root}/{namespace}/_rebuild``: where the tables being rebuilt are written."""
        return f"{self.prefix}/{STAGING}"

    def beside(self, tables: Iterable[tuple[Layer, str]]) -> Lake:
        """This lake with ``tables`` (``(layer, name)``) addressed under :attr:`staging`."""
        return replace(self, rebuilt=frozenset(f"{Layer(a).value}/{b}" for a, b in tables))

    def is_staged(self, layer: Layer | str, name: str) -> bool:
        """Whether the table of ``name`` in ``layer`` is addressed under :attr:`staging`."""
        return self.owns(layer) and f"{Layer(layer).value}/{name}" in self.rebuilt

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.root, writable=self.prefix, before_write=self._claim)

    def home_of(self, layer: Layer | str) -> str:
        """The namespace whose prefix holds ``layer``: the upstream's for raw, when there is one."""
        return self.upstream if self.upstream and Layer(layer) is Layer.RAW else self.namespace

    def owns(self, layer: Layer | str) -> bool:
        """Whether this namespace writes ``layer`` itself (False: it reads another's in place)."""
        return self.home_of(layer) == self.namespace

    def raw(self, name: str) -> Table:
        """A dataset's deliveries, one ``ds=`` partition each (the upstream's, read in place,
        when this namespace has one)."""
        return self._table(Layer.RAW, name)

    def cleaned(self, dataset: Ingested) -> Table:
        """A dataset's cleaned table, partitioned as its ingestion kind says
        (:attr:`Ingestion.cleaned_key`)."""
        return self._table(Layer.CLEANED, dataset.name, dataset.ingestion)

    def quarantine(self, name: str) -> Table:
        """The rows of a dataset's deliveries that were not kept, one ``ds=`` partition each."""
        return self._table(Layer.QUARANTINE, name)

    def aggregated(self, name: str) -> Table:
        """An aggregate of aggregates.yaml, one ``dt=`` partition per day."""
        return self._table(Layer.AGGREGATED, name)

    def workflow(self, name: str) -> Table:
        """What a user's workflow wrote, one ``ds=`` partition per day."""
        return self._table(Layer.WORKFLOWS, name)

    def table(self, layer: Layer | str, name: str, project: Datasets) -> Table:
        """The table of ``name`` in ``layer``, for a caller that holds the layer as a value (a
        user's ``--layer``, a lineage record, a loop over layers): a cleaned table is the one
        of ``project``'s dataset of that name.

        :raises UnknownNameError: a cleaned table of a name that is no dataset of ``project``
        """
        if Layer(layer) is not Layer.CLEANED:
            return self._table(layer, name)
        dataset = project.dataset(name)
        if dataset is None:
            raise UnknownNameError(
                f"{name!r} is no dataset: a cleaned table is partitioned as its dataset's "
                "ingestion says"
            )
        return self.cleaned(dataset)

    def manifest(self, layer: Layer | str, name: str) -> Table:
        """The table of ``name`` in ``layer`` addressed for its manifest alone (the config and
        runs it recorded; switching it whole), whatever the registry now says of the name: a plan
        reads the tables of retired entries, and switches those of datasets whose ingestion
        changed to their rebuilt versions. It has no partition key, so a partition cannot be
        written through it (a switch overwrites the whole table)."""
        return Table(self.storage, self._path(layer, name), "", self._runs_of(layer, name))

    def _table(self, layer: Layer | str, name: str, kind: Ingestion | None = None) -> Table:
        """The one helper every per-layer method builds on: the table's path (:meth:`_path`) and
        its partition key, from the layer and, for the cleaned layer, the ingestion kind (see
        :func:`pipelines.common.partitions.partition_key`)."""
        key = partition_key(layer, kind)
        return Table(self.storage, self._path(layer, name), key, self._runs_of(layer, name))

    def _runs_of(self, layer: Layer | str, name: str) -> tuple[RunLog, str]:
        """The runs table that records the runs of ``name`` in ``layer`` (the namespace's that
        holds the layer, or the staging area's for a table rebuilt beside), and the table's name
        in it."""
        table = f"{Layer(layer).value}/{name}"
        if self.is_staged(layer, name):
            home = f"{self.namespace}/{STAGING}"
            if home not in self._run_logs:
                self._run_logs[home] = RunLog(self.storage, f"{self.staging}/{RUNS}")
            return self._run_logs[home], table
        return self.run_log(self.home_of(layer)), table

    def run_log(self, namespace: str | None = None) -> RunLog:
        """The runs table of ``namespace`` (default this one): one reader per lake, which reads
        the table again only when it has a new version."""
        home = namespace or self.namespace
        if home not in self._run_logs:
            path = f"{self.root.rstrip('/')}/{home}/{RUNS}"
            self._run_logs[home] = RunLog(self.storage, path)
        return self._run_logs[home]

    @cached_property
    def _run_logs(self) -> dict[str, RunLog]:
        return {}

    @contextlib.contextmanager
    def runs_held(self) -> Iterator[None]:
        """Answer every question to the runs tables this lake reads (its own, and its upstream's
        for the raw layer) from one version of each (:meth:`RunLog.held`): a read-only command
        that asks about every table (``status``, ``show``) reads each once."""
        with contextlib.ExitStack() as held:
            for home in sorted({self.home_of(layer) for layer in Layer}):
                held.enter_context(self.run_log(home).held())
            yield

    def _path(self, layer: Layer | str, name: str) -> str:
        """Where the table of ``name`` in ``layer`` is: under the namespace that holds the layer
        (the upstream's, for raw read in place), or under :attr:`staging` when rebuilt beside."""
        path = table_path(self.root, self.home_of(layer), Layer(layer), name)
        if self.is_staged(layer, name):
            return f"{self.staging}/{Layer(layer).value}/{name}"
        return path

    def asset_uri(self, layer: Layer | str, name: str) -> str:
        """The URI that names a table as an Airflow Asset (no I/O)."""
        path = self._path(layer, name)
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
        """Delete everything under this namespace's prefix: the tables' Delta logs first (no
        table is left half-readable), then the data deepest first, the claim last.

        :return: the number of files deleted
        """
        storage = Storage(self.root, writable=self.prefix)  # no claim: it is going away
        paths = [p for p, _ in storage.files(self.prefix)]
        logs = [p for p in paths if f"/{LOG}/" in p]
        storage.delete(logs)
        rest = [p for p in paths if f"/{LOG}/" not in p]
        storage.delete(sorted(rest, key=lambda p: (-p.count("/"), p)))
        storage.prune(self.prefix)
        return len(paths)


def claimed(storage: Storage, prefix: str) -> dict:
    """What a namespace's claim records (``{}``: none)."""
    try:
        return json.loads(storage.read(f"{prefix.rstrip('/')}/{MARKER}"))
    except (FileNotFoundError, ValueError):
        return {}
