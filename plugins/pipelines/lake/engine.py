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
def connect() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection bounded by ``PIPELINES_MEMORY_LIMIT``, spilling to a temp folder
    removed afterwards."""
    import duckdb

    limit = environment.memory_limit()
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
) -> None:
    """View ``view``: the rows of ``partitions`` of ``table`` at ``snapshot`` (stored column
    names), the partition column included. Local files are read by DuckDB itself; a table on S3
    through delta-rs's Arrow dataset (DuckDB's S3 extension cannot be downloaded everywhere),
    into a temporary table."""
    key = snapshot.key or table.key
    wanted = set(partitions)
    if not table.storage.remote:
        files = snapshot.local_files(wanted)
        if not files:
            _empty_view(con, view, snapshot, columns)
            return
        cols = "* EXCLUDE (filename)" if columns is None else ", ".join(map(quoted, columns))
        listed = ", ".join(literal(path) for path, _ in files)
        parts = " ".join(f"WHEN {literal(path)} THEN {literal(part)}" for path, part in files)
        run(
            con,
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {cols}, "
            f"CASE filename {parts} END AS {quoted(key)} "
            f"FROM read_parquet([{listed}], filename = true, hive_partitioning = false)",
        )
        return
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


def _empty_view(con, view: str, snapshot: Snapshot, columns: list[str] | None) -> None:
    schema = snapshot.schema
    if columns is not None:
        schema = schema.__class__([schema.field(c) for c in [*columns, snapshot.key]])
    con.register(f"{view}_arrow", schema.empty_table())
    run(con, f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {view}_arrow")
