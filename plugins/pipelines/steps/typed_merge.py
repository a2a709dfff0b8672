"""The merge of a delivery in DuckDB, streamed into one Delta merge.

A delivery whose columns already have their types (a Parquet source), or a text delivery (a CSV
source) typed in DuckDB by the pandas path's rules (:mod:`.text_merge`), is validated,
deduplicated and quarantined in DuckDB, and its winners stream as Arrow batches into one
``MERGE`` of the cleaned Delta table: no step holds the delivery in pandas, and DuckDB spills to
disk past ``PIPELINES_MEMORY_LIMIT``. The rules are the pandas path's (:mod:`.merge`), stated in
SQL: a null key part or a missing (or, for text, unparseable) incremental/partition field
quarantines the row with the same reason; within the delivery the keys are compared as the
cleaned table holds them (a text delivery's typed first: ``schema.key_kinds``), and the greatest
incremental field wins, then the later row; across deliveries the Delta merge keeps the row with
the greater incremental field, then the later delivery, then the later row (``TIE``), so the
order intervals run in does not matter.

A declared dataset's row tests are ``WHEN``s of the same check (:mod:`.declared_sql`), where
its declaration types no value.

What this path does not do yet falls back to pandas (:func:`plan` or :func:`merge` say None):
the rest of a declaration, JSON Lines, a column whose kind widens or a new column, a Parquet
date-only field, a text delivery into a lake on S3 (a stream of batches is not retried there;
the pandas path's writes are).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.common import transforms
from pipelines.common.partitions import Ingestion, Interval
from pipelines.exceptions import SchemaDriftError
from pipelines.lake import frames
from pipelines.lake.engine import BATCH_ROWS, beside_delta, connect, literal, quoted, register, run
from pipelines.lake.tables import Snapshot, Table, iso_utc
from pipelines.project.registry import Dataset
from pipelines.steps import declared_sql, schema, text_merge

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)
FORMATS = ("parquet", "csv", "sql")  # sql: a database source's typed columns, as Parquet's
SUPERSEDED = "duplicate key in this delivery: superseded by a later version"
ARROW = {"int": "int64", "float": "float64", "bool": "bool_", "string": "string", "null": "string"}
SQL = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "null": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
}


@dataclass
class Typed:
    """What the typed path decided for one delivery before it runs: the cleaned table's kinds."""

    kinds: dict[str, str]  # a text delivery's are sniffed in the merge
    stamps: list[str]
    text: bool = False  # every column is text (CSV), typed in DuckDB by the pandas path's rules
    # a text delivery's, decided in the merge: the kind of each key column that is no stamp,
    # and the columns parsed as timestamps (the stamps, then the timestamp keys)
    keys: dict[str, str] = field(default_factory=dict)
    parsed: list[str] = field(default_factory=list)


@dataclass
class Merged:
    """What the typed path did: the counts, the quarantined rows, the partitions it touched."""

    raw_rows: int = 0
    delivered: int = 0
    superseded: int = 0
    quarantined: pd.DataFrame | None = None
    touched: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None
    kinds: dict[str, str] = field(default_factory=dict)  # the cleaned table's, after the merge


def handles(dataset: Dataset) -> bool:
    """Whether this path can merge the dataset's deliveries at all: incremental, Parquet or CSV,
    with nothing declared that only the pandas path applies (:mod:`.declared_sql`)."""
    return (
        dataset.ingestion is Ingestion.INCREMENTAL
        and dataset.format in FORMATS
        and declared_sql.handles(dataset)
    )


def plan(dataset: Dataset, interval: Interval, raw: Snapshot, base: Snapshot) -> Typed | None:
    """The kinds the cleaned table keeps when the typed path can merge this delivery (None: the
    pandas path merges it)."""
    if not handles(dataset):
        return None
    if raw.schema is None or frames.stored_names(raw.schema):
        return None
    stamps = list(dict.fromkeys([dataset.incremental_field, dataset.partition_field]))
    types = {f.name: f.type for f in raw.schema if not f.name.startswith("_") and f.name != "ds"}
    own = raw.run_metrics(interval.ds).get("columns")
    if own is not None and set(types) - set(own):
        return None  # the delivery lacks a column the raw table has: on_schema_change decides
    if any(c not in types for c in (*dataset.primary_key, *stamps)):
        return None  # the pandas path names the missing column
    if dataset.format == "csv":
        return _plan_text(types, stamps, base)
    delivered = _typed_kinds(types, stamps)
    if delivered is None or not declared_sql.fits(dataset, delivered, types):
        return None
    stored = base.kinds
    if base.exists and (not stored or set(delivered) - set(stored)):
        return None
    kinds = schema.reconcile(stored, delivered, dataset) if stored else delivered
    if stored and kinds != stored:
        return None
    return Typed(kinds, stamps)


def _typed_kinds(types: dict, stamps: list[str]) -> dict[str, str] | None:
    """A typed delivery's kinds (None: a type this path does not take, or a timestamp that is
    not a field it parses)."""
    delivered = {}
    for name, type_ in types.items():
        kind = _kind(type_)
        if kind is None or (name in stamps) != (kind == "timestamp"):
            return None
        delivered[name] = kind
    return delivered


def _plan_text(types: dict, stamps: list[str], base: Snapshot) -> Typed | None:
    """A text delivery: its kinds are sniffed over the winners, in the merge."""
    import pyarrow as pa

    if not all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in types.values()):
        return None
    if base.exists and not base.kinds:
        return None
    return Typed({}, stamps, text=True)


def _kind(type_) -> str | None:
    import pyarrow as pa

    if pa.types.is_integer(type_):
        return "int"
    if pa.types.is_floating(type_):
        return "float"
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_timestamp(type_):
        return "timestamp"
    return None


def merge(
    dataset: Dataset,
    interval: Interval,
    typed: Typed,
    raw: tuple[Table, Snapshot],
    cleaned: tuple[Table, Snapshot],
) -> Merged | None:
    """Merge the raw delivery of ``interval`` into the cleaned table at version ``cleaned[1]``
    (None, before anything is written: a text delivery whose kinds change the table's, or that
    only pandas can type; the pandas path merges it).

    :raises CommitConflict: another writer committed to the cleaned table first
    """
    if typed.text and cleaned[0].storage.remote:
        return None  # a stream is not retried on the object store; the pandas path's write is
    # one budget for the step: DuckDB holds its tables while delta-rs merges the stream
    share = beside_delta()
    with connect(share) as con:
        register(con, "raw", raw[0], raw[1], [interval.ds])
        result = Merged(raw_rows=run(con, "SELECT count(*) FROM raw")[0][0])
        rows = _parse_text(con, dataset, typed, cleaned[1]) if typed.text else "raw"
        _check(con, dataset, typed, rows)
        result.superseded = _rank(con, dataset, typed)
        result.kinds = _text_kinds(con, dataset, typed, cleaned[1]) if typed.text else typed.kinds
        if result.kinds is None:
            return None
        result.quarantined = _quarantined(con, (dataset, interval), raw[1], typed)
        target = _target_schema(result.kinds, cleaned[1])
        _winners(con, dataset, typed, (interval, result.kinds), target)
        result.delivered = run(con, "SELECT count(*) FROM winners")[0][0]
        result.touched = _touched(con, dataset, cleaned)
        reader = _stream(con, target)
        result.snapshot = _commit(dataset, cleaned, reader, result.touched, result.delivered, share)
    return result


def _parse_text(con, dataset: Dataset, typed: Typed, base: Snapshot) -> str:
    """The view of a text delivery with its stamps and timestamp keys parsed
    (``text_merge.parse_fields``), once the kinds of its keys are decided (``typed.keys``)."""
    columns = [c for c in dataset.primary_key if c not in typed.stamps]
    typed.keys = text_merge.key_kinds(con, "raw", columns, schema.stored_kinds(base))
    typed.parsed = [*typed.stamps, *(c for c, k in typed.keys.items() if k == "timestamp")]
    rows = text_merge.parse_fields(con, typed.parsed, dataset.options.epoch)
    for at, column in enumerate(typed.parsed):
        if column in typed.keys and text_merge.unparsed(con, rows, column, at):
            typed.keys[column] = "string"  # shaped as a date and time, and not one
    return rows


def _check(con, dataset: Dataset, typed: Typed, rows: str) -> None:
    """Table ``checked``: the delivery with each key's value as keys are compared (``_k0``,
    ...) and ``_reason`` (null: the row is valid); a declared row test's reason first, as the
    pandas path applies the declaration first."""
    keys = [f"{_key_value(typed, c)} AS _k{at}" for at, c in enumerate(dataset.primary_key)]
    cases = declared_sql.row_tests(dataset, con.sql(f"SELECT * FROM {rows} LIMIT 0").columns)
    for col in dataset.primary_key:
        blank = text_merge.blank(col) if typed.text else f"trim({quoted(col)}::VARCHAR) = ''"
        why = literal(f"{col}: primary key is null")
        cases.append(f"WHEN {quoted(col)} IS NULL OR {blank} THEN {why}")
    for at, col in enumerate(typed.stamps):
        bad = text_merge.helpers(at)["bad"] if typed.text else f"{quoted(col)} IS NULL"
        why = literal(f"{col}: {transforms.UNPARSEABLE}")
        cases.append(f"WHEN {bad} THEN {why}")
    run(
        con,
        f"CREATE TEMP TABLE checked AS SELECT *, {', '.join(keys)}, "
        f"CASE {' '.join(cases)} ELSE NULL END AS _reason FROM {rows}",
    )


def _keys(dataset: Dataset) -> str:
    """The columns of ``checked`` that hold the keys as they are compared."""
    return ", ".join(f"_k{at}" for at in range(len(dataset.primary_key)))


def _stamp(typed: Typed, column: str) -> str:
    """SQL of a parsed field's value (a text delivery's: the column pandas parsed it into)."""
    if typed.text:
        return text_merge.helpers(typed.parsed.index(column))["parsed"]
    return quoted(column)


def _key_value(typed: Typed, column: str) -> str:
    """SQL of a key column's value as keys are compared and the cleaned table holds them."""
    if not typed.text:
        return quoted(column)
    if column in typed.stamps or typed.keys.get(column) == "timestamp":
        return _stamp(typed, column)
    return text_merge.key_value(column, typed.keys[column])


def _rank(con, dataset: Dataset, typed: Typed) -> int:
    """Table ``ranked``: the valid rows whose key occurs more than once, ranked (1 wins: the
    greatest incremental field, then the later row); the number superseded."""
    keys = _keys(dataset)
    inc = _stamp(typed, dataset.incremental_field)
    run(
        con,
        f"CREATE TEMP TABLE clash AS SELECT {keys} FROM checked WHERE _reason IS NULL "
        f"GROUP BY {keys} HAVING count(*) > 1",
    )
    run(
        con,
        "CREATE TEMP TABLE ranked AS SELECT *, row_number() OVER "
        f"(PARTITION BY {keys} ORDER BY {inc} DESC, _row DESC) AS _rn "
        f"FROM checked SEMI JOIN clash USING ({keys}) WHERE _reason IS NULL",
    )
    return run(con, "SELECT count(*) FROM ranked WHERE _rn > 1")[0][0]


def _text_kinds(con, dataset: Dataset, typed: Typed, base: Snapshot) -> dict[str, str] | None:
    """A text delivery's kinds as the pandas path gives the cleaned table (``delivery_kinds``
    over the winners, the keys' decided before, then ``reconcile``); None: the pandas path
    merges it (no winners, a new column or a widened kind, a change it refuses)."""
    keys = _keys(dataset)
    run(
        con,
        "CREATE TEMP VIEW chosen AS SELECT * FROM checked ANTI JOIN clash USING "
        f"({keys}) WHERE _reason IS NULL UNION ALL SELECT * EXCLUDE (_rn) FROM ranked "
        "WHERE _rn = 1",
    )
    if not run(con, "SELECT count(*) FROM chosen")[0][0]:
        return None
    columns = [c for c in con.sql("SELECT * FROM raw LIMIT 0").columns if _is_data(c)]
    guessed = [c for c in columns if c not in typed.stamps and c not in typed.keys]
    sniffed = {**text_merge.kinds(con, "chosen", guessed), **typed.keys}
    delivered = {
        c: sniffed.get(c) or _stamp_kind(con, c, typed.parsed.index(c)) for c in columns
    }  # in the delivery's column order, as delivery_kinds gives them
    stored = base.kinds
    if base.exists and (set(delivered) - set(stored)):
        return None
    try:
        kinds = schema.reconcile(stored, delivered, dataset) if stored else delivered
    except SchemaDriftError:
        return None  # the pandas path raises it, with the same message
    if stored and kinds != stored:
        return None
    parsed = {*typed.stamps, *(c for c, k in typed.keys.items() if k == "timestamp")}
    if any(k in ("date", "timestamp") for c, k in kinds.items() if c not in parsed):
        return None
    return kinds


def _is_data(name: str) -> bool:
    return not name.startswith("_") and name != "ds"


def _stamp_kind(con, column: str, at: int) -> str:
    """A parsed field's kind: ``date`` when the delivery gave dates (``is_date_only``)."""
    return "date" if text_merge.date_only(con, "checked", column, at) else "timestamp"


def _quarantined(con, day: tuple[Dataset, Interval], raw: Snapshot, typed: Typed) -> pd.DataFrame:
    """The invalid rows and the superseded ones, as delivered, with ``_ds`` and ``_reason``."""
    import pyarrow as pa

    dataset, interval = day
    parsed = [n for at in range(len(typed.parsed)) for n in text_merge.helpers(at).values()]
    dropped = ", ".join(["ds", *parsed, *_keys(dataset).split(", ")])
    rows = con.sql(
        f"SELECT * EXCLUDE ({dropped}), ? AS _ds FROM ("
        "SELECT * EXCLUDE (_rn) REPLACE (? AS _reason) FROM ranked WHERE _rn > 1 "
        "UNION ALL BY NAME SELECT * FROM checked WHERE _reason IS NOT NULL)",
        params=[interval.ds, SUPERSEDED],
    ).to_arrow_table()
    stored = {f.name: f for f in raw.schema}
    added = {  # the dtypes the pandas path gives them
        name: pa.field(name, pa.string(), metadata={frames.DTYPE: dtype})
        for name, dtype in (("_ds", "str"), ("_reason", "string"))
    }
    fields = [stored.get(f.name) or added[f.name] for f in rows.schema]
    return frames.to_frame(rows.cast(pa.schema(fields)))


def _arrow_type(kind: str):
    import pyarrow as pa

    if kind == "timestamp":
        return pa.timestamp("us", tz="UTC")
    if kind == "date":
        return pa.date32()
    return getattr(pa, ARROW[kind])()


def _target_schema(kinds: dict[str, str], base: Snapshot) -> pa.Schema:
    """The cleaned table's Arrow schema: as it is, or as the pandas path would create it."""
    import pyarrow as pa

    if base.exists:
        return base.schema
    fields = [
        pa.field(
            name,
            _arrow_type(kind),
            metadata={frames.KIND: kind, frames.DTYPE: transforms.DTYPES.get(kind, "string")},
        )
        for name, kind in kinds.items()
    ]
    bookkeeping = [("_row", pa.int64(), "int64"), ("_ds", pa.string(), "str")]
    fields += [pa.field(n, t, metadata={frames.DTYPE: d}) for n, t, d in bookkeeping]
    return pa.schema([*fields, pa.field("dt", pa.string(), metadata={frames.DTYPE: "str"})])


def _value(typed: Typed, name: str, kind: str | None) -> str:
    """SQL of a delivered column in the cleaned table's kind."""
    if typed.text and name in typed.stamps:
        parsed = _stamp(typed, name)
        return f"{parsed}::DATE" if kind == "date" else parsed
    if typed.text and name in typed.keys:
        return _key_value(typed, name)
    if typed.text:
        return text_merge.converted(name, kind or "string")
    cast = SQL.get(kind, "") if kind else ""
    return f"{quoted(name)}::{cast}" if cast else quoted(name)


def _winners(
    con, dataset: Dataset, typed: Typed, day: tuple[Interval, dict[str, str]], target: pa.Schema
) -> None:
    """Table ``winners``: one row per key, in the cleaned table's columns (a column the delivery
    lacks is null), with ``_ds`` and the partition ``dt``."""
    interval, kinds = day
    keys = _keys(dataset)
    present = set(con.sql("SELECT * FROM raw LIMIT 0").columns)
    columns = []
    for f in target:
        name = f.name
        if name == "_ds":
            columns.append(f"{literal(interval.ds)} AS _ds")
        elif name == "dt":
            part = _stamp(typed, dataset.partition_field)
            columns.append(f"strftime({part}::TIMESTAMPTZ, '%Y-%m-%d') AS dt")
        elif name in present:
            columns.append(f"{_value(typed, name, kinds.get(name))} AS {quoted(name)}")
        else:
            columns.append(f"NULL AS {quoted(name)}")
    select = ", ".join(columns)
    run(
        con,
        f"CREATE TEMP TABLE winners AS SELECT {select} FROM checked "
        f"ANTI JOIN clash USING ({keys}) WHERE _reason IS NULL "
        f"UNION ALL SELECT {select} FROM ranked WHERE _rn = 1",
    )


def _touched(con, dataset: Dataset, cleaned: tuple[Table, Snapshot]) -> list[str]:
    """The partitions the merge changes: the winners' own, and those already holding one of
    their keys (read only where a file's key range can hold one, and only the key columns)."""
    table, base = cleaned
    own = [r[0] for r in run(con, "SELECT DISTINCT dt FROM winners ORDER BY dt")]
    if not base.exists:
        return own
    first = dataset.primary_key[0]
    bounds = f"SELECT min({quoted(first)}), max({quoted(first)}) FROM winners"
    [(lo, hi)] = run(con, bounds)
    ranges = base.key_ranges(first)
    probe = [lo, hi] if lo is not None else []
    candidates = [
        p
        for p in base.partitions
        if p not in own and (p not in ranges or _overlaps(ranges[p], probe))
    ]
    if not candidates:
        return own
    register(con, "target", table, base, candidates, list(dataset.primary_key))
    keys = ", ".join(map(quoted, dataset.primary_key))
    holding = run(con, f"SELECT DISTINCT dt FROM target SEMI JOIN winners USING ({keys})")
    return sorted(set(own) | {r[0] for r in holding})


def _overlaps(stored: tuple, probe: list) -> bool:
    """Whether a file's key range meets the delivery's (True when they cannot be compared)."""
    if not probe:
        return False
    lo, hi = (iso_utc(v) if hasattr(v, "isoformat") else v for v in probe)
    try:
        return not (hi < stored[0] or lo > stored[1])
    except TypeError:  # the key changed kind since that file was written
        return True


def _stream(con, target: pa.Schema) -> pa.RecordBatchReader:
    """The winners as Arrow batches in the cleaned table's exact schema."""
    import pyarrow as pa

    reader = con.sql("SELECT * FROM winners").to_arrow_reader(BATCH_ROWS)
    return pa.RecordBatchReader.from_batches(target, (batch.cast(target) for batch in reader))


def _commit(
    dataset: Dataset,
    cleaned: tuple[Table, Snapshot],
    reader: pa.RecordBatchReader,
    touched: list[str],
    delivered: int,
    memory: int,
) -> Snapshot:
    """Create the cleaned table from the winners, or merge them into it in one commit (which
    may hold ``memory`` bytes before it spills)."""
    from pipelines.lake import delta

    table, base = cleaned
    if not base.exists and not delivered:
        return base  # nothing to create it with (as the pandas path)
    if not base.exists:
        delta.create(table.path, table.storage, reader, key="dt")
        return table.snapshot()
    if not touched:
        return base
    on = " AND ".join(f"t.{_tick(c)} = s.{_tick(c)}" for c in dataset.primary_key)
    parts = ", ".join("'" + p.replace("'", "''") + "'" for p in touched)
    inc = _tick(dataset.incremental_field)
    tie = (  # a rerun's own row (same delivery, same row) replaces it, as in the pandas path
        f"s.{inc} > t.{inc} OR (s.{inc} = t.{inc} AND (s._ds > t._ds OR "
        "(s._ds = t._ds AND s._row >= t._row)))"
    )
    delta.merge(
        table.path,
        table.storage,
        reader,
        base=base.version,
        on=f"{on} AND t.dt IN ({parts})",
        update_when=tie,
        memory=memory,
    )
    return table.snapshot()


def _tick(name: str) -> str:
    """``name`` as an identifier of a delta-rs predicate (unquoted names are lower-cased)."""
    return "`" + name.replace("`", "``") + "`"
