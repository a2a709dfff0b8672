"""Measure: one interval of a database source, read from a real PostgreSQL by the product's
extract against a plain psycopg 3 script reading the same rows.

A throw-away PostgreSQL server (started as the e2e tests start theirs,
:mod:`tests.e2e.postgres`, on 127.0.0.1) holds an ``orders`` table of ``database_rows`` rows
(``bigint`` key, ``numeric(12,2)``, ``timestamptz``, ``text``), every one updated in the
measured day, filled by ``INSERT ... SELECT ... FROM generate_series``. The product runs the
``extract`` step of ``sql://bench_db/public.orders`` (incremental on ``updated_at``): its rows of
the day through the Airflow connection, streamed in chunks of ``PIPELINES_SQL_CHUNK_ROWS``
(50,000, its default, at 1M rows; a twentieth of a smaller table) into the raw Delta table. The
plain script (:mod:`bench.workers.plain_sql`) runs the same SELECT through psycopg 3's
server-side cursor, as many rows at a time, each chunk an Arrow table of a schema written out by
hand, appended to one Parquet file. Both run side by side
(interleaved, medians), imports excluded from their time; peak RSS is each child's own. The
product once more with the whole interval as one chunk (``PIPELINES_SQL_CHUNK_ROWS`` = the
rows) shows what the chunks save. Without PostgreSQL's server binaries the rows are skipped
with a note.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import BenchError, Sample, median, run_python, side_by_side
from bench.report import Row, at_most, grid, less_than, megabytes, rate, seconds
from bench.sandbox import Sandbox
from bench.sizes import Sizes

CONN_ID = "bench_db"
DATASET = "orders"
DAY = dt.date(2024, 1, 10)
CHUNK_ROWS = 50_000  # the product's default PIPELINES_SQL_CHUNK_ROWS: of a 1M-row interval
CHUNKS = 20  # a smaller table is read in as many chunks (rows / 20), by both
PRODUCT, PLAIN, ONE_CHUNK = "product", "psycopg script", "product, one chunk"
TIME_LIMIT = 1.3  # x the plain script
TABLE = """
CREATE TABLE public.orders (
    order_id bigint PRIMARY KEY,
    amount numeric(12, 2) NOT NULL,
    updated_at timestamptz NOT NULL,
    note text
)
"""
# every row updated in the day, in the key's order; a note of 10-40 characters
FILL = """
INSERT INTO public.orders
SELECT i,
       mod(i, 1000000) / 100.0 + 0.05,
       %s::timestamptz + make_interval(secs => i * 86000.0 / %s),
       'order ' || i || repeat('x', mod(i, 25)::int)
FROM generate_series(1, %s) AS i
"""


@dataclass(frozen=True)
class DatabaseResult:
    """Medians per implementation (seconds of work, peak RSS, RSS after imports), the table's
    rows and how long filling it took; ``skipped`` says why there are none."""

    rows: int = 0
    fill_s: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss: dict[str, float] = field(default_factory=dict)
    import_rss: dict[str, float] = field(default_factory=dict)
    skipped: str = ""


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> DatabaseResult:
    """Start a PostgreSQL server, fill its table, time the product and the plain script."""
    import pytest

    from tests.e2e import postgres

    try:
        postgres.find_binaries()
    except pytest.fail.Exception as exc:
        reason = str(exc).split(":")[0]  # no server binaries, and where they were looked for
        return DatabaseResult(sizes.database_rows, skipped=f"{reason}: apt-get install postgresql")
    server = postgres.PostgresServer()
    server.start()
    try:
        database = server.create_database()
        began = time.perf_counter()
        server.query(database, TABLE)
        server.query(database, FILL, DAY.isoformat(), sizes.database_rows, sizes.database_rows)
        server.query(database, "VACUUM ANALYZE public.orders")
        fill_s = time.perf_counter() - began
        url = f"postgresql://{postgres.SUPERUSER}@{postgres.HOST}:{server.port}/{database}"
        sandbox = Sandbox(workdir / "database").create()
        _write_project(sandbox)
        chunk = chunk_rows(sizes.database_rows)
        env = {
            **sandbox.env(),
            f"AIRFLOW_CONN_{CONN_ID.upper()}": url,
            "PIPELINES_SQL_CHUNK_ROWS": str(chunk),
        }
        variants = {PRODUCT: _product(sandbox, env), PLAIN: _plain(sandbox, env, url, chunk)}
        checked = {name: _checked(name, run, sizes.database_rows) for name, run in variants.items()}
        samples = side_by_side(checked, sizes.database_repeats, warmup=sizes.warmup)
        if sizes.database_one_chunk:
            whole = {**env, "PIPELINES_SQL_CHUNK_ROWS": str(sizes.database_rows)}
            run = _checked(ONE_CHUNK, _product(sandbox, whole), sizes.database_rows)
            samples[ONE_CHUNK] = [run()]
        sandbox.reset_lake()
    finally:
        server.stop()
    return DatabaseResult(
        rows=sizes.database_rows,
        fill_s=fill_s,
        seconds={name: median(runs, "seconds") for name, runs in samples.items()},
        peak_rss={name: median(runs, "peak_rss") for name, runs in samples.items()},
        import_rss={name: median(runs, "import_rss") for name, runs in samples.items()},
    )


def chunk_rows(rows: int) -> int:
    """The rows of a chunk, for both: the product's default of a 1M-row interval, 1/20 of a
    smaller one."""
    return max(1, min(CHUNK_ROWS, rows // CHUNKS))


def _write_project(sandbox: Sandbox) -> None:
    """The registry of one dataset reading the server's table, incremental on ``updated_at``."""
    (sandbox.include / "registry.csv").write_text(
        "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date\n"
        f"{DATASET},sql://{CONN_ID}/public.orders,order_id,updated_at,updated_at,incremental,"
        f"{DAY - dt.timedelta(days=9)}\n"
    )


def _product(sandbox: Sandbox, env: dict[str, str]) -> Callable[[], Sample]:
    """One run of the product's extract of DAY, on an empty lake."""

    def run() -> Sample:
        sandbox.reset_lake()
        return run_python("bench.workers.product_sql", DATASET, DAY.isoformat(), env=env)

    return run


def _plain(sandbox: Sandbox, env: dict[str, str], url: str, chunk: int) -> Callable[[], Sample]:
    """One run of the plain script over DAY's rows, into a Parquet file removed afterwards."""
    out = sandbox.root / "plain_sql.parquet"
    start = dt.datetime.combine(DAY, dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)

    def run() -> Sample:
        try:
            return run_python(
                "bench.workers.plain_sql",
                url,
                start.isoformat(),
                end.isoformat(),
                str(chunk),
                str(out),
                env=env,
            )
        finally:
            out.unlink(missing_ok=True)

    return run


def _checked(name: str, run: Callable[[], Sample], rows: int) -> Callable[[], Sample]:
    """``run``, raising :class:`BenchError` unless it read every row of the table."""

    def checked() -> Sample:
        sample = run()
        if sample.result["rows_in"] != rows:
            raise BenchError(f"{name}: read {sample.result['rows_in']} rows, expected {rows}")
        return sample

    return checked


def rows(result: DatabaseResult) -> list[Row]:
    """Time and peak RSS of the product against the plain script."""
    what = f"database source, {result.rows:,} rows from PostgreSQL"
    if result.skipped:
        return [
            Row(
                f"Throughput, {what}, time vs psycopg script",
                "—",
                "—",
                None,
                at_most(TIME_LIMIT),
                result.skipped,
                True,
            ),
            Row(
                f"Peak RSS, {what}, vs psycopg script",
                "—",
                "—",
                None,
                less_than(1.0),
                result.skipped,
                True,
            ),
        ]
    product_s, plain_s = result.seconds[PRODUCT], result.seconds[PLAIN]
    product_rss, plain_rss = result.peak_rss[PRODUCT], result.peak_rss[PLAIN]
    above = {name: result.peak_rss[name] - result.import_rss[name] for name in result.peak_rss}
    whole = (
        f"; in one chunk {megabytes(result.peak_rss[ONE_CHUNK])}"
        if ONE_CHUNK in result.peak_rss
        else ""
    )
    return [
        Row(
            f"Throughput, {what}, time vs psycopg script",
            f"{rate(result.rows / product_s)} ({seconds(product_s)})",
            f"{rate(result.rows / plain_s)} ({seconds(plain_s)})",
            product_s / plain_s,
            at_most(TIME_LIMIT),
            f"both through a server-side cursor, {chunk_rows(result.rows):,} rows a chunk",
        ),
        Row(
            f"Peak RSS, {what}, vs psycopg script",
            megabytes(product_rss) + whole,
            megabytes(plain_rss),
            product_rss / plain_rss,
            less_than(1.0),
            f"above imports {megabytes(above[PRODUCT])} vs {megabytes(above[PLAIN])}: the "
            "product imports Airflow for the connection",
        ),
    ]


def details(result: DatabaseResult) -> str:
    """Seconds, rows/s and memory per implementation."""
    if result.skipped:
        return f"Database source: skipped ({result.skipped})."
    lines = [
        (
            name,
            seconds(s),
            rate(result.rows / s),
            megabytes(result.peak_rss[name]),
            megabytes(result.import_rss[name]),
            megabytes(result.peak_rss[name] - result.import_rss[name]),
        )
        for name, s in result.seconds.items()
    ]
    header = ("implementation", "work", "rows/s", "peak RSS", "after imports", "peak - imports")
    one = (
        f"; {ONE_CHUNK}: PIPELINES_SQL_CHUNK_ROWS={result.rows}, one run"
        if ONE_CHUNK in result.seconds
        else ""
    )
    return (
        f"Database source: a PostgreSQL table of {result.rows:,} rows (filled in "
        f"{seconds(result.fill_s)}), read {chunk_rows(result.rows):,} rows a chunk{one}:\n\n"
        + grid(header, lines)
    )
