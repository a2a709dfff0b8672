"""Lake tables: each one a Delta Lake table (delta-rs), partitioned by ``ds`` or ``dt``.

A commit replaces a set of partitions in one Delta commit (an overwrite by predicate), as the
version after the one its rows were computed from: readers see the old version or the new one,
never a mix, and a writer that another got in before gets :class:`CommitConflict` and recomputes
(:func:`commit_with_retry`). What a run recorded of the table (its counts, checks, the config it
was written with) is in the namespace's runs table (:mod:`.runs`); the kinds of a cleaned table's
columns are in its Delta schema's field metadata (:mod:`.frames`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.exceptions import CommitConflict, LakeError
from pipelines.lake import damage, delta, frames
from pipelines.lake.holdings import Holdings, change
from pipelines.lake.runs import Recorded, RunLog
from pipelines.lake.storage import Storage
from pipelines.runtime.secrets import redact

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)
T = TypeVar("T")
DTYPE = frames.DTYPE.encode()
FAILED = "failed"  # how a failed run's checks start ("failed: why")
PASSED = "passed"  # a run's checks (meta["runs"][D]["checks"]): "pending", "passed", "failed: ..."
# in a run's record: the partitions the day's runs rewrote and the version of the last that did
# (``{"version": V, "partitions": [...]}``): what tells a workflow output that read an older
# version it is stale (:mod:`pipelines.steps.staleness`); a rerun that changed nothing keeps it
WROTE = "wrote"


def iso_utc(value) -> str:
    """A timestamp, or a date (no time zone: taken as UTC), as ISO text in UTC: one form for both
    kinds, which sorts like time (a key may widen from date to timestamp)."""
    if getattr(value, "tzinfo", None) is None and hasattr(value, "tz_localize"):
        value = value.tz_localize("UTC")
    if not hasattr(value, "tz_localize") and hasattr(value, "isoformat"):
        import pandas as pd

        return iso_utc(pd.Timestamp(value))
    return value.isoformat()


@dataclass(frozen=True)
class Snapshot:
    """One committed version of a table: its partitions (with their row counts), its schema, and
    what the runs that wrote it recorded.

    :param version: the Delta version (-1: the table does not exist yet)
    :param files: the version's add actions (path, rows, partition value, column statistics)

    One from :meth:`Table.outline` has its partitions and runs only (no schema, no files): it
    answers what the table holds and what its runs recorded, and reads no row.
    """

    version: int
    partitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: Any = None  # pyarrow.Schema of the version; None: no table
    recorded: Callable[[], Recorded] = field(default=Recorded, repr=False, compare=False)
    delta: Any = field(default=None, repr=False, compare=False)  # the DeltaTable at this version
    files: Any = field(default=None, repr=False, compare=False)
    key: str = ""  # the partition column, as the table's Delta metadata names it

    @property
    def exists(self) -> bool:
        """Whether the Delta table exists (a table that only ever got empty writes does not)."""
        return self.version >= 0

    @property
    def written(self) -> bool:
        """Whether a run wrote the table, if only nothing (the rows of an empty delivery)."""
        return self.exists or bool(self._recorded.runs)

    @cached_property
    def _recorded(self) -> Recorded:
        return self.recorded()

    @property
    def kinds(self) -> dict[str, str]:
        """The declared kind of each column (a cleaned table's schema), in column order."""
        return frames.kinds_of(self.schema) if self.schema is not None else {}

    @property
    def meta(self) -> dict[str, Any]:
        """``schema`` (``[[column, kind], ...]``), ``columns`` (``[[column, dtype], ...]``, the
        pandas dtypes it was written from, without the partition column),
        ``config`` (the newest recorded) and ``runs`` (``{day: metrics}``)."""
        recorded = self._recorded
        meta: dict[str, Any] = {"runs": recorded.runs}
        if self.kinds:
            meta["schema"] = [list(item) for item in self.kinds.items()]
        if self.schema is not None:
            names = {stored: name for name, stored in frames.stored_names(self.schema).items()}
            meta["columns"] = [
                [names.get(f.name, f.name), (f.metadata or {}).get(DTYPE, b"string").decode()]
                for f in self.schema
                if f.name != self.key
            ]
        if recorded.config is not None:
            meta["config"] = recorded.config
        return meta

    def has_landed(self, ds: str) -> bool:
        """Whether a run for day ``ds`` committed to this table and passed its checks (a run
        whose checks are still to come, or failed, has not landed)."""
        runs = self._recorded.runs
        return ds in runs and runs[ds].get("checks", PASSED) == PASSED

    def failed_days(self) -> tuple[str, ...]:
        """The days whose run recorded failed checks (a workflow's: a failed run), oldest first."""
        runs = self._recorded.runs
        return tuple(
            d
            for d, metrics in runs.mentioning(FAILED).items()
            if str(metrics.get("checks", "")).startswith(FAILED)
        )

    def failed_checks(self, ds: str) -> str | None:
        """Why the run for day ``ds`` failed its checks (None: it did not fail, or never ran)."""
        checks = str(self._recorded.runs.get(ds, {}).get("checks", ""))
        if not checks.startswith(FAILED):
            return None
        return checks.removeprefix(FAILED).removeprefix(":").strip()

    def run_metrics(self, ds: str) -> dict[str, Any]:
        """What the run for day ``ds`` recorded when it committed ({}: no such run)."""
        return dict(self._recorded.runs.get(ds, {}))

    def wrote(self, ds: str) -> tuple[int, list[str]] | None:
        """The version of the last run for day ``ds`` that changed the table, and the
        partitions the day's runs changed (None: none recorded, or none that changed a row)."""
        said = self._recorded.runs.get(ds, {}).get(WROTE)
        return (int(said["version"]), list(said["partitions"])) if said else None

    def version_of(self, ds: str) -> int | None:
        """The version the newest run for day ``ds`` left the table at (None: no such run)."""
        return self._recorded.versions.get(ds)

    @property
    def holdings(self) -> Holdings:
        """What this version holds: each partition's rows (what a run record says of it)."""
        return Holdings(
            self.version, {p: int(e.get("rows", 0)) for p, e in self.partitions.items()}
        )

    def rows(self, partition: str | None = None) -> int:
        if partition is not None:
            return int(self.partitions.get(partition, {}).get("rows", 0))
        return sum(int(p.get("rows", 0)) for p in self.partitions.values())

    def local_files(self, partitions: set[str]) -> list[tuple[str, str]]:
        """``(path, partition)`` of this version's files in ``partitions``, for a table on local
        disk (the log's paths are relative and percent-encoded once more than the folders)."""
        from urllib.parse import unquote

        root = self.delta.table_uri.removeprefix("file://").rstrip("/")
        paths = self.files["path"].to_pylist()
        parts = self.files[f"partition.{self.key}"].to_pylist()
        sizes = self.files["size_bytes"].to_pylist()
        chosen = [
            (path, part, size)
            for path, part, size in zip(paths, parts, sizes, strict=True)
            if part in partitions
        ]
        # a file cut short (or emptied) is named here, before a reader meets it
        found = damage.sizes_damage(root, {p: s for p, _, s in chosen}, missing=False)
        if found:
            raise found[0].error(root)
        return [(f"{root}/{unquote(path)}", part) for path, part, _ in chosen]

    def key_ranges(self, column: str) -> dict[str, tuple[Any, Any]]:
        """``partition -> (lo, hi)`` of ``column`` from the files' statistics (dates and
        timestamps as :func:`iso_utc` text); a partition whose files record none is left out."""
        column = frames.stored_names(self.schema).get(column, column)
        if self.files is None or f"min.{column}" not in self.files.column_names:
            return {}
        ranges: dict[str, tuple[Any, Any]] = {}
        parts = self.files[f"partition.{self.key}"].to_pylist()
        lows = self.files[f"min.{column}"].to_pylist()
        highs = self.files[f"max.{column}"].to_pylist()
        for part, lo, hi in zip(parts, lows, highs, strict=True):
            if lo is None or hi is None:
                ranges[part] = (None, None)
                continue
            lo, hi = (iso_utc(v) if hasattr(v, "isoformat") else v for v in (lo, hi))
            old = ranges.get(part)
            if old is None:
                ranges[part] = (lo, hi)
            elif old[0] is not None:
                ranges[part] = (min(old[0], lo), max(old[1], hi))
        return {p: r for p, r in ranges.items() if r[0] is not None}

    def as_stored(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` (read from this version) in the kinds of this version's schema."""
        from pipelines.common import transforms  # pandas: not at parse time

        return transforms.as_kinds(rows, self.kinds)


EMPTY = Snapshot(-1)


def _with_wrote(
    metrics: dict[str, Any], before: dict[str, Any], start: Snapshot, after: Snapshot
) -> dict[str, Any]:
    """A run's record with :data:`WROTE`: the partitions whose files differ between ``start``
    and ``after`` (with those an earlier run of the day changed: a workflow that read before
    either is stale), or, when the run changed nothing, what the day's earlier runs said."""
    earlier = metrics.get(WROTE) or before.get(WROTE)
    if after.version == start.version:
        return {**metrics, WROTE: earlier} if earlier else metrics
    changed = set(changed_partitions(start, after))
    changed |= set(earlier["partitions"]) if earlier else set()
    return {**metrics, WROTE: {"version": after.version, "partitions": sorted(changed)}}


def changed_partitions(before: Snapshot, after: Snapshot) -> list[str]:
    """The partitions whose files differ between two versions (a rewrite makes new files)."""
    was, now = _files_by_partition(before), _files_by_partition(after)
    return sorted(p for p in set(was) | set(now) if was.get(p) != now.get(p))


def _files_by_partition(snap: Snapshot) -> dict[str, frozenset[str]]:
    if snap.files is None or not snap.key:
        return {p: frozenset() for p in snap.partitions}  # no files known: by partition only
    found: dict[str, set[str]] = {}
    paths = snap.files["path"].to_pylist()
    for path, part in zip(paths, snap.files[f"partition.{snap.key}"].to_pylist(), strict=True):
        found.setdefault(part, set()).add(path)
    return {p: frozenset(f) for p, f in found.items()}


class Table:
    """A partitioned Delta table in the lake.

    :param storage: where the lake is
    :param path: the table's root (from :mod:`pipelines.common.partitions`)
    :param key: the partition column name (``ds`` or ``dt``)
    :param runs: the runs table of the namespace the table is in, and the table's name in it
    """

    def __init__(
        self, storage: Storage, path: str, key: str, runs: tuple[RunLog, str] | None = None
    ):
        self.storage = storage
        self.path = storage.check_inside(path)
        self.key = key
        self.runs = runs

    def __repr__(self) -> str:
        return f"Table({redact(self.path)!r})"

    def recorded(self) -> Recorded:
        """What the runs of this table recorded (nothing, for a table no runs table records)."""
        return self._recorded()

    def _recorded(self) -> Recorded:
        if self.runs is None:
            return Recorded()
        log_, name = self.runs
        return log_.of(name)

    def outline(self) -> Snapshot:
        """The newest version's partitions and their rows, and the runs recorded, as the runs
        table says them, without opening the table's Delta log: it only looks whether the log
        has a version after the records' newest. :meth:`snapshot` when the records cannot say
        (see :mod:`.holdings`) or are behind (a commit whose record is still to come, or was lost
        with its writer). It has no schema and no files: it answers how much the table holds,
        not what (a command that asks it of every table: ``status``)."""
        recorded = self._recorded()
        holds = recorded.holdings
        if holds is None or self.storage.exists(delta.commit_path(self.path, holds.version + 1)):
            return self.snapshot()
        partitions = {p: {"rows": n} for p, n in holds.rows.items()}
        return Snapshot(holds.version, partitions, recorded=lambda: recorded, key=self.key)

    def snapshot(self, version: int | None = None) -> Snapshot:
        """The newest committed version (or ``version``); version -1 for a table not written yet."""
        import pyarrow as pa

        opened = delta.open_table(self.path, self.storage, version)
        if opened is None:
            return Snapshot(-1, recorded=self._recorded)
        files = pa.table(opened.get_add_actions(flatten=True))
        partitions: dict[str, dict[str, Any]] = {}
        key = self.key or next(iter(opened.metadata().partition_columns), "")
        column = f"partition.{key}"
        if key and column in files.column_names:
            for part, rows in zip(
                files[column].to_pylist(), files["num_records"].to_pylist(), strict=True
            ):
                entry = partitions.setdefault(part, {"rows": 0})
                entry["rows"] += int(rows or 0)
        return Snapshot(
            opened.version(),
            dict(sorted(partitions.items())),
            pa.schema(opened.schema().to_arrow()),
            self._recorded,
            opened,
            files,
            key,
        )

    def read_partition(
        self, partition: str, snapshot: Snapshot | None = None, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """One partition's rows (without the partition column), optionally only some columns
        (an empty frame when it does not exist)."""
        snap = snapshot or self.snapshot()
        if partition not in snap.partitions:
            import pandas as pd

            return pd.DataFrame()
        return frames.to_frame(self._arrow(snap, [partition], columns, with_key=False))

    def read(
        self,
        partitions: Iterable[str] | None = None,
        snapshot: Snapshot | None = None,
        with_key: bool = True,
    ) -> pd.DataFrame:
        """Rows of the given partitions (default all) with the partition column added."""
        return self.read_version(partitions, snapshot, with_key)[0]

    def read_current(self, partitions: Iterable[str] | None = None) -> pd.DataFrame:
        """:meth:`read` of the current version, every column in the kind the table has now."""
        rows, snap = self.read_version(partitions)
        return snap.as_stored(rows)

    def read_version(
        self,
        partitions: Iterable[str] | None = None,
        snapshot: Snapshot | None = None,
        with_key: bool = True,
    ) -> tuple[pd.DataFrame, Snapshot]:
        """:meth:`read`, and the version the rows were read from."""
        import pandas as pd

        snap = snapshot or self.snapshot()
        wanted = sorted(
            snap.partitions
            if partitions is None
            else [p for p in partitions if p in snap.partitions]
        )
        if not wanted:  # no rows, but the table's columns (when it has any yet)
            if snap.schema is None:
                return pd.DataFrame(), snap
            empty = frames.empty_frame(snap.schema)
            key = snap.key or self.key
            rows = empty if with_key or key not in empty.columns else empty.drop(columns=key)
        else:
            rows = frames.to_frame(self._arrow(snap, wanted, None, with_key))
        if with_key and self.key in rows.columns:
            rows.insert(0, self.key, rows.pop(self.key).astype("string"))
        return rows, snap

    def arrow(
        self, snapshot: Snapshot, partitions: list[str], columns: list[str] | None = None
    ) -> pa.Table:
        """The partitions' rows of ``snapshot`` as Arrow, in partition order."""
        return self._arrow(snapshot, partitions, columns, with_key=True)

    def _arrow(
        self,
        snap: Snapshot,
        partitions: list[str],
        columns: list[str] | None,
        with_key: bool,
    ) -> pa.Table:
        import pyarrow.compute as pc

        everything = set(partitions) >= set(snap.partitions)
        filters = None if everything or not self.key else [(self.key, "in", list(partitions))]
        names = frames.stored_names(snap.schema)
        wanted = None if columns is None else [*(names.get(c, c) for c in columns), self.key]
        if not self.storage.remote and snap.key:
            rows = _readable(self, lambda: _read_files(snap, set(partitions), wanted))
        else:
            rows = delta.reaching(
                self.storage,
                self.path,
                lambda: snap.delta.to_pyarrow_table(columns=wanted, filters=filters),
            )
        if self.key and self.key in rows.column_names and len(partitions) > 1:
            rows = rows.take(pc.sort_indices(rows[self.key]))  # stable: rows keep their order
        if self.key in rows.column_names and not with_key:
            rows = rows.drop_columns([self.key])
        return rows.replace_schema_metadata(None)

    def commit(
        self,
        base: Snapshot,
        changes: dict[str, pd.DataFrame | None],
        meta: dict[str, Any] | None = None,
        *,
        run: tuple[str, dict[str, Any]] | None = None,
        since: Snapshot | None = None,
        retype: bool = False,
    ) -> Snapshot:
        """Replace (a frame, even empty) or drop (None) partitions, atomically, as the version
        after ``base``; then record the run, the config of ``meta`` and what the table holds
        now in the runs table. The snapshot of the version committed (the newest, when none
        was).

        :param meta: ``schema`` (the cleaned table's ``[[column, kind], ...]``), ``config`` (the
            config the table was written with), ``runs`` (``{}``: forget the runs recorded)
        :param run: ``(day, metrics)`` of the run committing (:meth:`Snapshot.has_landed`,
            :meth:`Snapshot.run_metrics`)
        :param since: the version a write made outside this method (DuckDB's) started from,
            ``base`` being the version it committed: what changed is recorded from there
        :param retype: when ``changes`` replace every partition, the table takes the types of
            the new rows, narrower ones too (a table recomputed whole is what its new rows say)
        :raises CommitConflict: another writer committed since ``base``
        """
        meta = meta or {}
        kinds = dict(meta["schema"]) if "schema" in meta else base.kinds
        after = base
        if changes:
            version = self._write(base, changes, kinds, retype)
            after = self.snapshot(version) if version != base.version else base
        if self.runs is not None:
            log_, name = self.runs
            if meta.get("runs") == {}:
                log_.forget(name)
            holds = change(log_.of(name).holdings, (since or base).holdings, after.holdings)
            config = meta.get("config")
            if run is not None:
                run = (run[0], _with_wrote(run[1], base.run_metrics(run[0]), since or base, after))
            if run is not None or "config" in meta or holds is not None:
                log_.append(name, after.version, run=run, config=config, partitions=holds)
        return after if changes or not base.exists else self.snapshot()

    def vacuum(self, retention_hours: float) -> list[str]:
        """Delete the files no version of the last ``retention_hours`` needs (see
        :data:`~pipelines.lake.delta.MIN_RETENTION_HOURS`, judged by the storage's clock:
        :func:`pipelines.lake.delta.vacuum`); the deleted files. (Its commits change no row: the
        runs table records the version they reach, as it does after any commit.)"""
        return self._recording(lambda: delta.vacuum(self.path, self.storage, retention_hours))

    def optimize(self) -> dict:
        """Compact small files (delta-rs's metrics of the compaction; its commit changes no row,
        and is recorded as any commit)."""
        return self._recording(lambda: delta.optimize(self.path, self.storage))

    def clear(self) -> None:
        """Empty the table (the next write sets its schema anew) and forget its runs; the config
        it was written with stays recorded."""
        delta.delete_where(self.path, self.storage, None)
        if self.runs is not None:
            self.runs[0].forget(self.runs[1])
            self.record_holdings()

    def record_holdings(self) -> None:
        """Record what the table holds now, whole, in the runs table (what a command that
        answers from the records reads from here on: after a clear, after a repair)."""
        if self.runs is not None:
            log_, name = self.runs
            after = self.snapshot()
            log_.append(
                name, after.version, partitions=change(None, after.holdings, after.holdings)
            )

    def newest_damage(self, version: int) -> list[damage.Damage]:
        """What is wrong with the log entry of ``version`` (the newest, as :meth:`outline`
        says), the data files it adds, and the checkpoint readers start from (its size): two
        small reads, no replay of the log."""
        if version < 0:
            return []
        found = damage.newest_entry(self.path, self.storage, version)
        return found + damage.checkpoint_damage(self.path, self.storage)

    def _recording(self, maintain: Callable[[], T]) -> T:
        """``maintain()``, a commit that changes no row (a compaction, a vacuum), then the
        version it reached recorded in the runs table, what the table holds with it: the next
        command that asks (``status``) answers from the records still."""
        if self.runs is None:
            return maintain()
        before = self.snapshot()
        done = maintain()
        after = self.snapshot()
        log_, name = self.runs
        holds = change(log_.of(name).holdings, before.holdings, after.holdings)
        if holds is not None:
            log_.append(name, after.version, partitions=holds)
        return done

    def _write(
        self, base: Snapshot, changes: dict[str, pd.DataFrame | None], kinds, retype: bool
    ) -> int:
        import pandas as pd

        from pipelines.common.partitions import partition_name

        written = [(p, f) for p, f in sorted(changes.items()) if f is not None]
        for part, _ in written:
            partition_name(self.key, part)  # ValueError: not a date, or no partition key here
        frame = (
            pd.concat([f.assign(**{self.key: p}) for p, f in written], ignore_index=True)
            if written
            else None
        )
        data = frames.to_arrow(frame, kinds, base.schema) if frame is not None else None
        return _replace(self, base, data, sorted(changes), retype)


def _read_files(snap: Snapshot, partitions: set[str], columns: list[str] | None) -> pa.Table:
    """The rows of ``partitions`` at ``snap``, from those partitions' files alone, in the
    table's schema (a file written before a column was added reads it as null), the partition
    column filled in from the log. delta-rs's own read builds a piece for every file of the
    table whichever are asked for: one day of ten years read 3,650 of them."""
    import pyarrow.dataset as ds

    key = snap.key
    chosen = snap.local_files(partitions)
    schema = snap.schema
    if not chosen:
        table = schema.empty_table()
    else:
        dataset = ds.FileSystemDataset.from_paths(
            [path for path, _ in chosen],
            schema=schema,
            format=ds.ParquetFileFormat(),
            filesystem=_local_fs(),
            partitions=[ds.field(key) == part for _, part in chosen],
        )
        table = dataset.to_table(columns=columns, use_threads=False)
    return table if columns is not None else table.select(schema.names)


def _readable(table: Table, read: Callable[[], T]) -> T:
    """``read()`` of the table's data files; a file that does not read as Parquet is named in
    one line (whatever its size)."""
    import pyarrow as pa

    try:
        return read()
    except FileNotFoundError:
        raise  # a concurrent commit and vacuum: the reader reads the new version
    except (OSError, pa.ArrowException) as exc:
        named = damage.explain(table.path, table.storage, exc)
        if named is not None:
            raise named from None
        if damage.looks_corrupt(exc):  # of the right size: a byte changed inside it
            said = str(exc).splitlines()[0][:300]
            name = table.path.rstrip("/").rsplit("/", 1)[-1]
            raise LakeError(
                f"{redact(table.path)}: a data file does not read ({said}): `pipelines repair "
                f"{name}` reads each of its files, sets the damaged one aside and restores the "
                "table from its last good version and the raw deliveries"
            ) from None
        raise


@functools.lru_cache(maxsize=1)
def _local_fs():
    import pyarrow.fs

    return pyarrow.fs.LocalFileSystem()


def _replace(
    table: Table, base: Snapshot, data: pa.Table | None, parts: list[str], retype: bool = False
) -> int:
    """Write ``data`` in place of partitions ``parts``: the new version. A column whose type
    changed rewrites every partition in the wider type (a Delta table has one schema); with
    ``retype``, ``parts`` covering every partition, the table takes ``data``'s types."""
    key = table.key or base.key
    if data is None:
        if not base.exists:
            return base.version
        data = base.schema.empty_table()
    if not base.exists:
        return delta.replace(table.path, table.storage, data, key=key, partitions=None, base=None)
    whole = retype and set(base.partitions) <= set(parts)
    if not base.partitions or whole:  # emptied (a reset), or rewritten whole: the rows written
        # now say what its schema is
        return delta.replace(
            table.path, table.storage, data, key=key, partitions=None,
            base=base.version, reshape="overwrite",
        )  # fmt: skip
    merged, widened = frames.unify(base.schema, data.schema)
    data = conformed(data, merged)
    if widened:
        others = [p for p in base.partitions if p not in parts]
        older = conformed(table.arrow(base, others), merged) if others else None
        import pyarrow as pa

        rows = pa.concat_tables([t for t in (older, data) if t is not None])
        return delta.replace(
            table.path, table.storage, rows, key=key, partitions=None,
            base=base.version, reshape="overwrite",
        )  # fmt: skip
    added = [f.name for f in merged if f.name not in base.schema.names]
    return delta.replace(
        table.path, table.storage, data, key=key, partitions=parts,
        base=base.version, reshape="merge" if added else None,
    )  # fmt: skip


def conformed(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """``data`` with every column of ``schema`` (missing ones null), cast to its type."""
    import pyarrow as pa

    arrays = []
    for target in schema:
        if target.name in data.column_names:
            column = data[target.name]
            arrays.append(column if column.type == target.type else column.cast(target.type))
        else:
            arrays.append(pa.nulls(len(data), target.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def commit_with_retry(
    table: Table, attempt: Callable[[Snapshot], Snapshot], tries: int = 20
) -> Snapshot:
    """Run ``attempt(snapshot)`` (read, compute, commit) until no other writer got in between."""
    for n in range(1, tries + 1):
        base = table.snapshot()
        try:
            return attempt(base)
        except CommitConflict:
            if n == tries:
                raise
            log.info("%r: concurrent commit, retrying (%s/%s)", table, n, tries)
            time.sleep(0.05 * n)
    raise AssertionError("unreachable")
