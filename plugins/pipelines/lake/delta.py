"""The Delta Lake calls the lake makes (delta-rs), in one place: opening a table at a version,
replacing partitions in one commit, appending, deleting, compacting, vacuuming.

Every write passes the storage's namespace guard first (:meth:`Storage.check_writable`), and
reaches S3 with the options derived from the lake's Airflow connection (never printed). Every
call that reaches the object store goes through the lake's retry (:func:`reaching`): transient
errors (500, 503, SlowDown) are retried with backoff, and refused credentials, a missing bucket
or an endpoint that does not answer end as one LakeError line. A commit
that another writer's commit got in before fails as :class:`CommitConflict`: the caller reads
again and recomputes (delta-rs's own retry would commit rows computed from an older version).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pipelines.exceptions import CommitConflict, LakeError
from pipelines.lake import damage
from pipelines.lake.storage import RETRIES, Storage, plain, reached, retry
from pipelines.runtime.secrets import redact

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

log = logging.getLogger(__name__)
LOG = damage.LOG
OLD_LOG = "_log"  # the manifests of the format before Delta (pipelines <= 0.1)
RUN_KEY = "pipelines.run"  # the custom metadata key a commit's run is recorded under
T = TypeVar("T")


class OldFormat(LakeError):
    """A table written in the lake format before Delta: ``pipelines lake upgrade`` converts it."""


def commit_path(path: str, version: int) -> str:
    """Where the commit of ``version`` of the table at ``path`` is in its log (the file that
    makes the version exist)."""
    return f"{path}/{LOG}/{version:020d}.json"


def reaching(storage: Storage, path: str, call: Callable[[], T], *, once: bool = False) -> T:
    """``call()`` (a delta-rs call on the table at ``path``), its transient object-store errors
    retried; refused credentials, a missing bucket or a dead endpoint raise one LakeError line.
    A write retried after its commit landed (a lost answer) meets its own version and fails as
    a commit conflict: the caller recomputes, and the rerun is idempotent. ``once``: the call
    consumes a stream of batches, so it is not retried (its errors are still explained).

    :raises CommitConflict: another writer's commit (or this one's, its answer lost) took the
        version
    :raises CorruptFile: a file of the table is damaged (the error names it)
    """
    from deltalake.exceptions import CommitFailedError, DeltaError

    def call_once() -> T:
        try:
            return call()
        except CommitFailedError as exc:  # never retried here: the rows must be recomputed
            raise CommitConflict(
                f"{redact(path)}: another writer committed first ({plain(str(exc))})"
            ) from None

    # delta-rs reports the object store's failures as OSError or as a DeltaError naming them;
    # a stream of batches cannot be given twice (``once``): its errors are only explained
    attempts = 1 if once else RETRIES
    where = reached(path, storage.conn_id)
    try:
        return retry(call_once, attempts, where=where, errors=(OSError, DeltaError))
    except (OSError, DeltaError) as exc:  # a damaged file is named, not left to a traceback
        named = damage.explain(path, storage, exc)
        if named is None:
            raise
        raise named from None


def open_table(path: str, storage: Storage, version: int | None = None) -> DeltaTable | None:
    """The Delta table at ``path`` (at ``version``, default the newest), or None when none is
    there yet.

    :raises OldFormat: the table was written before the lake moved to Delta
    :raises CorruptFile: a log entry it replays is damaged (an empty newest entry too, which
        delta-rs takes for a commit of nothing)
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = reaching(  # at the version asked: one replay of the log, not the newest too
            storage,
            path,
            lambda: DeltaTable(path, version, storage_options=storage.delta_options),
        )
    except TableNotFoundError:
        if OLD_LOG in storage.list(path):
            raise OldFormat(
                f"{redact(path)} was written by an earlier pipelines in its own table format; "
                "run `pipelines lake upgrade` to convert the lake to Delta tables"
            ) from None
        return None
    if version is None and not storage.remote:  # a stat: an emptied entry reads as no change
        newest = commit_path(path, table.version())
        if os.path.exists(newest) and os.path.getsize(newest) == 0:
            raise damage.Damage(
                newest, "empty: a commit holds at least one action", "commit"
            ).error(path)
    return table


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
    with the rows of ``data``, atomically, as the version after ``base``; that version (another
    writer's commit may follow it at once).

    :param base: the version the rows were computed from (None: the table does not exist yet)
    :param reshape: ``"merge"`` (columns added) or ``"overwrite"`` (types changed; only with
        ``partitions=None``)
    :raises CommitConflict: another writer committed after ``base``
    """
    from deltalake import CommitProperties, write_deltalake
    from deltalake.exceptions import DeltaError

    storage.check_writable(f"{path}/{LOG}/")
    stream = not hasattr(data, "take")  # a stream of batches is written as it comes
    data = data if stream else _in_partition_order(data, key)
    target = open_table(path, storage, base) if base is not None else path
    predicate = None
    if partitions is not None and base is not None:
        predicate = f"{key} IN ({', '.join(_literal(p) for p in partitions)})"
    props = CommitProperties(
        max_commit_retries=0, custom_metadata={RUN_KEY: note} if note else None
    )
    try:
        reaching(
            storage,
            path,
            lambda: write_deltalake(
                target,
                data,
                mode="overwrite" if base is not None else "error",  # a first write creates it
                predicate=predicate,
                partition_by=[key] if key else None,
                schema_mode=reshape,
                storage_options=storage.delta_options,
                commit_properties=props,
            ),
            once=stream,
        )
    except DeltaError as exc:
        if base is None and "already exists" in str(exc):
            raise CommitConflict(f"{redact(path)}: another writer created it first") from None
        raise
    return 0 if base is None else base + 1  # one commit, never retried: the version after base


def create(path: str, storage: Storage, data: pa.RecordBatchReader, *, key: str) -> int:
    """Create the table at ``path`` from a stream of batches, partitioned by ``key``; version 0.

    :raises CommitConflict: another writer created it first
    """
    from deltalake import write_deltalake
    from deltalake.exceptions import DeltaError

    storage.check_writable(f"{path}/{LOG}/")
    try:
        reaching(
            storage,
            path,
            lambda: write_deltalake(
                path, data, mode="error", partition_by=[key], storage_options=storage.delta_options
            ),
            once=True,
        )
    except DeltaError as exc:
        if "already exists" in str(exc):
            raise CommitConflict(f"{redact(path)}: another writer created it first") from None
        raise
    return 0


def merge(
    path: str,
    storage: Storage,
    source: pa.RecordBatchReader,
    *,
    base: int,
    on: str,
    update_when: str,
    memory: int,
) -> dict:
    """Upsert ``source`` (alias ``s``) into the table (alias ``t``) at version ``base``, in one
    commit: a target row matching ``on`` is replaced when ``update_when`` holds, a source row
    matching none is inserted; delta-rs's metrics.

    :param memory: bytes the merge may hold before it spills to disk
    :raises CommitConflict: another writer committed after ``base``
    """
    from deltalake import CommitProperties

    storage.check_writable(f"{path}/{LOG}/")
    table = open_table(path, storage, base)
    merger = (
        table.merge(
            source,
            predicate=on,
            source_alias="s",
            target_alias="t",
            max_spill_size=memory,
            commit_properties=CommitProperties(max_commit_retries=0),
        )
        .when_matched_update_all(predicate=update_when)
        .when_not_matched_insert_all()
    )
    return reaching(storage, path, merger.execute, once=True)


def append(path: str, storage: Storage, data: pa.Table, *, merge_schema: bool = False) -> int:
    """Append ``data`` (concurrent appends do not conflict: delta-rs retries them); the new
    version.

    :param merge_schema: a column of ``data`` the table lacks is added to it (its older rows
        read null there)
    """
    from deltalake import write_deltalake

    storage.check_writable(f"{path}/{LOG}/")
    reaching(
        storage,
        path,
        lambda: write_deltalake(
            path,
            data,
            mode="append",
            schema_mode="merge" if merge_schema else None,
            storage_options=storage.delta_options,
        ),
    )
    return open_table(path, storage).version()


def delete_where(path: str, storage: Storage, predicate: str | None) -> None:
    """Delete the rows matching ``predicate`` (None: every row; nothing when the table does not
    exist)."""
    table = open_table(path, storage)
    if table is None:
        return
    storage.check_writable(f"{path}/{LOG}/")
    reaching(storage, path, lambda: table.delete(predicate))


def compact(path: str, storage: Storage) -> None:
    """Rewrite small files into fewer (a conflict with a concurrent writer is left for the next
    time: compaction is never needed for correctness)."""
    table = open_table(path, storage)
    if table is None:
        return
    storage.check_writable(f"{path}/{LOG}/")
    try:
        reaching(storage, path, table.optimize.compact)
    except CommitConflict:
        log.info("%s: compaction met a concurrent commit; left for later", redact(path))


def vacuum(path: str, storage: Storage, retention_hours: float) -> list[str]:
    """Delete the files of ``path`` that no version younger than ``retention_hours`` needs (those
    of replaced versions, and those crashed writers left); the deleted files."""
    table = open_table(path, storage)
    if table is None:
        return []
    storage.check_writable(f"{path}/{LOG}/")
    return list(
        reaching(
            storage,
            path,
            lambda: table.vacuum(
                retention_hours=int(retention_hours),
                dry_run=False,
                enforce_retention_duration=False,
                full=True,  # also the files no commit names (a crashed writer's)
            ),
        )
    )


def optimize(path: str, storage: Storage) -> dict:
    """Compact the table's small files into fewer, larger ones (one commit; readers at older
    versions are unaffected until a vacuum); delta-rs's metrics."""
    table = open_table(path, storage)
    if table is None:
        return {}
    storage.check_writable(f"{path}/{LOG}/")
    return reaching(storage, path, table.optimize.compact)


def _in_partition_order(data: pa.Table, key: str) -> pa.Table:
    """``data`` in one chunk, its partitions one after the other (a stable sort): delta-rs keeps
    the rows of each partition in the order given only then (of a table in several chunks it
    wrote them shuffled, and a read of the same version would not be repeatable)."""
    import pyarrow.compute as pc

    if key and data.num_rows and key in data.column_names:
        data = data.take(pc.sort_indices(data[key]))
    return data.combine_chunks()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
