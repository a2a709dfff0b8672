"""Measure 3: a ten-times larger interval (10,000,000 rows) through extract + merge, against the
plain DuckDB script on the same input (and plain pandas, when the run has the time for it).

The same synthetic delivery as :mod:`bench.throughput` (same columns, ~1 % duplicate keys, ~1 %
late updates over 30 days), generated and written once in a child of its own, read by every
implementation. Each runs once, without warm-up, in a fresh child with a generous time-out; a
child that dies (out of memory, time-out, an error) or keeps the wrong rows makes its rows say NO
with the reason, and the bench goes on. DuckDB and the product both run at their default settings
(the sandbox passes no ``PIPELINES_MEMORY_LIMIT``): peak RSS ≤ 2 GiB, time ≤ 1.3x DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import synth
from bench.measure import BenchError, ChildFailed, run_python
from bench.report import Row, Target, at_most, grid, megabytes, rate, seconds
from bench.sandbox import Sandbox
from bench.sizes import Sizes
from bench.throughput import (
    DAY,
    DUCKDB,
    INTERVAL_COLUMNS,
    LATE_DAYS,
    PANDAS,
    PLAIN,
    PRODUCT,
    checked_run,
    plain_runner,
    product_runner,
)

CHILD_TIMEOUT = 300.0  # seconds; the product took ~30 s at 10M rows before its rework
RSS_LIMIT_GIB = 2.0  # at the product's default memory setting (no PIPELINES_MEMORY_LIMIT)
TIME_LIMIT = 1.3  # x the DuckDB script
GIB = 2**30


@dataclass(frozen=True)
class Outcome:
    """One implementation's run: its figures, or why it has none."""

    seconds: float | None = None
    peak_rss: float | None = None
    import_rss: float | None = None
    failed: str = ""


@dataclass(frozen=True)
class BigIntervalResult:
    """Every implementation's outcome on the one large interval, and the interval's size."""

    rows: int
    data_bytes: int
    generate_s: float
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> BigIntervalResult:
    """Generate the interval once, then run the product and the plain scripts on it, once each."""
    sandbox = Sandbox(workdir / "big-interval").create()
    row = synth.registry_row(synth.ORDERS)
    synth.write_registry(sandbox.include, [row])
    generated = run_python(
        "bench.workers.delivery",
        str(sandbox.include),
        synth.ORDERS,
        str(DAY),
        str(sizes.big_interval_rows),
        str(LATE_DAYS),
        env=sandbox.env(),
        timeout=1800,
    ).result
    delivery = synth.Delivery(
        Path(generated["path"]), generated["rows"], generated["keys"], generated["new_keys"]
    )
    columns = (row["primary_key"], row["incremental_field"], row["partition_field"])
    variants = {PRODUCT: product_runner(sandbox, CHILD_TIMEOUT)}
    for name in (DUCKDB, PANDAS) if sizes.big_interval_pandas else (DUCKDB,):
        variants[name] = plain_runner(sandbox, PLAIN[name], delivery.path, columns, CHILD_TIMEOUT)
    outcomes = {name: outcome(checked_run(name, run, delivery)) for name, run in variants.items()}
    sandbox.reset_lake()  # gigabytes: not kept to the end of the bench
    return BigIntervalResult(
        delivery.rows, int(generated["data_bytes"]), float(generated["seconds"]), outcomes
    )


def rows(result: BigIntervalResult) -> list[Row]:
    """Completes; peak RSS within the absolute limit; time against the DuckDB script."""
    what = f"{result.rows:,}-row interval"
    product, duckdb = result.outcomes[PRODUCT], result.outcomes[DUCKDB]
    failed = f"product did not complete: {product.failed}" if product.failed else ""
    others = ", ".join(
        f"{name} {_figure(result.outcomes[name], 'seconds')}"
        for name in (DUCKDB, PANDAS)
        if name in result.outcomes
    )
    ratio, note, skipped = None, failed, False
    if duckdb.failed:
        note, skipped = f"DuckDB script did not complete: {duckdb.failed}", True
    elif not product.failed:
        ratio = product.seconds / duckdb.seconds
    return [
        completes(what, product, CHILD_TIMEOUT, failed),
        Row(
            f"Peak RSS, {what}, absolute (default memory setting)",
            _figure(product, "peak_rss"),
            f"data {megabytes(result.data_bytes)}; DuckDB {_figure(duckdb, 'peak_rss')}",
            None if product.failed else product.peak_rss / GIB,
            at_most(RSS_LIMIT_GIB, "GiB"),
            note=failed,
        ),
        Row(
            f"Throughput, {what}, time vs DuckDB script",
            _figure(product, "seconds"),
            others,
            ratio,
            at_most(TIME_LIMIT),
            note=note,
            skipped=skipped,
        ),
    ]


def details(result: BigIntervalResult) -> str:
    """Seconds, rows/s and memory per implementation (or why it has none)."""
    data = result.data_bytes
    lines = [
        (
            name,
            *(
                ("—",) * 5 + (o.failed,)
                if o.failed
                else (
                    seconds(o.seconds),
                    rate(result.rows / o.seconds),
                    megabytes(o.peak_rss),
                    megabytes(o.import_rss),
                    f"{o.peak_rss / data:.1f}",
                    "",
                )
            ),
        )
        for name, o in result.outcomes.items()
    ]
    header = (*INTERVAL_COLUMNS, "note")
    return (
        f"Interval of {result.rows:,} rows, {megabytes(data)} in pandas (generated and written in "
        f"{seconds(result.generate_s)}); one run each, DuckDB at its default settings:\n\n"
        + grid(header, lines)
    )


def outcome(run) -> Outcome:
    """``run``'s figures, or why it has none (it died, timed out, or kept the wrong rows)."""
    try:
        sample = run()
    except ChildFailed as exc:
        return Outcome(failed=exc.reason)
    except BenchError as exc:  # it ran, and kept the wrong rows
        return Outcome(failed=str(exc).splitlines()[0])
    return Outcome(
        sample.get("seconds"), sample.get("peak_rss"), sample.get("import_rss"), failed=""
    )


def completes(what: str, product: Outcome, timeout: float, note: str) -> Row:
    """The row that says whether the product's run of ``what`` completed, and in how long."""
    return Row(
        f"{what} (extract + merge) completes",
        _figure(product, "seconds"),
        f"time-out {timeout:.0f} s",
        None if product.failed else 1.0,
        Target("", 1.0, lambda done, _: bool(done), label="completes"),
        note=note,
    )


def _figure(outcome: Outcome, key: str) -> str:
    if outcome.failed:
        return "failed"
    value = getattr(outcome, key)
    return seconds(value) if key == "seconds" else megabytes(value)
