"""The aggregate step's computation in DuckDB: the cleaned partitions a run touched, as a view of
their files, grouped in SQL into the frames the pandas path (:mod:`.aggregate`) gives, value for
value and dtype for dtype.

What SQL states exactly is computed in SQL: ``count``, ``count_distinct``, ``min`` and ``max``
of every kind but float, the ``sum`` of ints (a sum past int64 falls back). pandas sums floats
with Kahan's compensated summation in the order it read the rows, which no DuckDB aggregate
reproduces to the last bit (``fsum`` differed in 18 groups of 50, and the order DuckDB adds
in is not the read's): so the sum of floats, the mean of numbers, and min/max/count_distinct of
floats (NaN) are pandas' own functions over ``(group, value)`` pairs that DuckDB hands over in
read order, two columns instead of the partitions' every column.

What this path does not cover falls back to the pandas path (:func:`changes` says None): a
column missing or not stored in its kind's type (then :func:`transforms.as_kinds` would convert
it), a float group key, a metric of another kind (a sum of text), the row order of a table on
S3 where a metric needs it, a full dataset's partition_field that is null or outside pandas'
nanosecond range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.common import transforms
from pipelines.common.partitions import Ingestion
from pipelines.lake import frames
from pipelines.lake.engine import connect, quoted, register, run
from pipelines.lake.tables import Snapshot, Table
from pipelines.project.aggregates import AggregateSpec
from pipelines.project.registry import Dataset

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

DAY = "dt"
GROUP = "__pipelines_group"
KEY = "__pipelines_key"
POSITION = "__pipelines_position"
SQL_TYPE = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "null": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
}
KEY_KINDS = {"int", "bool", "string", "null", "date", "timestamp"}  # a float key: NaN, -0.0
ORDERED = {  # pandas' own function over the values in read order (floats: Kahan, NaN)
    ("sum", "float"), ("mean", "int"), ("mean", "float"),
    ("min", "float"), ("max", "float"), ("count_distinct", "float"),
}  # fmt: skip
INT64 = (-(2**63), 2**63 - 1)


def _sql(fn: str, kind: str | None, col: str | None) -> tuple[str, str] | None:
    """``(SQL, pandas dtype)`` of a metric SQL computes as pandas does (None: it does not)."""
    if (fn, kind) in ORDERED:
        return None
    if fn == "count":
        return "count(*)", "int64"
    column = quoted(col or "")
    if fn == "count_distinct" and kind in KEY_KINDS:
        return f"count(DISTINCT {column})", "int64"
    if fn in ("min", "max") and kind in KEY_KINDS:
        return f"{fn}({column})", transforms.DTYPES.get(kind, "string")
    if fn == "sum" and kind == "int":
        return f"sum({column})", "Int64"  # HUGEINT: checked to fit before the cast
    return None


def changes(
    spec: AggregateSpec, dataset: Dataset, cleaned: Table, touched: list[str]
) -> tuple[dict[str, pd.DataFrame | None], bool] | None:
    """The aggregate's new partitions from the current cleaned table and whether they replace
    all (as :func:`.aggregate._changes`), or None: the pandas path computes this one."""
    snap = cleaned.snapshot()
    kinds = _kinds(spec, dataset, snap)
    if kinds is None:
        return None
    read, day, replace_all = _RECOMPUTE[dataset.ingestion](dataset, snap, touched)
    ordered = [m for m in spec.metrics if (m[1], kinds.get(m[2] or "")) in ORDERED]
    if ordered and cleaned.storage.remote:
        return None  # the view of a table on S3 has no row order to sum floats in
    with connect() as con:
        columns = sorted(spec.columns | ({dataset.partition_field} if day else set()))
        stored = frames.stored_names(snap.schema)
        register(
            con, "cleaned", cleaned, snap, read, [stored.get(c, c) for c in columns],
            POSITION if ordered else None,
        )  # fmt: skip
        frame = _grouped(con, spec, kinds, snap, day, ordered, columns)
    if frame is None:
        return None
    partitions = touched if not replace_all else sorted(set(frame[DAY]))
    out: dict[str, pd.DataFrame | None] = {}
    for part in partitions:
        rows = frame[frame[DAY] == part].drop(columns=DAY).reset_index(drop=True)
        out[part] = rows if not rows.empty else None
    return out, replace_all


def _kinds(spec: AggregateSpec, dataset: Dataset, snap: Snapshot) -> dict[str, str] | None:
    """The kinds of the columns the aggregate reads, when SQL can read them as pandas would."""
    outputs = set(spec.metric_map)
    if not snap.exists or DAY in spec.columns | outputs or outputs & set(spec.group_by):
        return None  # a column named dt, or an output named as a group_by column
    if len(set(spec.group_by)) != len(spec.group_by):
        return None
    day = dataset.partition_field if dataset.ingestion is Ingestion.FULL else None
    wanted = spec.columns | ({day} if day else set())
    kinds = {c: k for c, k in snap.kinds.items() if c in wanted}
    if set(kinds) != wanted or not all(_stored_as(snap, c, k) for c, k in kinds.items()):
        return None  # a missing column (the pandas path reads it as null), or one as_kinds converts
    if any(kinds[k] not in KEY_KINDS for k in spec.group_by):
        return None
    if day and kinds[day] not in ("date", "timestamp"):
        return None
    for _, fn, col in spec.metrics:
        kind = kinds.get(col or "")
        if _sql(fn, kind, col) is None and (fn, kind) not in ORDERED:
            return None
    return kinds


def _stored_as(snap: Snapshot, column: str, kind: str) -> bool:
    """Whether ``column`` is stored in the Arrow type of ``kind`` (it reads as pandas reads it)."""
    if kind not in SQL_TYPE:
        return False
    field = snap.schema.field(frames.stored_names(snap.schema).get(column, column))
    return field.type == _arrow_type(kind)


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "null": pa.string(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[kind]


def _by_day(dataset: Dataset, snap: Snapshot, touched: list[str]):
    """Incremental: each touched ``dt`` partition of cleaned gives the same ``dt``."""
    return [p for p in touched if p in snap.partitions], None, False


def _from_snapshots(dataset: Dataset, snap: Snapshot, touched: list[str]):
    """Full: the newest snapshot by the date of partition_field, replacing the whole table; or,
    without one, each touched snapshot ``ds`` into ``dt`` = its ``ds``."""
    if dataset.partition_field:
        current = dataset.ingestion.current_partitions(snap.partitions)
        return current, f"strftime({quoted(dataset.partition_field)}, '%Y-%m-%d')", True
    return [p for p in touched if p in snap.partitions], None, False


# the partitions each kind reads, how dt is derived, whether they replace all: the same strategy
# per kind as aggregate._RECOMPUTE, in SQL
_RECOMPUTE = {Ingestion.INCREMENTAL: _by_day, Ingestion.FULL: _from_snapshots}


def _grouped(
    con,
    spec: AggregateSpec,
    kinds: dict[str, str],
    snap: Snapshot,
    day: str | None,
    ordered: list,
    columns: list[str],
) -> pd.DataFrame | None:
    """The grouped rows (``dt``, the group_by columns, the metrics, sorted as pandas sorts its
    groups: nulls last), or None when they would differ from the pandas path's."""
    stored = frames.stored_names(snap.schema)
    typed = [
        f"CAST({quoted(stored.get(c, c))} AS {SQL_TYPE[kinds[c]]}) AS {quoted(c)}" for c in columns
    ]
    typed.append(f"{quoted(snap.key)} AS {KEY}")
    if ordered:
        typed.append(quoted(POSITION))
    run(
        con,
        f"CREATE TEMP VIEW rows AS SELECT {day or KEY} AS {DAY}, * EXCLUDE ({KEY}) "
        f"FROM (SELECT {', '.join(typed)} FROM cleaned)",
    )
    keys = [DAY, *map(quoted, spec.group_by)]
    computed = {out: _sql(fn, kinds.get(col or ""), col) for out, fn, col in spec.metrics}
    sql = {out: found for out, found in computed.items() if found is not None}
    metrics = "".join(f"{found[0]} AS {quoted(out)}, " for out, found in sql.items())
    order = ", ".join(f"{k} NULLS LAST" for k in keys)
    run(
        con,
        f"CREATE TEMP TABLE groups AS SELECT {', '.join(keys)}, {metrics}"
        f"row_number() OVER (ORDER BY {order}) - 1 AS {GROUP} "
        f"FROM rows GROUP BY {', '.join(keys)}",
    )
    sums = sorted(out for out, (_, dtype) in sql.items() if dtype == "Int64")
    if not _exact(con, sums, day is not None):
        return None
    frame = _fetch(con, spec, kinds, {out: found[1] for out, found in sql.items()}, sums)
    if ordered:
        values = _in_read_order(con, spec, kinds, sorted({col for _, _, col in ordered}), snap)
        grouped = values.groupby(GROUP, sort=True)
        for out, fn, col in ordered:  # pandas' own function over the same values, same order
            frame[out] = transforms.METRICS[fn](grouped, col).reset_index(drop=True)
    return frame[[DAY, *spec.group_by, *(m[0] for m in spec.metrics)]]


def _exact(con, sums: list[str], derived_day: bool) -> bool:
    """Whether the SQL results are the pandas path's: each int sum fits int64 (pandas' would
    wrap around), and a day derived from partition_field is neither null nor past pandas'
    nanosecond timestamps (pandas fails on those)."""
    checks = [f"{quoted(out)} NOT BETWEEN {INT64[0]} AND {INT64[1]}" for out in sums]
    if derived_day:
        checks.append(f"{DAY} IS NULL OR {DAY} <= '1677-09-21' OR {DAY} >= '2262-04-11'")
    if not checks:
        return True
    where = " OR ".join(f"({c})" for c in checks)
    return run(con, f"SELECT count(*) FROM groups WHERE {where}")[0][0] == 0


def _fetch(con, spec: AggregateSpec, kinds: dict[str, str], dtypes: dict[str, str], sums):
    """The groups as pandas, each column in the dtype the pandas path gives it."""
    import pyarrow as pa

    casts = ", ".join(f"CAST({quoted(out)} AS BIGINT) AS {quoted(out)}" for out in sums)
    replace = f" REPLACE ({casts})" if casts else ""
    table = con.sql(
        f"SELECT * EXCLUDE ({GROUP}){replace} FROM groups ORDER BY {GROUP}"
    ).to_arrow_table()
    wanted = {
        DAY: "string",
        **{k: transforms.DTYPES.get(kinds[k], "string") for k in spec.group_by},
    }
    wanted.update(dtypes)
    fields = [
        pa.field(f.name, f.type, metadata={frames.DTYPE: wanted[f.name]}) for f in table.schema
    ]
    return frames.to_frame(table.replace_schema_metadata(None).cast(pa.schema(fields)))


def _in_read_order(con, spec: AggregateSpec, kinds, columns: list[str], snap: Snapshot):
    """``columns`` of every row with its group's number, in the order the pandas path reads
    the rows, each column converted as that read converts it."""
    import pyarrow as pa

    on = " AND ".join(
        f"r.{k} IS NOT DISTINCT FROM g.{k}" for k in [DAY, *map(quoted, spec.group_by)]
    )
    picked = ", ".join(f"r.{quoted(c)}" for c in columns)
    rows = con.sql(
        f"SELECT {picked}, g.{GROUP} FROM rows r JOIN groups g ON {on} "
        f"ORDER BY r.{quoted(POSITION)}"
    ).to_arrow_table()
    stored = frames.stored_names(snap.schema)
    fields = [snap.schema.field(stored.get(c, c)).with_name(c) for c in columns]
    values = frames.to_frame(rows.select(columns).cast(pa.schema(fields)))
    values = transforms.as_kinds(values, {c: kinds[c] for c in columns})
    values[GROUP] = rows.column(GROUP).to_numpy()
    return values
