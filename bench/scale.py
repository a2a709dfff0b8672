"""Measure 7, apart from the timed run (``python -m bench --only scale``): an interval five times
the large one (50,000,000 rows) through extract + merge, with the product's memory setting at
2 GB (``PIPELINES_MEMORY_LIMIT=2GB`` in the child's environment). It must complete with a peak
RSS of at most 2.5 GiB.

The delivery has the shape of :mod:`bench.throughput`'s (~1 % duplicate keys, ~1 % late updates
over 30 days), generated and written a chunk at a time in a child of its own (chunks share no
key). The product runs once, in a fresh child with a long time-out, stopped should its resident
memory pass twice the target (the machine is shared); a child that dies, times out, is stopped or
keeps the wrong rows makes the rows NO with the reason. Its result goes into its own section of
``bench/RESULTS.md``, which a full run keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import synth
from bench.big_interval import GIB, Outcome, completes, outcome
from bench.measure import run_python
from bench.report import Row, at_most, grid, megabytes, rate, seconds
from bench.sandbox import Sandbox
from bench.sizes import Sizes
from bench.throughput import DAY, LATE_DAYS, PRODUCT, checked_run, product_runner

MEMORY_LIMIT = "2GB"  # the product's setting, in the child's environment
RSS_LIMIT_GIB = 2.5
RSS_CAP = int(2 * RSS_LIMIT_GIB * GIB)  # the child is stopped past it
CHILD_TIMEOUT = 3600.0


@dataclass(frozen=True)
class ScaleResult:
    """The product's outcome on the interval, and the interval's size."""

    rows: int
    data_bytes: int
    generate_s: float
    product: Outcome


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> ScaleResult:
    """Generate the interval a chunk at a time, then run the product on it once."""
    sandbox = Sandbox(workdir / "scale").create()
    synth.write_registry(sandbox.include, [synth.registry_row(synth.ORDERS)])
    generated = run_python(
        "bench.workers.delivery",
        str(sandbox.include),
        synth.ORDERS,
        str(DAY),
        str(sizes.scale_rows),
        str(LATE_DAYS),
        str(sizes.scale_chunk_rows),
        env=sandbox.env(),
        timeout=CHILD_TIMEOUT,
    ).result
    delivery = synth.Delivery(
        Path(generated["path"]), generated["rows"], generated["keys"], generated["new_keys"]
    )
    env = {**sandbox.env(), "PIPELINES_MEMORY_LIMIT": MEMORY_LIMIT}
    run = product_runner(sandbox, CHILD_TIMEOUT, env=env, rss_cap=RSS_CAP)
    product = outcome(checked_run(PRODUCT, run, delivery))
    sandbox.reset_lake()  # gigabytes
    delivery.path.unlink()
    return ScaleResult(
        delivery.rows, int(generated["data_bytes"]), float(generated["seconds"]), product
    )


def rows(result: ScaleResult) -> list[Row]:
    """Completes; peak RSS within the limit."""
    what = f"{result.rows:,}-row interval, PIPELINES_MEMORY_LIMIT={MEMORY_LIMIT}"
    product = result.product
    failed = f"product did not complete: {product.failed}" if product.failed else ""
    return [
        completes(what, product, CHILD_TIMEOUT, failed),
        Row(
            f"Peak RSS, {what}",
            "failed" if product.failed else megabytes(product.peak_rss),
            f"data {megabytes(result.data_bytes)}",
            None if product.failed else product.peak_rss / GIB,
            at_most(RSS_LIMIT_GIB, "GiB"),
            note=failed,
        ),
    ]


def details(result: ScaleResult) -> str:
    """Seconds, rows/s and memory of the product's run (or why it has none)."""
    o = result.product
    line = (
        (PRODUCT, "—", "—", "—", "—", o.failed)
        if o.failed
        else (
            PRODUCT,
            seconds(o.seconds),
            rate(result.rows / o.seconds),
            megabytes(o.peak_rss),
            megabytes(o.import_rss),
            "",
        )
    )
    header = ("implementation", "work", "rows/s", "peak RSS", "after imports", "note")
    return (
        f"Interval of {result.rows:,} rows, {megabytes(result.data_bytes)} in pandas (generated "
        f"and written in {seconds(result.generate_s)}), PIPELINES_MEMORY_LIMIT={MEMORY_LIMIT}; "
        "one run:\n\n" + grid(header, [line])
    )
