"""Measure 2: one big interval ingested and cleaned by the product vs plain pandas and DuckDB.

All three read the same Parquet delivery, keep the latest row per key by the incremental field and
write Hive-partitioned Parquet by the partition field's date, into an empty target each time. The
product runs twice, interleaved: as it is, and with the dataset's ten columns declared
(``columns.yaml``: their types and nine row tests), which may cost at most a fifth more time.
Time is taken inside each child around the work (imports excluded); peak RSS is the child's own
high-water mark, read by the child itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import synth
from bench.measure import DEFAULT_TIMEOUT, BenchError, Sample, median, run_python, side_by_side
from bench.report import Row, at_most, grid, less_than, megabytes, rate, seconds
from bench.sandbox import Sandbox
from bench.sizes import Sizes

DAY = 40  # late updates reach back 30 days, all after the registry's start date
LATE_DAYS = 30
PRODUCT, PANDAS, DUCKDB = "product", "pandas", "DuckDB"
DECLARED = "product, declared"  # the same delivery with its ten columns declared (columns.yaml)
# the columns of an interval's details table (each measure adds its last)
INTERVAL_COLUMNS = ("implementation", "work", "rows/s", "peak RSS", "after imports", "peak / data")
PLAIN = {PANDAS: "bench.workers.plain_pandas", DUCKDB: "bench.workers.plain_duckdb"}


@dataclass(frozen=True)
class ThroughputResult:
    """Medians per implementation: seconds of work, peak RSS, RSS after imports; the interval's
    size."""

    rows: int
    data_bytes: int
    seconds: dict[str, float]
    peak_rss: dict[str, float]
    import_rss: dict[str, float]


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> ThroughputResult:
    """Time the product and both plain scripts on the same delivery, side by side."""
    sandbox = Sandbox(workdir / "throughput").create()
    row = synth.registry_row(synth.ORDERS)
    synth.write_registry(sandbox.include, [row])
    delivery = synth.write_delivery(
        sandbox.include, synth.ORDERS, DAY, sizes.interval_rows, late_days=LATE_DAYS
    )
    twin = declared(workdir / "throughput-declared", row, delivery.path, sandbox.include)
    variants = {PRODUCT: product_runner(sandbox), DECLARED: product_runner(twin)}
    columns = (row["primary_key"], row["incremental_field"], row["partition_field"])
    variants.update(
        {
            name: plain_runner(sandbox, module, delivery.path, columns)
            for name, module in PLAIN.items()
        }
    )
    samples = side_by_side(
        _checked(variants, delivery), sizes.throughput_repeats, warmup=sizes.warmup
    )
    return ThroughputResult(
        rows=delivery.rows,
        data_bytes=synth.in_memory_bytes(delivery.path),
        seconds={name: median(runs, "seconds") for name, runs in samples.items()},
        peak_rss={name: median(runs, "peak_rss") for name, runs in samples.items()},
        import_rss={name: median(runs, "import_rss") for name, runs in samples.items()},
    )


def declared(root: Path, row: dict[str, str], delivery: Path, include: Path) -> Sandbox:
    """A sandbox at ``root`` of the dataset ``row`` with its ten columns declared (types and
    row tests, :func:`synth.declaration`), its source the delivery another sandbox's
    ``include`` holds (a hard link: the same file)."""
    sandbox = Sandbox(root).create()
    synth.write_registry(sandbox.include, [row])
    synth.write_declarations(sandbox.include, [row["dataset"]])
    linked = sandbox.include / delivery.relative_to(include)
    linked.parent.mkdir(parents=True, exist_ok=True)
    linked.hardlink_to(delivery)
    return sandbox


def rows(result: ThroughputResult) -> list[Row]:
    """Time against each plain script and, declared, against itself undeclared; peak RSS
    against the data's size in pandas and against the DuckDB script's peak."""
    speed = {name: result.rows / s for name, s in result.seconds.items()}
    product_s, product_rss = result.seconds[PRODUCT], result.peak_rss[PRODUCT]
    plain_rss = ", ".join(f"{name} {megabytes(result.peak_rss[name])}" for name in PLAIN)
    what = f"{result.rows:,}-row interval"
    product = f"{rate(speed[PRODUCT])} ({seconds(product_s)})"

    def plain(name: str) -> str:
        return f"{name} {rate(speed[name])} ({seconds(result.seconds[name])})"

    return [
        Row(
            f"Throughput, {what}, time vs DuckDB script",
            product,
            plain(DUCKDB),
            product_s / result.seconds[DUCKDB],
            at_most(1.5),
        ),
        Row(
            f"Throughput, {what}, time vs pandas script",
            product,
            plain(PANDAS),
            product_s / result.seconds[PANDAS],
            less_than(1.0),
        ),
        Row(
            f"Declared columns, {what}, time vs undeclared",
            f"{rate(speed[DECLARED])} ({seconds(result.seconds[DECLARED])})",
            f"undeclared {seconds(product_s)}",
            result.seconds[DECLARED] / product_s,
            at_most(1.2),
            "10 columns typed, 9 row tests (columns.yaml)",
        ),
        Row(
            f"Peak RSS, {what} (vs data in memory)",
            megabytes(product_rss),
            f"data {megabytes(result.data_bytes)}",
            product_rss / result.data_bytes,
            at_most(3.0),
        ),
        Row(
            f"Peak RSS, {what} vs the DuckDB script",
            megabytes(product_rss),
            plain_rss,
            product_rss / result.peak_rss[DUCKDB],
            at_most(1.0),
        ),
    ]


def details(result: ThroughputResult) -> str:
    """Median seconds, rows/s and memory per implementation."""
    data = result.data_bytes
    lines = [
        (
            name,
            seconds(s),
            rate(result.rows / s),
            megabytes(result.peak_rss[name]),
            megabytes(result.import_rss[name]),
            f"{result.peak_rss[name] / data:.1f}",
            f"{(result.peak_rss[name] - result.import_rss[name]) / data:.1f}",
        )
        for name, s in result.seconds.items()
    ]
    header = (*INTERVAL_COLUMNS, "(peak - imports) / data")
    return f"Interval of {result.rows:,} rows, {megabytes(data)} in pandas:\n\n" + grid(
        header, lines
    )


def product_runner(
    sandbox: Sandbox,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    env: dict[str, str] | None = None,
    rss_cap: int | None = None,
) -> Callable[[], Sample]:
    """One run of the product's extract + merge of day DAY, on an empty lake (``env``: the
    sandbox's by default)."""
    env = env or sandbox.env()
    ds = synth.day(DAY).isoformat()

    def run() -> Sample:
        sandbox.reset_lake()
        return run_python(
            "bench.workers.product_interval",
            synth.ORDERS,
            ds,
            env=env,
            timeout=timeout,
            rss_cap=rss_cap,
        )

    return run


def plain_runner(
    sandbox: Sandbox,
    module: str,
    source: Path,
    columns: tuple[str, str, str],
    timeout: float = DEFAULT_TIMEOUT,
) -> Callable[[], Sample]:
    """One run of a plain script on ``source``, into an empty folder removed afterwards."""
    env = sandbox.env()
    out = sandbox.root / module.rsplit(".", 1)[-1]

    def run() -> Sample:
        shutil.rmtree(out, ignore_errors=True)
        try:
            return run_python(module, str(source), str(out), *columns, env=env, timeout=timeout)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    return run


def _checked(
    variants: dict[str, Callable[[], Sample]], delivery: synth.Delivery
) -> dict[str, Callable[[], Sample]]:
    """Each run must have read every row and kept exactly one row per key."""
    return {name: checked_run(name, run, delivery) for name, run in variants.items()}


def checked_run(
    name: str, run: Callable[[], Sample], delivery: synth.Delivery
) -> Callable[[], Sample]:
    """``run``, raising :class:`BenchError` unless it read every row and kept one per key."""

    def checked() -> Sample:
        sample = run()
        got = (sample.result["rows_in"], sample.result["rows_out"])
        if got != (delivery.rows, delivery.keys):
            raise BenchError(f"{name}: read/kept {got}, expected {(delivery.rows, delivery.keys)}")
        return sample

    return checked
