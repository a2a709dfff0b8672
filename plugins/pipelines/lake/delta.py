"""The Delta Lake calls the lake makes (delta-rs), in one place: opening a table at a version,
replacing partitions in one commit, appending, deleting, compacting, vacuuming.

Every write passes the storage's namespace guard first (:meth:`Storage.check_writable`), and
reaches S3 with the options derived from the lake's Airflow connection (never printed). A commit
that another writer's commit got in before fails as :class:`CommitConflict`: the caller reads
again and recomputes (delta-rs's own retry would commit rows computed from an older version).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.exceptions import CommitConflict, LakeError
from pipelines.lake.storage import Storage, explained
from pipelines.runtime.secrets import redact

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

log = logging.getLogger(__name__)
T = TypeVar("T")
LOG = "_delta_log"
OLD_LOG = "_log"  # the manifests of the format before Delta (pipelines <= 0.1)
RUN_KEY = "pipelines.run"  # the custom metadata key a commit's run is recorded under


@contextlib.contextmanager
def reaching(path: str, storage: Storage) -> Iterator[None]:
    """Turn what delta-rs raises when an S3 lake cannot be reached (a missing bucket, refused
    keys, an endpoint that does not answer) into the storage's one line naming the object and
    the connection; anything else goes on as it was."""
    from deltalake.exceptions import CommitFailedError, TableNotFoundError

    try:
        yield
    except (CommitFailedError, TableNotFoundError, LakeError):
        raise
    except Exception as exc:
        why = explained(exc, path, storage.conn_id) if storage.remote else None
        if why is None:
            raise
        raise why from None


def _reaches_the_lake(call: Callable[..., T]) -> Callable[..., T]:
    """``call(path, storage, ...)`` under :func:`reaching` (every write of this module)."""

    @functools.wraps(call)
    def wrapper(path: str, storage: Storage, *args: Any, **kwargs: Any) -> T:
        with reaching(path, storage):
            return call(path, storage, *args, **kwargs)

    return wrapper


class OldFormat(LakeError):
    """A table written in the lake format before Delta: ``pipelines lake upgrade`` converts it."""


def open_table(path: str, storage: Storage, version: int | None = None) -> DeltaTable | None:
    """The Delta table at ``path`` (at ``version``, default the newest), or None when none is
    there yet.

    :raises OldFormat: the table was written before the lake moved to Delta
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        with reaching(path, storage):
            table = DeltaTable(path, storage_options=storage.delta_options)
    except TableNotFoundError:
        if OLD_LOG in storage.list(path):
            raise OldFormat(
                f"{redact(path)} was written by an earlier pipelines in its own table format; "
                "run `pipelines lake upgrade` to convert the lake to Delta tables"
            ) from None
        return None
    if version is not None and version != table.version():
        table.load_as_version(version)
    return table


@_reaches_the_lake
def replace(
    path: str,
    storage: Storage,
    data: pa.Table | pa.RecordBatchReader,
    *,
    key: str,
    partitions: list[str] | None,
    base: int | None,
    reshape: str | None = None,
    note: str | None = None,
) -> int:
    """Replace ``partitions`` (values of the partition column ``key``; None: the whole table)
    with the rows of ``data``, atomically, as the version after ``base``; the new version.
    ``data`` may be a stream of batches (written as it comes: the caller gives each partition's
    rows one after the other).

    :param base: the version the rows were computed from (None: the table does not exist yet)
    :param reshape: ``"merge"`` (columns added) or ``"overwrite"`` (types changed; only with
        ``partitions=None``)
    :raises CommitConflict: another writer committed after ``base``
    """
    from deltalake import CommitProperties, write_deltalake
    from deltalake.exceptions import CommitFailedError, DeltaError

    storage.check_writable(f"{path}/{LOG}/")
    if hasattr(data, "take"):  # a table (a stream is written as it comes)
        data = _in_partition_order(data, key)
    target = open_table(path, storage, base) if base is not None else path
    predicate = None
    if partitions is not None and base is not None:
        predicate = f"{key} IN ({', '.join(_literal(p) for p in partitions)})"
    props = CommitProperties(
        max_commit_retries=0, custom_metadata={RUN_KEY: note} if note else None
    )
    try:
        write_deltalake(
            target,
            data,
            mode="overwrite" if base is not None else "error",  # a first write creates it, once
            predicate=predicate,
            partition_by=[key] if key else None,
            schema_mode=reshape,
            storage_options=storage.delta_options,
            commit_properties=props,
        )
    except CommitFailedError as exc:
        raise CommitConflict(f"{redact(path)}: another writer committed first ({exc})") from None
    except DeltaError as exc:
        if base is None and "already exists" in str(exc):
            raise CommitConflict(f"{redact(path)}: another writer created it first") from None
        raise
    return open_table(path, storage).version()


@_reaches_the_lake
def create(path: str, storage: Storage, data: pa.RecordBatchReader, *, key: str) -> int:
    """Create the table at ``path`` from a stream of batches, partitioned by ``key``; version 0.

    :raises CommitConflict: another writer created it first
    """
    from deltalake import write_deltalake
    from deltalake.exceptions import DeltaError

    storage.check_writable(f"{path}/{LOG}/")
    try:
        write_deltalake(
            path, data, mode="error", partition_by=[key], storage_options=storage.delta_options
        )
    except DeltaError as exc:
        if "already exists" in str(exc):
            raise CommitConflict(f"{redact(path)}: another writer created it first") from None
        raise
    return 0


@_reaches_the_lake
def merge(
    path: str,
    storage: Storage,
    source: pa.RecordBatchReader,
    *,
    base: int,
    on: str,
    update_when: str,
) -> dict:
    """Upsert ``source`` (alias ``s``) into the table (alias ``t``) at version ``base``, in one
    commit: a target row matching ``on`` is replaced when ``update_when`` holds, a source row
    matching none is inserted; delta-rs's metrics.

    :raises CommitConflict: another writer committed after ``base``
    """
    from deltalake import CommitProperties
    from deltalake.exceptions import CommitFailedError

    from pipelines.runtime import environment

    storage.check_writable(f"{path}/{LOG}/")
    table = open_table(path, storage, base)
    try:
        return (
            table.merge(
                source,
                predicate=on,
                source_alias="s",
                target_alias="t",
                max_spill_size=environment.memory_limit(),
                commit_properties=CommitProperties(max_commit_retries=0),
            )
            .when_matched_update_all(predicate=update_when)
            .when_not_matched_insert_all()
            .execute()
        )
    except CommitFailedError as exc:
        raise CommitConflict(f"{redact(path)}: another writer committed first ({exc})") from None


@_reaches_the_lake
def append(path: str, storage: Storage, data: pa.Table) -> int:
    """Append ``data`` (concurrent appends do not conflict: delta-rs retries them); the new
    version."""
    from deltalake import write_deltalake

    storage.check_writable(f"{path}/{LOG}/")
    write_deltalake(path, data, mode="append", storage_options=storage.delta_options)
    return open_table(path, storage).version()


@_reaches_the_lake
def delete_where(path: str, storage: Storage, predicate: str | None) -> None:
    """Delete the rows matching ``predicate`` (None: every row; nothing when the table does not
    exist)."""
    table = open_table(path, storage)
    if table is None:
        return
    storage.check_writable(f"{path}/{LOG}/")
    table.delete(predicate)


@_reaches_the_lake
def compact(path: str, storage: Storage) -> None:
    """Rewrite small files into fewer (a conflict with a concurrent writer is left for the next
    time: compaction is never needed for correctness)."""
    from deltalake.exceptions import CommitFailedError

    table = open_table(path, storage)
    if table is None:
        return
    storage.check_writable(f"{path}/{LOG}/")
    try:
        table.optimize.compact()
    except CommitFailedError:
        log.info("%s: compaction met a concurrent commit; left for later", redact(path))


@_reaches_the_lake
def vacuum(path: str, storage: Storage, retention_hours: float) -> list[str]:
    """Delete the files of ``path`` that no version younger than ``retention_hours`` needs (those
    of replaced versions, and those crashed writers left); the deleted files."""
    table = open_table(path, storage)
    if table is None:
        return []
    storage.check_writable(f"{path}/{LOG}/")
    return list(
        table.vacuum(
            retention_hours=int(retention_hours),
            dry_run=False,
            enforce_retention_duration=False,
            full=True,  # also the files no commit names (a crashed writer's)
        )
    )


@_reaches_the_lake
def optimize(path: str, storage: Storage) -> dict:
    """Compact the table's small files into fewer, larger ones (one commit; readers at older
    versions are unaffected until a vacuum); delta-rs's metrics.

    :raises CommitConflict: a writer replaced files the compaction rewrote (its rows are newer)
    """
    from deltalake.exceptions import CommitFailedError

    table = open_table(path, storage)
    if table is None:
        return {}
    storage.check_writable(f"{path}/{LOG}/")
    try:
        return table.optimize.compact()
    except CommitFailedError as exc:
        raise CommitConflict(f"{redact(path)}: another writer committed first ({exc})") from None


def _in_partition_order(data, key: str):
    """``data`` in one chunk, its partitions one after the other (a stable sort): delta-rs keeps
    the rows of each partition in the order given only then (of a table in several chunks it
    wrote them shuffled, and a read of the same version would not be repeatable). A stream of
    batches passes as it is."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(data, pa.Table):
        return data

    if key and data.num_rows and key in data.column_names:
        data = data.take(pc.sort_indices(data[key]))
    return data.combine_chunks()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
