"""The Delta Lake calls the lake makes (delta-rs), in one place: opening a table at a version,
replacing partitions in one commit, appending, deleting, compacting, vacuuming.

Every write passes the storage's namespace guard first (:meth:`Storage.check_writable_folders`:
the table's folder, its log and their entries, as delta-rs will write and list in them without
asking the guard), and reaches S3 with the options derived from the lake's Airflow connection
(never printed). A write then checks that the version it committed names only files that are
there (:func:`_published`): one that names a file deleted meanwhile is undone at once. Every
call that reaches the object store goes through the lake's retry (:func:`reaching`): transient
errors (500, 503, SlowDown) are retried with backoff, and refused credentials, a missing bucket
or an endpoint that does not answer end as one LakeError line. A commit
that another writer's commit got in before fails as :class:`CommitConflict`: the caller reads
again and recomputes (delta-rs's own retry would commit rows computed from an older version).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

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
CLOCK = "_clock"  # {table}/_clock/{uuid}: the probe a vacuum reads the storage's time from
CUT_SHORT = "#"  # object_store writes a local file as `name#N`, renamed to `name` once whole
T = TypeVar("T")
# A commit writes its files before it commits them: a vacuum that deleted files younger than the
# longest commit could delete one in flight. Delta's own default keeps a week of versions.
MIN_RETENTION_HOURS = 1
DEFAULT_RETENTION_HOURS = 168
CLOCK_SLACK = 60.0  # seconds: a clock this close to the storage's counts as agreeing with it


class OldFormat(LakeError):
    """A table written in the lake format before Delta: ``pipelines lake upgrade`` converts it."""


class FilesVanished(CommitConflict):
    """A commit named files that were deleted while it was in flight (a vacuum beside it): the
    version was undone at once, and the caller recomputes as after any lost commit race."""


def retention_problem(hours: float) -> str | None:
    """Why ``hours`` is too short a retention for a vacuum (None: it is long enough)."""
    if hours >= MIN_RETENTION_HOURS:
        return None
    if hours != hours:  # NaN
        return f"{hours} is not a number of hours"
    return (
        f"{hours:g} is under {MIN_RETENTION_HOURS}: a commit in flight writes its files before "
        "it commits them, and a vacuum that young could delete them"
    )


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

    guard(storage, path)
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
    version = 0 if base is None else base + 1  # one commit, never retried: the one after base
    _published(path, storage, version)
    return version


def create(path: str, storage: Storage, data: pa.RecordBatchReader, *, key: str) -> int:
    """Create the table at ``path`` from a stream of batches, partitioned by ``key``; version 0.

    :raises CommitConflict: another writer created it first
    """
    from deltalake import write_deltalake
    from deltalake.exceptions import DeltaError

    guard(storage, path)
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
    _published(path, storage, 0)
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

    guard(storage, path)
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
    metrics = reaching(storage, path, merger.execute, once=True)
    if table.version() != base:  # a merge that changes nothing commits nothing
        _published(path, storage, table.version())
    return metrics


def append(path: str, storage: Storage, data: pa.Table, *, merge_schema: bool = False) -> int:
    """Append ``data`` (concurrent appends do not conflict: delta-rs retries them); the new
    version.

    :param merge_schema: a column of ``data`` the table lacks is added to it (its older rows
        read null there)
    """
    from deltalake import write_deltalake

    guard(storage, path)
    table = open_table(path, storage)
    target = path if table is None else table  # a table object follows the version it writes
    reaching(
        storage,
        path,
        lambda: write_deltalake(
            target,
            data,
            mode="append",
            schema_mode="merge" if merge_schema else None,
            storage_options=storage.delta_options,
        ),
    )
    version = (table if table is not None else open_table(path, storage)).version()
    _published(path, storage, version)
    return version


def overwrite_where(path: str, storage: Storage, data: pa.Table, predicate: str) -> None:
    """Replace the rows matching ``predicate`` with ``data`` (every row of which matches it), in
    one commit (the table exists).

    :raises CommitConflict: another writer's commit touched those rows first
    """
    from deltalake import CommitProperties, write_deltalake

    guard(storage, path)
    table = open_table(path, storage)  # a table object follows the version it writes
    _changed(
        path,
        storage,
        table,
        lambda: write_deltalake(
            table,
            data,
            mode="overwrite",
            predicate=predicate,
            storage_options=storage.delta_options,
            commit_properties=CommitProperties(max_commit_retries=0),
        ),
    )


def delete_where(path: str, storage: Storage, predicate: str | None) -> None:
    """Delete the rows matching ``predicate`` (None: every row; nothing when the table does not
    exist)."""
    table = open_table(path, storage)
    if table is None:
        return
    guard(storage, path)
    _changed(path, storage, table, lambda: table.delete(predicate))


def compact(path: str, storage: Storage) -> None:
    """Rewrite small files into fewer (a conflict with a concurrent writer is left for the next
    time: compaction is never needed for correctness)."""
    table = open_table(path, storage)
    if table is None:
        return
    guard(storage, path)
    try:
        _changed(path, storage, table, table.optimize.compact)
    except CommitConflict:
        log.info("%s: compaction met a concurrent commit; left for later", redact(path))


def vacuum(path: str, storage: Storage, retention_hours: float) -> list[str]:
    """Delete the files of ``path`` that no version younger than ``retention_hours`` needs (those
    of replaced versions, and those crashed writers left, half-written ones too:
    :func:`_cut_short`); the deleted files.

    Age is the storage's, not this machine's: delta-rs judges a file by its modification time
    (stamped by the storage) against the local clock, so a local clock hours ahead would make a
    file a commit in flight is about to publish look old. The vacuum reads the storage's time
    from a probe it writes (:func:`_ahead_of_storage`) and keeps that much longer.

    :raises LakeError: ``retention_hours`` is under :data:`MIN_RETENTION_HOURS`
    """
    why = retention_problem(retention_hours)
    if why:
        raise LakeError(f"retention_hours {why}")
    table = open_table(path, storage)
    if table is None:
        return []
    storage.check_writable_folders(path, deep=True)  # it lists, and deletes, anywhere below
    ahead = _ahead_of_storage(path, storage)
    hours = math.ceil(retention_hours + ahead / 3600)
    if ahead:
        log.warning(
            "%s: this machine's clock is %.0f s ahead of the storage's: the vacuum keeps %s h",
            redact(path),
            ahead,
            hours,
        )
    for attempt in range(1, RETRIES + 1):
        try:
            return _vacuumed(path, storage, table, hours) + _cut_short(path, storage, hours)
        except CommitConflict:  # its record of the vacuum met a writer's commit: judge again
            if attempt == RETRIES:
                raise
            table = open_table(path, storage)
    raise AssertionError("unreachable")


def _vacuumed(path: str, storage: Storage, table: DeltaTable, hours: int) -> list[str]:
    """delta-rs's vacuum of ``table`` at ``hours`` of retention, by the local clock."""
    vacuumed = reaching(
        storage,
        path,
        lambda: table.vacuum(
            retention_hours=hours,
            dry_run=False,
            enforce_retention_duration=False,
            full=True,  # also the files no commit names (a crashed writer's)
        ),
    )
    return list(vacuumed)


def _cut_short(path: str, storage: Storage, hours: int) -> list[str]:
    """Delete the half-written files of local writes a kill cut short, older than ``hours``; the
    deleted files (relative to ``path``). object_store writes a local data file as ``name#N``
    and renames it to ``name`` once whole, and its listing, so delta-rs's vacuum, never shows a
    ``#N`` name: a writer killed inside that window left it for good. An upload to S3 that
    never finished is no object."""
    if storage.remote:
        return []
    cutoff = time.time() - hours * 3600
    found = []
    for file, _ in storage.files(path):
        name = os.path.basename(file)
        head, cut, tail = name.rpartition(CUT_SHORT)
        if not (cut and head and tail.isdigit()) or f"/{LOG}/" in file:
            continue
        with contextlib.suppress(FileNotFoundError):
            if storage.mtime(file) < cutoff:
                found.append(file)
    storage.delete(found)
    return [os.path.relpath(file, path) for file in found]


def _ahead_of_storage(path: str, storage: Storage) -> float:
    """How many seconds this machine's clock is ahead of the storage's (0 when it is not, or by
    under :data:`CLOCK_SLACK`): the modification time the storage stamps on a probe written in
    the table's folder, against the local time just before it was written."""
    probe = f"{path}/{CLOCK}/{uuid.uuid4().hex}"
    before = time.time()
    storage.touch(probe)
    try:
        stamped = storage.mtime(probe)
    finally:
        storage.delete([probe])
        storage.prune(f"{path}/{CLOCK}")
    ahead = before - stamped
    return ahead if ahead > CLOCK_SLACK else 0.0


def optimize(path: str, storage: Storage) -> dict:
    """Compact the table's small files into fewer, larger ones (one commit; readers at older
    versions are unaffected until a vacuum); delta-rs's metrics."""
    table = open_table(path, storage)
    if table is None:
        return {}
    guard(storage, path)
    return _changed(path, storage, table, table.optimize.compact)


def guard(storage: Storage, path: str) -> None:
    """The namespace guard for a delta-rs write of the table at ``path``: delta-rs writes data
    files in the table's folder and its partition folders, commits in its log and lists the log
    (to clean it up), none of it through the storage: no link may be on the way or there."""
    storage.check_writable_folders(path, f"{path}/{LOG}")


def restore(path: str, storage: Storage, version: int) -> int:
    """Delta's restore of the table at ``path`` to ``version`` (its files named again, in one new
    commit; the table exists); the version committed.

    :raises FilesVanished: a file of ``version`` was gone when the commit landed (it is undone)
    """
    table = open_table(path, storage)
    guard(storage, path)
    _changed(path, storage, table, lambda: table.restore(version))
    return table.version()


def set_properties(path: str, storage: Storage, properties: dict[str, str]) -> int:
    """Commit ``properties`` as table properties (a commit that changes no row; the table
    exists); the version committed."""
    table = open_table(path, storage)
    guard(storage, path)
    _changed(
        path,
        storage,
        table,
        lambda: table.alter.set_table_properties(properties, raise_if_not_exists=False),
    )
    return table.version()


def _changed(path: str, storage: Storage, table: DeltaTable, call: Callable[[], T]) -> T:
    """``call()``, a delta-rs call that commits through ``table`` (or does nothing), then the
    version it committed checked (:func:`_published`)."""
    before = table.version()
    done = reaching(storage, path, call)
    if table.version() != before:
        _published(path, storage, table.version())
    return done


def _published(path: str, storage: Storage, version: int) -> None:
    """Check that every file ``version`` (just committed) adds is there; undo the version when
    one is gone (a vacuum deleted it while the commit was in flight), so the table stays
    readable, and say so.

    :raises FilesVanished: a file was gone (the caller recomputes and commits again)
    """
    gone = [f for f in _added(path, storage, version) if not storage.exists(f)]
    if not gone:
        return
    undone = _undo(path, storage, version)
    raise FilesVanished(
        f"{redact(path)}: version {version} named {len(gone)} file(s) deleted while its commit "
        f"was in flight ({redact(gone[0])}); {undone}"
    )


def _added(path: str, storage: Storage, version: int) -> list[str]:
    """The files the commit of ``version`` adds (paths in the lake's form)."""
    try:
        lines = damage.entry_lines(storage.read(commit_path(path, version)))
    except FileNotFoundError:
        return []
    added = []
    for line in filter(str.strip, lines):
        add = json.loads(line).get("add")
        if add:  # relative, and percent-encoded once more than the folders are named
            name = add["path"]
            added.append(name if "://" in name else f"{path}/{unquote(name)}")
    return added


def _undo(path: str, storage: Storage, version: int) -> str:
    """Undo ``version``, which names files that are gone: the version before restored when none
    came after it (rows as they were), else the gone files dropped from the table; what was done.
    """
    from deltalake import CommitProperties
    from deltalake.exceptions import DeltaError

    table = open_table(path, storage)
    if version > 0 and table is not None and table.version() == version:
        once = CommitProperties(max_commit_retries=0)
        try:
            reaching(storage, path, lambda: table.restore(version - 1, commit_properties=once))
            return f"restored version {version - 1} as version {table.version()}"
        except (CommitConflict, DeltaError):  # a writer got in; or older files are gone too
            table = open_table(path, storage)
    reaching(storage, path, lambda: table.repair(dry_run=False))
    return f"dropped the gone files from the table (version {table.version()})"


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
