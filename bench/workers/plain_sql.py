"""Plain psycopg 3: one interval's rows of a PostgreSQL table, read through a server-side cursor
a chunk at a time, each chunk an Arrow table appended to one Parquet file.

Usage: ``python -m bench.workers.plain_sql URL START END CHUNK OUT``: the rows of
:data:`QUERY` (the bench's ``orders`` table, its schema :data:`SCHEMA` written out by hand)
whose ``updated_at`` is in [START, END) or null, in key order.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import pandas  # noqa: F401 - pyarrow imports it on its first conversion: an import, not work
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from bench.workers.common import measured, report

QUERY = """
SELECT * FROM orders
WHERE (updated_at >= %s AND updated_at < %s) OR updated_at IS NULL
ORDER BY order_id
"""
SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("amount", pa.decimal128(12, 2)),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("note", pa.string()),
    ]
)


def main(url: str, start: str, end: str, chunk: str, out: str) -> None:
    rows = 0
    with (
        measured() as work,
        psycopg.connect(url) as con,
        con.cursor(name="orders") as cursor,
        pq.ParquetWriter(out, SCHEMA) as writer,
    ):
        cursor.execute(QUERY, (start, end))
        while batch := cursor.fetchmany(int(chunk)):
            columns = zip(*batch, strict=True)
            arrays = [pa.array(c, f.type) for c, f in zip(columns, SCHEMA, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA))
            rows += len(batch)
    report(**asdict(work), rows_in=rows)


if __name__ == "__main__":
    main(*sys.argv[1:6])
