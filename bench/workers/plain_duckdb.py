"""Plain DuckDB: read one interval, keep the latest row per key, write Hive-partitioned Parquet.

Usage: ``python -m bench.workers.plain_duckdb SOURCE OUT KEY ORDER PARTITION`` (as
:mod:`bench.workers.plain_pandas`).
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import duckdb

from bench.workers.common import measured, report

LATEST = """
COPY (
    SELECT *, strftime({partition} AT TIME ZONE 'UTC', '%Y-%m-%d') AS ds
    FROM read_parquet(?)
    QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order} DESC) = 1
) TO '{out}' (FORMAT parquet, PARTITION_BY (ds))
"""


def main(source: str, out: str, key: str, order: str, partition: str) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    with measured() as work:
        con.execute(LATEST.format(key=key, order=order, partition=partition, out=out), [source])
    rows_in = con.execute("SELECT count(*) FROM read_parquet(?)", [source]).fetchone()[0]
    rows_out, partitions = con.execute(
        "SELECT count(*), count(DISTINCT ds) FROM read_parquet(?, hive_partitioning = true)",
        [f"{out}/**/*.parquet"],
    ).fetchone()
    report(
        **asdict(work),
        rows_in=rows_in,
        rows_out=rows_out,
        partitions=partitions,
    )


if __name__ == "__main__":
    main(*sys.argv[1:6])
