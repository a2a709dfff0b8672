"""The extract of a database source (``sql://CONN_ID/schema.table`` or a query file), streamed in
chunks from the database into the raw table's ``ds=`` partition.

The statement is built here, never from the registry's text: the table and column names are
checked identifiers (:mod:`pipelines.project.sql_source`) quoted by the connection's SQLAlchemy
dialect, and the interval's bounds are bound parameters (``:start``, ``:end``, UTC instants). A
query file is read as a subquery (it may use ``:start`` and ``:end`` itself, to filter inside a
join). An incremental dataset selects ``start <= field < end`` and the rows whose field is null
(they belong to no interval: kept, as a file's are, for the merge to quarantine); a full dataset
the whole table, the day's snapshot. Rows come in key order (``ORDER BY`` the primary key), so
``_row`` is the same on every read of the same rows.

Rows stream through a server-side cursor (SQLAlchemy's ``yield_per``): one chunk of
``PIPELINES_SQL_CHUNK_ROWS`` rows (default 50,000) is held at a time, whatever the table's size.
(The common SQL provider's ``get_df_by_chunks`` runs a client-side cursor: the driver holds the
whole result before the first chunk.) Each column's type is the database's, from the cursor's
description, never guessed from text (:mod:`.sql_types`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.common.partitions import Ingestion, Interval
from pipelines.exceptions import SchemaDriftError, SourceRefused
from pipelines.lake import delta, frames
from pipelines.lake.tables import Snapshot, Table
from pipelines.project.registry import Dataset
from pipelines.project.sql_source import SqlSource
from pipelines.runtime import databases, environment
from pipelines.steps import sql_types

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import Connection, Dialect

log = logging.getLogger(__name__)

SUBQUERY = "source_rows"
UNDEFINED_COLUMN = "42703"  # SQLSTATE of a column the table does not have


def query_text(dataset: Dataset, source: SqlSource) -> str:
    """The text of a query file under include/, without a trailing ``;``.

    :raises SourceRefused: the file is missing, outside include/ or empty
    """
    include = environment.include_dir().resolve()
    path = (include / source.query).resolve()
    if include not in path.parents:
        raise SourceRefused(
            f"{dataset.name}: query file {source.query!r} resolves outside include/"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SourceRefused(
            f"{dataset.name}: query file include/{source.query} not found"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceRefused(
            f"{dataset.name}: cannot read query file include/{source.query}: {exc}"
        ) from None
    text = text.strip().rstrip(";").strip()
    if not text:
        raise SourceRefused(f"{dataset.name}: query file include/{source.query} is empty")
    return text


def statement(dataset: Dataset, source: SqlSource, dialect: Dialect, *, ordered=True) -> str:
    """The SELECT of the dataset's rows for an interval (``:start``, ``:end`` bound)."""
    quote = dialect.identifier_preparer.quote_identifier
    if source.query is not None:
        rows = f"(\n{query_text(dataset, source)}\n) AS {SUBQUERY}"
    else:
        rows = ".".join(quote(part) for part in source.table)
    sql = f"SELECT * FROM {rows}"  # noqa: S608 - checked identifiers, quoted by the dialect
    if dataset.filtered_source:
        field = quote(dataset.incremental_field)
        sql += f"\nWHERE ({field} >= :start AND {field} < :end) OR {field} IS NULL"
    if ordered:
        sql += "\nORDER BY " + ", ".join(quote(key) for key in dataset.primary_key)
    return sql


def probe(dataset: Dataset, source: SqlSource, dialect: Dialect) -> str:
    """The dataset's statement returning no row: the database checks the table (or query), its
    columns and the interval's comparison, and says the columns (``validate --sources``)."""
    inner = statement(dataset, source, dialect, ordered=False)
    return f"SELECT * FROM (\n{inner}\n) AS probe WHERE 1 = 0"  # noqa: S608 - as statement


def described(dataset: Dataset, interval: Interval) -> list[sql_types.Column]:
    """The columns (names and types) the database says the dataset's statement for ``interval``
    gives, from its :func:`probe` (no row read): ``validate --sources`` and ``infer``.

    A column the incremental filter names that the table lacks fails the probe: the columns are
    then those of the rows alone, for the caller to say which registry column is not among them.

    :raises SourceRefused: no connection, refused login, unknown table, a query the database
        rejects, a query file missing (one line, no password)
    :raises SourceError: the database could not be reached
    """
    import sqlalchemy as sa

    source = dataset.sql
    assert source is not None
    with _connected(source, f"probing {source.query or '.'.join(source.table)}") as (engine, con):
        sql = probe(dataset, source, engine.dialect)
        try:
            result = con.execute(sa.text(sql), bounds(interval))
        except sa.exc.DBAPIError as exc:
            if not dataset.filtered_source or databases.sqlstate(exc) != UNDEFINED_COLUMN:
                raise
            con.rollback()
            rows = replace(dataset, ingestion=Ingestion.FULL)  # the rows alone, unfiltered
            result = con.execute(sa.text(probe(rows, source, engine.dialect)), bounds(interval))
        return sql_types.columns(result.cursor.description, engine.dialect)


@contextmanager
def _connected(source: SqlSource, doing: str, dropped: Sequence[Exception] = ()):
    """``(engine, connection)`` on the source's database, disposed of after; a database error
    inside (or a read's that failed first: ``dropped``) raised as its one line, refused or
    retried (:func:`databases.failure`).

    :param doing: what is being done, for the line (``reading public.orders for 2024-01-01``)
    :param dropped: where a read that failed inside the lake's write of its rows is kept
    """
    import sqlalchemy as sa

    engine = databases.engine(source.conn_id)
    secrets = databases.secrets_of(source.conn_id)
    try:
        with engine.connect() as con:
            yield engine, con
    except sa.exc.StatementError as exc:  # the database's error, or a parameter without a value
        # a read that failed first (closing its lost connection then fails too: "the
        # connection is lost") is what the line says
        said = dropped[0] if dropped else exc
        raise databases.failure(source.conn_id, said, doing=doing, secrets=secrets) from None
    except Exception:
        if not dropped:
            raise
        # the writer wraps what the batches raised (a DeltaError quoting its traceback): the
        # database's own error says what happened, in one line, and whether it may pass
        raise databases.failure(source.conn_id, dropped[0], doing=doing, secrets=secrets) from None
    finally:
        engine.dispose()


def bounds(interval: Interval) -> dict:
    """The interval's bound parameters: UTC instants (a PostgreSQL session is set to UTC, so a
    ``timestamp without time zone`` compares as UTC)."""
    return {"start": interval.start, "end": interval.end}


def extract(
    dataset: Dataset, interval: Interval, table: Table, base: Snapshot
) -> tuple[Snapshot, int, list[str], int]:
    """Replace ``ds=`` of the interval with the rows the database gives, as the version after
    ``base``; the new version, the rows written, the delivery's columns, and the rows whose
    incremental field is null (they belong to no interval; the check counts them as the rows of
    a file left to other intervals).

    :raises SourceRefused: no connection, refused login, unknown table or column (no retry)
    :raises SourceError: the connection failed or dropped (Airflow retries)
    :raises SchemaDriftError: a column the raw table has changed type in the database
    :raises CommitConflict: another writer committed to the raw table first
    """
    import sqlalchemy as sa

    source = dataset.sql
    assert source is not None
    doing = f"reading {source.query or '.'.join(source.table)} for {interval.ds}"
    counts = {"written": 0, "stray": 0}
    dropped: list[Exception] = []  # a read that failed inside the lake's write of the batches
    with _connected(source, doing, dropped) as (engine, con):
        sql = sa.text(statement(dataset, source, engine.dialect))
        chunk = environment.sql_chunk_rows()
        result = _execute(con, sql, bounds(interval), chunk)
        columns = sql_types.columns(result.cursor.description, engine.dialect)
        target = _target(dataset, columns, base)
        added = base.exists and bool(set(target.names) - set(base.schema.names))
        chunks = _chunks(result, chunk, engine.dialect.loaded_dbapi.Error)
        batches = _batches(dataset, chunks, columns, target, interval.ds, counts, dropped)
        delta.replace(
            table.path,
            table.storage,
            batches,
            key="ds",
            partitions=[interval.ds],
            base=base.version if base.exists else None,
            reshape="merge" if added else None,
        )
    names = [c.name for c in columns] + ["_row"]
    return table.snapshot(), counts["written"], names, counts["stray"]


def _execute(con: Connection, sql, params: dict, chunk: int):
    """The statement's result, read through a server-side cursor ``chunk`` rows at a time.

    The ``yield_per`` execution option opens the server-side cursor, but SQLAlchemy does not
    apply it to a ``text()`` statement's result, whose ``partitions()`` would then fetch every
    row at once: the result's own ``yield_per`` sets the size of its partitions.
    """
    return con.execution_options(yield_per=chunk).execute(sql, params).yield_per(chunk)


def _chunks(result, chunk: int, driver_error: type[Exception]) -> Iterator[Sequence]:
    """The result's rows, ``chunk`` at a time (the last one shorter, or none).

    The first chunk comes through SQLAlchemy's ``fetchmany``, which hands over the row it read
    ahead (to see that the statement returns rows) and leaves its buffer empty; the next ones
    straight from the server-side cursor, as the driver's tuples. (SQLAlchemy's
    ``partitions()`` passes every row through a buffer and wraps it in a ``Row``: a quarter of
    the extract's time at 1M rows.) A driver's error is raised as SQLAlchemy raises it, a
    ``DBAPIError`` around it, for :func:`databases.failure`.
    """
    import sqlalchemy as sa

    cursor = result.cursor
    rows = result.fetchmany(chunk)
    if len(rows) < chunk:  # all of them: SQLAlchemy may have closed the cursor
        if rows:
            yield rows
        return
    while rows:
        yield rows
        try:
            rows = cursor.fetchmany(chunk)
        except driver_error as exc:
            raise sa.exc.DBAPIError.instance(None, None, exc, driver_error) from None


def _target(dataset: Dataset, columns: list[sql_types.Column], base: Snapshot) -> pa.Schema:
    """The raw table's schema once this delivery is written: the database's columns, ``_row``
    and ``ds``; a column the table has and the delivery lacks stays (null in it), one it lacks
    is added.

    :raises SchemaDriftError: a column the table has comes in another type
    """
    import pyarrow as pa

    fields = [pa.field(c.name, c.type, nullable=True) for c in columns]
    fields += [pa.field("_row", pa.int64(), nullable=True), pa.field("ds", pa.string())]
    delivered = pa.schema(fields)
    if not base.exists:
        return delivered
    merged, changed = frames.unify(base.schema, delivered)
    if changed:
        had = {f.name: f.type for f in base.schema}
        moved = [
            f"{f.name} ({had[f.name]} -> {f.type})"
            for f in delivered
            if f.name in had and f.type != had[f.name]
        ]
        raise SchemaDriftError(
            f"{dataset.name}: the database's type of {', '.join(moved)} is not the one the "
            "raw table holds (one type per column, on every day): read the column in its "
            "old type through a query file (sql://CONN_ID/queries/NAME.sql, with a CAST)"
        )
    return merged


def _batches(
    dataset: Dataset,
    chunks: Iterator[Sequence],
    columns: list[sql_types.Column],
    target: pa.Schema,
    ds: str,
    counts: dict[str, int],
    dropped: list[Exception],
) -> pa.RecordBatchReader:
    """The chunks of rows as batches of the target schema, with ``_row`` (their position in the
    key order) and ``ds``; the rows written and those with a null incremental field counted; a
    database error while reading kept in ``dropped`` (the writer reading the batches wraps it)."""
    import pyarrow as pa
    import sqlalchemy as sa

    field = dataset.incremental_field if dataset.filtered_source else None
    at = next((i for i, c in enumerate(columns) if c.name == field), None)
    positions = {c.name: i for i, c in enumerate(columns)}

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from converted()
        except sa.exc.StatementError as exc:
            dropped.append(exc)
            raise

    def converted() -> Iterator[pa.RecordBatch]:
        offset = 0
        for rows in chunks:
            arrays = sql_types.arrays(rows, columns)
            count = len(rows)
            if at is not None:
                counts["stray"] += arrays[at].null_count
            full = []
            for f in target:
                if f.name == "_row":
                    full.append(pa.array(range(offset, offset + count), pa.int64()))
                elif f.name == "ds":
                    full.append(pa.array([ds] * count, pa.string()))
                elif f.name in positions:
                    full.append(arrays[positions[f.name]].cast(f.type))
                else:  # a column of earlier deliveries the database no longer gives
                    full.append(pa.nulls(count, f.type))
            offset += count
            counts["written"] = offset
            yield pa.RecordBatch.from_arrays(full, schema=target)
            log.info("%s: %s rows read from the database", dataset.name, offset)

    return pa.RecordBatchReader.from_batches(target, batches())


def query_file(dataset: Dataset) -> Path | None:
    """The query file a database source reads (None: it reads a table)."""
    source = dataset.sql
    if source is None or source.query is None:
        return None
    return environment.include_dir() / source.query
