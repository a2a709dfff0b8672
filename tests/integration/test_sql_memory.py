"""A database source's extract holds one chunk of rows at a time, not the interval (issue 27).

A real PostgreSQL table (tests/e2e/postgres.py's server, on 127.0.0.1) of ``ROWS`` rows
(``bigint`` key, ``numeric(12,2)``, ``timestamptz``, ``text``), every one updated in one day, is
read by the extract of an incremental ``sql://`` dataset in a child process. The child extracts
a day without rows first (imports, connection, project and Delta table set up: what every run
costs), then the day of the rows, and reports how far that raised its peak RSS (``VmHWM``, read
by the child itself). Read in chunks of ``ROWS / 20`` rows (the default 50,000 of a 1M-row
interval, scaled down), the rise stays under ``BOUND``; read as one chunk
(``PIPELINES_SQL_CHUNK_ROWS`` = the rows: the whole interval in memory at once, as reading the
table whole holds it), it passes ``BOUND``: the bound tells the two apart.

Measured (2026-12-07, load ~7), the rise with chunks against one chunk: 82 against 155 MiB at
200,000 rows (chunks of 10,000: this test); 140 against 683 MiB at 1,000,000 rows (chunks of
50,000, the default). What still grows with the rows read in chunks (82 -> 140 MiB for five
times the rows) is not the chunk: smaller Delta row groups or files saved ~20 MiB of it at 1M
rows, the rest is not attributed. The test takes two children of 5-12 s each (most of it
importing Airflow for the connection); PostgreSQL fills the table in about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.database import FILL, TABLE  # the benchmark's table: one shape of orders
from tests.conftest import write_registry
from tests.e2e import postgres

ROWS = 200_000
CHUNK = ROWS // 20
BOUND = 2**20 * 112  # bytes of peak RSS the rows may add, read in chunks of CHUNK
DAY, EMPTY_DAY = "2024-01-10", "2024-01-09"

CHILD = """
import json, re, sys
from pathlib import Path

import deltalake, psycopg, pyarrow, sqlalchemy
from airflow.providers.postgres.hooks.postgres import PostgresHook
from pipelines.steps.dataset import run_steps

def peak():
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024

empty = run_steps("orders", sys.argv[2], steps=("extract",))["extract"]["rows"]
before = peak()
rows = run_steps("orders", sys.argv[1], steps=("extract",))["extract"]["rows"]
print(json.dumps({"empty": empty, "rows": rows, "rise": peak() - before}))
"""


@pytest.fixture(scope="module")
def database_url() -> str:
    server = postgres.server()
    database = server.create_database()
    server.query(database, TABLE)
    server.query(database, FILL, DAY, ROWS, ROWS)
    server.query(database, "VACUUM ANALYZE public.orders")
    return f"postgresql://{postgres.SUPERUSER}@{postgres.HOST}:{server.port}/{database}"


def extract_rise(home, url: str, chunk: int) -> int:
    """The peak RSS the day's rows add to a child's extract, read ``chunk`` rows at a time."""
    env = {**os.environ, "AIRFLOW_CONN_SRC_DB": url, "PIPELINES_SQL_CHUNK_ROWS": str(chunk)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, DAY, EMPTY_DAY],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert (found["empty"], found["rows"]) == (0, ROWS)
    return found["rise"]


def test_the_extract_holds_a_chunk_of_rows_not_the_interval(home, database_url):
    write_registry(
        home,
        "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date\n"
        "orders,sql://src_db/public.orders,order_id,updated_at,updated_at,incremental,"
        "2024-01-01\n",
    )
    chunked = extract_rise(home, database_url, CHUNK)
    whole = extract_rise(home, database_url, ROWS)
    mib = f"chunks of {CHUNK:,}: {chunked / 2**20:.0f} MiB; one chunk: {whole / 2**20:.0f} MiB"
    assert chunked < BOUND, mib
    assert whole > BOUND, f"the bound does not tell a whole read from a chunked one: {mib}"
