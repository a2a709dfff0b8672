"""What each run recorded of the tables it wrote: one Delta table per namespace, ``{ns}/_runs``.

A run's counts and checks (``rows``, ``quarantined``, ``checks``, a workflow's metrics ...) and the
config a table was written with live here, not in the tables' own commits: a rerun that changes
no row makes no commit to its table, and is still recorded; and any engine that reads Delta reads
them too. A record is appended after the table's commit, naming the version it produced; the
newest record of a (table, day) is what that day's run counted.

Columns: ``table`` (``cleaned/orders``), ``ds`` (the run's day; null for a record of config
alone), ``version`` (the table's version after the run), ``metrics`` and ``config`` (JSON text),
``recorded_at`` (UTC), ``partitions`` (JSON text, or null: what the table holds, below).

What a table holds (each partition's rows) is recorded here too, with each commit, so that a
command that asks it of every table (``status``) reads this one table instead of opening each
table's Delta log: the ``partitions`` column, replayed by :mod:`.holdings`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pipelines.exceptions import CommitConflict
from pipelines.lake import delta
from pipelines.lake.holdings import Holdings, replay
from pipelines.lake.storage import Storage

log = logging.getLogger(__name__)
FOLDER = "_runs"
COMPACT_EVERY = 50  # versions: a reader of the log opens a few files, not one per run
APPEND_TRIES = 5


@dataclass(frozen=True)
class Recorded:
    """What the runs of one table recorded: each day's newest metrics, and its newest config.

    :param changes: ``(version, partitions)`` of each record that says what the table holds
        (:mod:`.holdings`), in the order they were recorded: replayed only when asked
    """

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    versions: dict[str, int] = field(default_factory=dict)  # the table's version each day left
    changes: tuple[tuple[int, str], ...] = field(default=(), repr=False, compare=False)

    @cached_property
    def holdings(self) -> Holdings | None:
        """What the table holds at its newest recorded version (None: the records cannot say)."""
        return replay(self.changes)


class RunLog:
    """The runs table of one namespace.

    :param storage: the lake's storage (writes pass its namespace guard)
    :param path: ``{root}/{namespace}/_runs``
    """

    def __init__(self, storage: Storage, path: str):
        self.storage = storage
        self.path = path
        self._read: tuple[int, Any] | None = None  # (version, rows) last read
        self._opened = None  # the DeltaTable, once it exists
        self._held = False  # answer from the version read, without looking for a newer one

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Answer every question from one version of the records (the first read inside): a
        read-only command that asks about hundreds of tables (``status``) sees one moment of
        the log, and does not look for a new version for each table."""
        before, self._held = self._held, True
        try:
            yield
        finally:
            self._held = before

    def _schema(self):
        import pyarrow as pa

        return pa.schema(
            [
                ("table", pa.string()),
                ("ds", pa.string()),
                ("version", pa.int64()),
                ("metrics", pa.string()),
                ("config", pa.string()),
                ("recorded_at", pa.timestamp("us", tz="UTC")),
                ("partitions", pa.string()),
            ]
        )

    def rows(self):
        """Every record, as an Arrow table (read again only when the log has a new version)."""
        return self._read_now()[0]

    def _read_now(self) -> tuple[Any, dict[str, Recorded]]:
        """The records and what they say of each table, as of the log's newest version."""
        if self._read is not None and self._held:
            return self._read[1]
        opened = self._opened
        if opened is None:
            opened = self._opened = delta.open_table(self.path, self.storage)
        else:
            # the commits since, not the whole log again
            delta.reaching(self.storage, self.path, opened.update_incremental)
        version = opened.version() if opened is not None else -1
        if self._read is None or self._read[0] != version:
            rows = (
                delta.reaching(self.storage, self.path, opened.to_pyarrow_table)
                if opened is not None
                else self._schema().empty_table()
            )
            self._read = (version, (rows, _by_table(rows)))
        return self._read[1]

    def of(self, table: str) -> Recorded:
        """What the runs of ``table`` (its path under the namespace) recorded."""
        return self._read_now()[1].get(table, Recorded())

    def all(self) -> dict[str, Recorded]:
        """:meth:`of` every table that has a record, by table."""
        return dict(sorted(self._read_now()[1].items()))

    def append(
        self,
        table: str,
        version: int,
        *,
        run: tuple[str, dict[str, Any]] | None = None,
        config: dict[str, Any] | None = None,
        partitions: dict[str, Any] | None = None,
    ) -> None:
        """Record a run of ``table`` (its day and metrics), the config it was written with and/or
        what it holds at ``version`` (:func:`pipelines.lake.holdings.change`)."""
        ds, metrics = run if run is not None else (None, None)
        self._append(table, version, [(ds, metrics, config, partitions)])

    def append_all(
        self,
        table: str,
        version: int,
        runs: dict[str, dict[str, Any]],
        config: dict[str, Any] | None = None,
        partitions: dict[str, Any] | None = None,
    ) -> None:
        """Record many runs of ``table`` at one version in one commit (all or none), the config
        and what the table holds with the newest of them (alone when there is no run)."""
        days = sorted(runs)
        records: list[tuple[str | None, dict | None, dict | None, dict | None]] = [
            (ds, runs[ds], *((config, partitions) if ds == days[-1] else (None, None)))
            for ds in days
        ]
        if not records and (config, partitions) != (None, None):
            records = [(None, None, config, partitions)]
        if records:
            self._append(table, version, records)

    def _append(self, table: str, version: int, records: list[tuple]) -> None:
        """Append ``(ds, metrics, config, partitions)`` records of ``table`` at ``version``, in
        one commit."""
        import pyarrow as pa

        now = int(time.time() * 1_000_000)
        columns = {
            "table": [table] * len(records),
            "ds": [r[0] for r in records],
            "version": [version] * len(records),
            "metrics": [_json(r[1], sort_keys=True) for r in records],
            "config": [_json(r[2]) for r in records],
            "recorded_at": [now] * len(records),
            "partitions": [_json(r[3], sort_keys=True) for r in records],
        }
        schema = self._schema()
        arrays = [pa.array(columns[f.name], f.type) for f in schema]
        written = _appended(self.path, self.storage, pa.Table.from_arrays(arrays, schema=schema))
        if written % COMPACT_EVERY == 0:
            delta.compact(self.path, self.storage)

    def holds(self, table: str, version: int) -> bool:
        """Whether a record of ``table`` at ``version`` is there."""
        import pyarrow.compute as pc

        rows = self.rows()
        mine = pc.and_(pc.equal(rows["table"], table), pc.equal(rows["version"], version))
        return bool(pc.any(mine).as_py())

    def vacuum(self, retention_hours: float) -> list[str]:
        """Delete the files no version of the last ``retention_hours`` needs."""
        return delta.vacuum(self.path, self.storage, retention_hours)

    def optimize(self) -> dict:
        """Compact the records' small files."""
        return delta.optimize(self.path, self.storage)

    def forget(self, table: str) -> None:
        """Drop the run records of ``table``, which was emptied to be rebuilt; the config it was
        written with stays recorded (should the rebuild stop, a plan still sees the change)."""
        before = self.of(table)
        delta.delete_where(self.path, self.storage, f"\"table\" = '{_quoted(table)}'")
        if before.config is not None:
            version = int(max(self.rows()["version"].to_pylist(), default=-1))
            self.append(table, version, config=before.config)


def _appended(path: str, storage: Storage, data) -> int:
    """Append ``data`` to the runs table; the new version. A runs table from before a column
    gets it (the older records read null there): the one append that adds it can meet another
    writer's append, and is then tried again."""
    for attempt in range(1, APPEND_TRIES + 1):
        try:
            return delta.append(path, storage, data, merge_schema=True)
        except CommitConflict:
            if attempt == APPEND_TRIES:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _by_table(rows) -> dict[str, Recorded]:
    """Each table's runs (the newest record of each day wins), newest config and what its
    records say it holds, in one pass over the records in the order they were recorded."""
    ordered = rows.sort_by([("version", "ascending"), ("recorded_at", "ascending")])
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    versions: dict[str, dict[str, int]] = {}
    configs: dict[str, Any] = {}
    changes: dict[str, list[tuple[int, str]]] = {}
    names = ("table", "ds", "metrics", "config", "version", "partitions")
    columns = [
        ordered[c].to_pylist() if c in ordered.column_names else [None] * len(ordered)
        for c in names
    ]  # a runs table from before ``partitions`` has none
    for table, ds, metrics, config, version, holds in zip(*columns, strict=True):
        runs.setdefault(table, {})
        if ds is not None and metrics is not None:
            runs[table][ds] = json.loads(metrics)
            versions.setdefault(table, {})[ds] = version
        if config is not None:
            configs[table] = json.loads(config)
        if holds is not None:
            changes.setdefault(table, []).append((version, holds))
    return {
        table: Recorded(
            dict(sorted(days.items())),
            configs.get(table),
            versions.get(table, {}),
            tuple(changes.get(table, ())),
        )
        for table, days in runs.items()
    }


def _json(value: Any, sort_keys: bool = False) -> str | None:
    return json.dumps(value, sort_keys=sort_keys) if value is not None else None


def _quoted(text: str) -> str:
    return text.replace("'", "''")
