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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import unquote

from pipelines.exceptions import CommitConflict
from pipelines.lake import damage, delta
from pipelines.lake.holdings import SINCE, Holdings, is_whole, replay
from pipelines.lake.storage import Storage

log = logging.getLogger(__name__)
FOLDER = "_runs"
COMPACT_EVERY = 50  # versions: a reader of the log opens a few files, not one per run
APPEND_TRIES = 5
T = TypeVar("T")
PARTITIONS = "partitions"  # the column of what a table holds (:mod:`.holdings`)


@dataclass(frozen=True)
class Recorded:
    """What the runs of one table recorded: each day's newest metrics (:attr:`runs`), the
    version each left (:attr:`versions`), the newest config, what the table holds
    (:attr:`holdings`). Each is read from the table's records when first asked: a command that
    asks about hundreds of tables (``status``) asks few things of each, and never converts or
    parses the rest.

    :param records: the table's records (Arrow), in the order they were recorded
    """

    records: Any = field(default=None, repr=False, compare=False)

    @cached_property
    def _lists(self) -> dict[str, list[Any]]:
        return {}  # :meth:`_column`'s, by column

    def _column(self, name: str) -> list[Any]:
        """Column ``name`` of the records as a list (None each where a runs table from before
        the column lacks it), converted once: every question below is a loop over these (one
        Arrow compute call costs more than a loop over a table's few hundred records)."""
        columns = self._lists
        if name not in columns:
            rows = self.records
            if rows is None:
                columns[name] = []
            elif name in rows.column_names:
                columns[name] = rows[name].to_pylist()
            else:
                columns[name] = [None] * rows.num_rows
        return columns[name]

    @cached_property
    def _days(self) -> tuple[dict[str, str], dict[str, int]]:
        """Each day's newest metrics (JSON text) and the version its run left."""
        texts: dict[str, str] = {}
        versions: dict[str, int] = {}
        for ds, metrics, version in zip(
            self._column("ds"), self._column("metrics"), self._column("version"), strict=True
        ):
            if ds is not None and metrics is not None:
                texts[ds], versions[ds] = metrics, version
        return texts, versions

    @cached_property
    def runs(self) -> _Days:
        """``{day: metrics}`` of the newest record of each day, by day (each parsed when read)."""
        texts = self._days[0]
        return _Days({d: texts[d] for d in sorted(texts)})

    @cached_property
    def versions(self) -> dict[str, int]:
        """The table's version each day's newest run left, by day."""
        return dict(sorted(self._days[1].items()))

    @cached_property
    def config(self) -> dict[str, Any] | None:
        """The newest config recorded (None: none)."""
        if self.records is None:
            return None
        # a dictionary column: dropping its nulls beats a list of it (1 ms a table)
        configs = self.records["config"].drop_null()
        return json.loads(configs[len(configs) - 1].as_py()) if len(configs) else None

    @cached_property
    def holdings(self) -> Holdings | None:
        """What the table holds at its newest recorded version (None: the records cannot say)."""
        if self.records is None or PARTITIONS not in self.records.column_names:
            return None  # none, or a runs table from before the column
        said = [
            (version, text)
            for version, text in zip(self._column("version"), self._column(PARTITIONS), strict=True)
            if text is not None
        ]
        # the replay starts at the newest whole record: the records before are not parsed
        for start in range(len(said) - 1, -1, -1):
            if SINCE not in said[start][1]:
                first = json.loads(said[start][1])
                if is_whole(first):
                    break
        else:
            start, first = 0, json.loads(said[0][1]) if said else None
        parsed = [first, *_parsed(text for _, text in said[start + 1 :])] if said else []
        return replay(zip((version for version, _ in said[start:]), parsed, strict=True))


class _Days(Mapping[str, dict[str, Any]]):
    """``{day: metrics}`` over the records' JSON texts: a day's parsed when it is first read,
    every day's in one call when all are (a year of a table's runs: one call, not one each)."""

    def __init__(self, texts: dict[str, str]):
        self._texts = texts
        self._parsed: dict[str, dict[str, Any]] = {}

    def __getitem__(self, day: str) -> dict[str, Any]:
        if day not in self._parsed:
            self._parsed[day] = json.loads(self._texts[day])
        return self._parsed[day]

    def __contains__(self, day: object) -> bool:
        return day in self._texts

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def _all(self) -> dict[str, dict[str, Any]]:
        if len(self._parsed) < len(self._texts):
            parsed = _parsed(self._texts.values())
            self._parsed = dict(zip(self._texts, parsed, strict=True))
        return self._parsed

    def items(self):
        return self._all().items()

    def mentioning(self, word: str) -> dict[str, dict[str, Any]]:
        """``{day: metrics}`` of the days whose metrics' text holds ``word``, by day: a question
        about a rare outcome (failed checks) parses those days alone, not a year of them."""
        return {d: self[d] for d, text in self._texts.items() if word in text}

    def values(self):
        return self._all().values()

    def __repr__(self) -> str:
        return repr(self._all())


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
        self._batch: list[dict[str, Any]] | None = None  # records held back by :meth:`batched`

    def forget_read(self) -> None:
        """Read the table afresh at the next question (its log was changed under this reader:
        a repair set entries aside)."""
        self._read = None
        self._opened = None

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

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Append the records made inside in one commit, at the end (also when it ends in an
        error: what was committed is recorded): maintenance records a commit of each of
        hundreds of tables, one append, not one each. They are not read back before then."""
        self._batch = []
        try:
            yield
        finally:
            batch, self._batch = self._batch, None
            if batch:
                self._write(batch)

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
        """Every record, as an Arrow table in the columns' own types (read again only when the
        log has a new version)."""
        rows = self._read_now()[0]
        return rows.cast(_plain(rows.schema, self._schema()))

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
            rows = self._records(opened) if opened is not None else self._schema().empty_table()
            self._read = (version, (rows, _by_table(rows)))
        return self._read[1]

    def _records(self, opened) -> Any:
        """Every record of the version ``opened`` holds. On local disk its files are read
        directly, the config (the same text in most records) kept as a dictionary: delta-rs's
        read of a table builds a dataset (and imports pandas) and spells every config out, most
        of a read-only command's time for a runs table of a year of a hundred datasets."""
        if self.storage.remote:
            return delta.reaching(self.storage, self.path, opened.to_pyarrow_table)
        import pyarrow as pa
        import pyarrow.parquet as pq

        found = damage.data_damage(opened, self.storage, missing=False)  # one cut short
        if found:
            raise found[0].error(self.path)
        pieces = [
            pq.ParquetFile(unquote(uri.removeprefix("file://")), read_dictionary=["config"]).read()
            for uri in opened.file_uris()
        ]
        schema = _plain(self._schema(), self._schema(), dictionary=True)
        return (
            pa.concat_tables([_conformed(p, schema) for p in pieces])
            if pieces
            else (schema.empty_table())
        )

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
        records = _records(runs, config, partitions)
        if records:
            self._append(table, version, records)

    def _append(self, table: str, version: int, records: list[tuple]) -> None:
        """Append ``(ds, metrics, config, partitions)`` records of ``table`` at ``version``, in
        one commit (or with the batch, :meth:`batched`)."""
        rows = _rows(table, version, records)
        if self._batch is not None:
            self._batch.extend(rows)
        else:
            self._write(rows)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """Append ``rows`` (a dict each, by column) in one commit."""
        import pyarrow as pa

        schema = self._schema()
        data = pa.Table.from_pylist(rows, schema=schema)
        written = _appended(self.path, self.storage, data)
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

    def compact(self) -> None:
        """:meth:`optimize`, left for later when a writer appends meanwhile."""
        delta.compact(self.path, self.storage)

    def forget(self, table: str) -> None:
        """Drop the run records of ``table``, which was emptied to be rebuilt; the config it was
        written with stays recorded (should the rebuild stop, a plan still sees the change)."""
        before = self.of(table)
        delta.delete_where(self.path, self.storage, f"\"table\" = '{_quoted(table)}'")
        if before.config is not None:
            version = int(max(self.rows()["version"].to_pylist(), default=-1))
            self.append(table, version, config=before.config)

    def rewrite(
        self,
        table: str,
        version: int,
        runs: dict[str, dict[str, Any]],
        config: dict[str, Any] | None,
        partitions: dict[str, Any],
    ) -> None:
        """Replace every record of ``table`` with ``runs`` at ``version`` (the config and what
        the table holds with the newest), in one commit: a table switched to its rebuilt
        version (``plan --apply``) records the rebuild's runs, never a mix with the old ones."""
        import pyarrow as pa

        records = _records(runs, config, partitions) or [(None, None, None, None)]
        data = pa.Table.from_pylist(_rows(table, version, records), schema=self._schema())
        if delta.open_table(self.path, self.storage) is None:
            _appended(self.path, self.storage, data)
            return
        where = f"\"table\" = '{_quoted(table)}'"
        _tried(lambda: delta.overwrite_where(self.path, self.storage, data, where))


def _records(
    runs: dict[str, dict[str, Any]], config: dict | None, partitions: dict | None
) -> list[tuple[str | None, dict | None, dict | None, dict | None]]:
    """``(ds, metrics, config, partitions)`` records of ``runs``, the config and what the table
    holds with the newest of them (alone when there is no run; none when there is nothing)."""
    days = sorted(runs)
    records = [
        (ds, runs[ds], *((config, partitions) if ds == days[-1] else (None, None))) for ds in days
    ]
    if not records and (config, partitions) != (None, None):
        records = [(None, None, config, partitions)]
    return records


def _rows(table: str, version: int, records: list[tuple]) -> list[dict[str, Any]]:
    """The runs table's rows (a dict each, by column) of ``(ds, metrics, config, partitions)``
    records of ``table`` at ``version``, recorded now."""
    now = int(time.time() * 1_000_000)
    return [
        {
            "table": table,
            "ds": ds,
            "version": version,
            "metrics": _json(metrics, sort_keys=True),
            "config": _json(config),
            "recorded_at": now,
            "partitions": _json(partitions, sort_keys=True),
        }
        for ds, metrics, config, partitions in records
    ]


def _appended(path: str, storage: Storage, data) -> int:
    """Append ``data`` to the runs table; the new version. A runs table from before a column
    gets it (the older records read null there): the one append that adds it can meet another
    writer's append, and is then tried again."""
    return _tried(lambda: delta.append(path, storage, data, merge_schema=True))


def _tried(commit: Callable[[], T]) -> T:
    """``commit()``, tried again (up to :data:`APPEND_TRIES` times) while another writer's
    commit beats it: a record's commit is small, and its rows do not depend on the version."""
    for attempt in range(1, APPEND_TRIES + 1):
        try:
            return commit()
        except CommitConflict:
            if attempt == APPEND_TRIES:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _by_table(rows) -> dict[str, Recorded]:
    """Each table's records, in the order they were recorded (by version, then time): a slice
    of one sort of them all, read only when asked (:class:`Recorded`)."""
    import pyarrow.compute as pc

    if not rows.num_rows:
        return {}
    keys = [("table", "ascending"), ("version", "ascending"), ("recorded_at", "ascending")]
    ordered = rows.sort_by(keys).combine_chunks()
    runs = pc.run_end_encode(ordered["table"].chunk(0))
    found, start = {}, 0
    for table, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        found[table] = Recorded(ordered.slice(start, end - start))
        start = end
    return found


def _parsed(texts) -> list[Any]:
    """The JSON texts ``texts``, parsed in one call (a year of records of a table: one call, not
    one each)."""
    joined = ",".join(texts)
    return json.loads(f"[{joined}]")


def _plain(schema, target, *, dictionary: bool = False):
    """``schema``'s fields in ``target``'s types, the config as a dictionary (``dictionary``)
    or as text."""
    import pyarrow as pa

    kinds = {f.name: f.type for f in target}
    fields = []
    for f in schema:
        kind = kinds.get(f.name, f.type)
        if dictionary and f.name == "config":
            kind = pa.dictionary(pa.int32(), kind)
        fields.append(pa.field(f.name, kind))
    return pa.schema(fields)


def _conformed(piece, schema):
    """One file's records in ``schema`` (a column a file from before it lacks: null)."""
    import pyarrow as pa

    columns = [
        piece[f.name].cast(f.type) if f.name in piece.column_names else pa.nulls(len(piece), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _json(value: Any, sort_keys: bool = False) -> str | None:
    return json.dumps(value, sort_keys=sort_keys) if value is not None else None


def _quoted(text: str) -> str:
    return text.replace("'", "''")
