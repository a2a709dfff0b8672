"""The engine a step computes in: DuckDB, in process, multi-threaded, bounded in memory.

One connection per step: UTC, ``PIPELINES_MEMORY_LIMIT`` as DuckDB's memory limit, spilling to a
temp folder past it. A version of a lake table is read into it as a view over that version's
files (never a glob of the table's folder: that would read the files of older versions too).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipelines.runtime import environment

if TYPE_CHECKING:
    import duckdb

    from pipelines.lake.tables import Snapshot, Table

BATCH_ROWS = 131_072  # rows per Arrow batch streamed out of DuckDB into a Delta write


@contextlib.contextmanager
def connect(limit: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection bounded by ``limit`` bytes (default: the whole
    ``PIPELINES_MEMORY_LIMIT``; a step that runs delta-rs beside it gives each a share),
    spilling to a temp folder removed afterwards."""
    import duckdb

    limit = environment.memory_limit() if limit is None else limit
    with tempfile.TemporaryDirectory(prefix="pipelines-spill-") as spill:
        con = duckdb.connect(config={"threads": max(1, os.cpu_count() or 1)})
        try:
            run(con, "SET TimeZone = 'UTC'")
            run(con, f"SET memory_limit = '{limit // 2**20}MiB'")
            run(con, f"SET temp_directory = {literal(spill)}")
            run(con, "SET preserve_insertion_order = true")
            yield con
        finally:
            con.close()


def beside_delta() -> int:
    """The memory a step's DuckDB may hold while delta-rs writes or merges beside it: half of
    ``PIPELINES_MEMORY_LIMIT`` (the other half is delta-rs's), one budget for the step."""
    return environment.memory_limit() // 2


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[tuple]:
    """Execute ``sql`` and fetch its whole result (DuckDB 2 refuses the next statement on a
    connection while a result is unfinished)."""
    return con.execute(sql, params or []).fetchall()


def quoted(name: str) -> str:
    """``name`` as a DuckDB identifier (every identifier of a query passes here)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """``text`` as a DuckDB string literal (every text value spliced into a query passes here)."""
    return "'" + text.replace("'", "''") + "'"


def register(
    con: duckdb.DuckDBPyConnection,
    view: str,
    table: Table,
    snapshot: Snapshot,
    partitions: list[str],
    columns: list[str] | None = None,
    position: str | None = None,
) -> None:
    """View ``view``: the rows of ``partitions`` of ``table`` at ``snapshot`` (stored column
    names), the partition column included. Local files are read by DuckDB itself; a table on S3
    through delta-rs's Arrow dataset (DuckDB's S3 extension cannot be downloaded everywhere),
    into a temporary table.

    A file written before a column was added reads it as null, as :meth:`Table.read` does.

    :param position: a column to add, of each row's place in the order :meth:`Table.read` gives
        the rows (partition, then the version's file order, then the row in its file); a local
        table only (the Arrow dataset of a table on S3 numbers no rows)
    """
    key = snapshot.key or table.key
    wanted = set(partitions)
    if not table.storage.remote:
        files = snapshot.local_files(wanted)
        if not files:
            _empty_view(con, view, snapshot, columns, position)
            return
        listed = ", ".join(literal(path) for path, _ in files)
        numbered = "file_row_number = true, " if position is not None else ""
        source = (
            f"read_parquet([{listed}], filename = true, {numbered}"
            "hive_partitioning = false, union_by_name = true)"
        )
        cols = _columns(con, source, columns, position is not None)
        parts = " ".join(f"WHEN {literal(path)} THEN {literal(part)}" for path, part in files)
        if position is not None:
            ordinals = sorted(range(len(files)), key=lambda i: (files[i][1], i))
            rank = " ".join(f"WHEN {literal(files[i][0])} THEN {n}" for n, i in enumerate(ordinals))
            cols += (
                f", (CASE filename {rank} END) * {2**32} + file_row_number AS {quoted(position)}"
            )
        run(
            con,
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {cols}, "
            f"CASE filename {parts} END AS {quoted(key)} FROM {source}",
        )
        return
    if position is not None:
        raise ValueError("a view of a table on S3 has no row positions")
    dataset = snapshot.delta.to_pyarrow_dataset()
    import pyarrow.dataset as ds

    expression = ds.field(key).isin(list(wanted))
    reader = dataset.scanner(
        columns=None if columns is None else [*columns, key], filter=expression
    )
    con.register(f"{view}_arrow", reader.to_reader())
    # a stream is scanned once; the steps read the view several times: read it in once (DuckDB
    # spills it past its memory limit)
    run(con, f"CREATE OR REPLACE TEMP TABLE {view} AS SELECT * FROM {view}_arrow")
    con.unregister(f"{view}_arrow")


def _columns(con, source: str, columns: list[str] | None, numbered: bool) -> str:
    """The select list of ``columns`` (None: every column of the files); a column none of the
    files holds yet is null."""
    if columns is None:
        return "* EXCLUDE (filename, file_row_number)" if numbered else "* EXCLUDE (filename)"
    present = {row[0] for row in run(con, f"DESCRIBE SELECT * FROM {source}")}
    return ", ".join(quoted(c) if c in present else f"NULL AS {quoted(c)}" for c in columns)


def _empty_view(
    con, view: str, snapshot: Snapshot, columns: list[str] | None, position: str | None
) -> None:
    schema = snapshot.schema
    if columns is not None:
        schema = schema.__class__([schema.field(c) for c in [*columns, snapshot.key]])
    con.register(f"{view}_arrow", schema.empty_table())
    extra = f", NULL::BIGINT AS {quoted(position)}" if position is not None else ""
    run(con, f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT *{extra} FROM {view}_arrow")
