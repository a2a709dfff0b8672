"""Lake tables: Parquet files and versioned tables with atomic commits (bytes: :mod:`.storage`).

A table is a folder of immutable Parquet files plus a log of JSON manifests
(``_log/0000000001.json`` ...). A commit writes its new files first and then the next manifest with
an exclusive create, so readers see either the previous version or the new one, never a mix, and
two writers cannot both commit the same version (the loser gets :class:`CommitConflict` and
retries). Files not named by the current manifest are ignored by readers and vacuumed later.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.common.partitions import partition_name
from pipelines.exceptions import CommitConflict
from pipelines.lake.storage import Storage
from pipelines.runtime.secrets import redact

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
LOG_DIR = "_log"
KEEP_VERSIONS = 20
ENCODERS = min(4, os.cpu_count() or 1)  # partitions of one commit encoded at once


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def encode_all(frames: list[pd.DataFrame]) -> Iterator[bytes]:
    """:func:`parquet_bytes` of each frame, in order, encoded ``ENCODERS`` at a time (pyarrow
    encodes without the GIL: a merge touching 30 partitions writes them about twice as fast on
    two cores). At most ``ENCODERS + 1`` encoded files wait in memory at once."""
    if len(frames) < 2 or ENCODERS < 2:
        yield from map(parquet_bytes, frames)
        return
    with ThreadPoolExecutor(ENCODERS, thread_name_prefix="parquet") as pool:
        pending: deque[Future[bytes]] = deque()
        for frame in frames:
            pending.append(pool.submit(parquet_bytes, frame))
            if len(pending) > ENCODERS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def read_parquet_bytes(data: bytes, columns: list[str] | None = None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    # not to_pandas(self_destruct=True): it lowered peak memory but made ~1 process in 7 abort
    # at exit (SIGABRT, "terminate called without an active exception"), pyarrow 26
    return pq.read_table(io.BytesIO(data), columns=columns).to_pandas()


def iso_utc(value) -> str:
    """A timestamp, or a date (no time zone: taken as UTC), as ISO text in UTC: one form for both
    kinds, which sorts like time (a key may widen from date to timestamp)."""
    if getattr(value, "tzinfo", None) is None and hasattr(value, "tz_localize"):
        value = value.tz_localize("UTC")
    return value.isoformat()


def value_range(values: pd.Series) -> dict[str, Any]:
    """``{"lo": min, "hi": max}`` as JSON values that compare like the column (timestamps and
    dates as :func:`iso_utc` text)."""
    lo, hi = values.min(), values.max()
    if hasattr(lo, "isoformat"):
        return {"lo": iso_utc(lo), "hi": iso_utc(hi)}
    if hasattr(lo, "item"):
        lo, hi = lo.item(), hi.item()
    return {"lo": lo, "hi": hi}


@dataclass(frozen=True)
class Snapshot:
    """One committed version of a table: which file holds each partition, and table metadata."""

    version: int
    partitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {
            "version": self.version,
            "partitions": self.partitions,
            "meta": self.meta,
            "committed_at": time.time(),
        }
        # compact: the C encoder, and a manifest that grows with the partitions stays small;
        # not sort_keys (40 % of encoding 3,650 partitions): Table.commit keeps them in order
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Snapshot:
        """The version ``data`` holds. A manifest read again with the same bytes is not parsed
        again: ten years of daily partitions are ~0.7 MB of JSON, a few ms per parse, against
        ~3 ms for reading one partition. Keyed by the bytes themselves, a table deleted and
        written again under the same version number can never be served stale."""
        return _parsed(data)

    @property
    def files(self) -> set[str]:
        """The data files (relative to the table) this version names."""
        return {entry["file"] for entry in self.partitions.values()}

    def has_landed(self, ds: str) -> bool:
        """Whether a run for day ``ds`` committed to this table and passed its checks (a run
        whose checks are still to come, or failed, has not landed). A day older than the first
        recorded run (a table written before runs were recorded) has landed when its partition
        is there."""
        runs = self.meta.get("runs", {})
        if ds in runs:
            return runs[ds].get("checks", PASSED) == PASSED
        return ds in self.partitions and ds < min(runs, default="9999-12-31")

    def run_metrics(self, ds: str) -> dict[str, Any]:
        """What the run for day ``ds`` recorded when it committed ({}: no such run)."""
        return dict(self.meta.get("runs", {}).get(ds, {}))

    def rows(self, partition: str | None = None) -> int:
        if partition is not None:
            return int(self.partitions.get(partition, {}).get("rows", 0))
        return sum(int(p.get("rows", 0)) for p in self.partitions.values())

    def as_stored(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` (read from this version) in the kinds of this version's schema: partitions
        written before a column was added or widened read like the newest ones."""
        from pipelines.common import transforms  # pandas: not at parse time

        return transforms.as_kinds(rows, dict(self.meta.get("schema", [])))


@functools.lru_cache(maxsize=16)
def _parsed(data: bytes) -> Snapshot:
    body = json.loads(data)
    return Snapshot(body["version"], body["partitions"], body.get("meta", {}))


EMPTY = Snapshot(0)
PASSED = "passed"  # a run's checks, in meta.runs[D]["checks"]: "pending", "passed", "failed: ..."


class Table:
    """A versioned, partitioned Parquet table in the lake.

    :param storage: where the lake is
    :param path: the table's root (from :mod:`pipelines.common.partitions`)
    :param key: the partition column name (``ds`` or ``dt``)
    """

    def __init__(self, storage: Storage, path: str, key: str):
        self.storage = storage
        self.path = storage.check_inside(path)
        self.key = key

    def __repr__(self) -> str:
        return f"Table({redact(self.path)!r})"

    def _log(self, version: int) -> str:
        return f"{self.path}/{LOG_DIR}/{version:010d}.json"

    def snapshot(self) -> Snapshot:
        """The newest committed version (version 0 and no partitions for a new table)."""
        names = [
            n
            for n in self.storage.list(f"{self.path}/{LOG_DIR}")
            if n.endswith(".json") and n[:-5].isdigit()
        ]
        version = max((int(n[:-5]) for n in names), default=0)
        while True:  # a commit may land between list and read: follow it
            if version == 0:
                return EMPTY
            try:
                snap = Snapshot.from_json(self.storage.read(self._log(version)))
            except FileNotFoundError:
                return self.snapshot()
            nxt = self._log(version + 1)
            if nxt.rsplit("/", 1)[-1] in self.storage.list(f"{self.path}/{LOG_DIR}"):
                version += 1
                continue
            return snap

    def read_partition(
        self, partition: str, snapshot: Snapshot | None = None, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """One partition's rows, optionally only some columns (empty frame when it does not
        exist). Without ``snapshot``: of the newest version, re-read when a concurrent commit
        (of this namespace, or of the one a research namespace reads in place) replaced and
        vacuumed the file between the manifest and the read."""
        import pandas as pd

        for attempt in range(3):
            snap = snapshot or self.snapshot()
            entry = snap.partitions.get(partition)
            if entry is None:
                return pd.DataFrame()
            try:
                return read_parquet_bytes(
                    self.storage.read(f"{self.path}/{entry['file']}"), columns
                )
            except FileNotFoundError:
                if snapshot is not None or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def read(
        self,
        partitions: Iterable[str] | None = None,
        snapshot: Snapshot | None = None,
        with_key: bool = True,
    ) -> pd.DataFrame:
        """Rows of the given partitions (default all) with the partition column added."""
        return self.read_version(partitions, snapshot, with_key)[0]

    def read_current(self, partitions: Iterable[str] | None = None) -> pd.DataFrame:
        """:meth:`read` of the current version, every column in the kind the table has now
        (:meth:`Snapshot.as_stored`)."""
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

        for attempt in range(3):
            snap = snapshot or self.snapshot()
            wanted = sorted(
                snap.partitions
                if partitions is None
                else [p for p in partitions if p in snap.partitions]
            )
            try:
                frames = [self._with_key(self.read_partition(p, snap), p, with_key) for p in wanted]
            except FileNotFoundError:
                if snapshot is not None or attempt == 2:
                    raise
                continue  # a concurrent commit vacuumed the files: re-read the new version
            frames = [f for f in frames if not f.empty]
            if not frames:
                return pd.DataFrame(), snap
            return (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]), snap
        raise AssertionError("unreachable")

    def _with_key(self, frame: pd.DataFrame, partition: str, with_key: bool) -> pd.DataFrame:
        if with_key and not frame.empty:
            frame.insert(0, self.key, partition)
            frame[self.key] = frame[self.key].astype("string")
        return frame

    def commit(
        self,
        base: Snapshot,
        changes: dict[str, pd.DataFrame | None],
        meta: dict[str, Any] | None = None,
        range_column: str | None = None,
        *,
        run: tuple[str, dict[str, Any]] | None = None,
    ) -> Snapshot:
        """Replace (a frame, even empty) or drop (None) partitions, atomically, as version+1.

        :param base: the snapshot the changes were computed from
        :param range_column: record each written partition's min and max of this column
            (``lo``/``hi`` in the manifest), so a merge can skip partitions without reading them
        :param run: ``(day, metrics)`` of the run committing, kept in ``meta["runs"]`` with the
            version: whether a day has landed (:meth:`Snapshot.has_landed`, what a workflow asks
            before it reads the day) and what its run counted (:meth:`Snapshot.run_metrics`)
        :raises CommitConflict: another writer committed since ``base``
        """
        version = base.version + 1
        partitions = dict(base.partitions)
        written = sorted(((p, f) for p, f in changes.items() if f is not None), key=lambda c: c[0])
        for part in sorted(p for p, f in changes.items() if f is None):
            partitions.pop(part, None)
        folders = [partition_name(self.key, p) for p, _ in written]  # ValueError: not a date
        encoded = encode_all([frame for _, frame in written])
        for (part, frame), folder, data in zip(written, folders, encoded, strict=True):
            rel = f"{folder}/part-{version:08d}-{uuid.uuid4().hex[:12]}.parquet"
            self.storage.write(f"{self.path}/{rel}", data)
            partitions[part] = {"file": rel, "rows": len(frame)}
            if range_column and len(frame):
                partitions[part].update(value_range(frame[range_column]))
        meta = {**base.meta, **(meta or {})}
        if run is not None:
            meta["runs"] = _in_order({**base.meta.get("runs", {}), run[0]: run[1]})
        snap = Snapshot(version, _in_order(partitions), meta)
        if not self.storage.create(self._log(version), snap.to_json()):
            raise CommitConflict(f"{self!r}: version {version} was committed by another writer")
        self._vacuum(base, snap)
        return snap

    def _vacuum(self, base: Snapshot, new: Snapshot) -> None:
        """Delete the files the new version replaced, and manifests older than KEEP_VERSIONS."""
        self.storage.delete(f"{self.path}/{rel}" for rel in sorted(base.files - new.files))
        stale = new.version - KEEP_VERSIONS
        if stale > 0 and new.version % 10 == 0:
            names = self.storage.list(f"{self.path}/{LOG_DIR}")
            self.storage.delete(
                f"{self.path}/{LOG_DIR}/{n}"
                for n in names
                if n[:-5].isdigit() and int(n[:-5]) < stale
            )


def _in_order(by_day: dict[str, Any]) -> dict[str, Any]:
    """Days in order (a new day is usually the last: then nothing is rebuilt)."""
    days = list(by_day)
    return by_day if days == sorted(days) else dict(sorted(by_day.items()))


def sweep(table: Table, min_age_seconds: float = 3600.0) -> list[str]:
    """Delete what crashed writers left in ``table``: data files no version names and temp files,
    once older than ``min_age_seconds`` (younger ones may belong to a commit still in flight).

    :return: the deleted paths
    """
    live = table.snapshot().files
    cutoff = time.time() - min_age_seconds
    leftovers = []
    for folder in [LOG_DIR, *(n for n in table.storage.list(table.path) if "=" in n)]:
        for name in table.storage.list(f"{table.path}/{folder}"):
            rel = f"{folder}/{name}"
            orphan = name.startswith("part-") and rel not in live
            if orphan or name.startswith(".tmp-"):
                path = f"{table.path}/{rel}"
                if table.storage.mtime(path) < cutoff:
                    leftovers.append(path)
    table.storage.delete(leftovers)
    return leftovers


def commit_with_retry(
    table: Table, attempt: Callable[[Snapshot], Snapshot], tries: int = 20
) -> Snapshot:
    """Run ``attempt(snapshot)`` (read, compute, commit) until no other writer got in between.

    A file of the snapshot that vanished while being read was vacuumed by a concurrent commit:
    that is a conflict too. A file missing from the newest version is a real error.
    """
    for n in range(1, tries + 1):
        base = table.snapshot()
        try:
            return attempt(base)
        except (CommitConflict, FileNotFoundError) as exc:
            moved = isinstance(exc, CommitConflict) or table.snapshot().version != base.version
            if n == tries or not moved:
                raise
            log.info("%r: concurrent commit, retrying (%s/%s)", table, n, tries)
            time.sleep(0.05 * n)
    raise AssertionError("unreachable")
