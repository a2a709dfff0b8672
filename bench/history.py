"""Measure 4: how the cost of merging one day, and of reading one day, grows with the history
the dataset's tables hold.

One child builds each point's history directly (the Delta tables and run records N runs of
extract + merge leave, written a year a commit through the product's own ``Table.commit``,
checked against real merges first) and times,
at every point, ``pipelines.read`` of one day and the product's merge of one more day (see
:mod:`bench.workers.history`); medians per point are compared with the first point.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from bench import synth
from bench.measure import run_python
from bench.report import Row, at_most, grid, seconds
from bench.sandbox import Sandbox
from bench.sizes import Sizes

MERGE_LIMIT = 1.5  # merge of one day at the most partitions / at the fewest
READ_LIMIT = 1.2  # read of one day at the most partitions / at the fewest


@dataclass(frozen=True)
class HistoryResult:
    """Merge and read seconds, every repeat, at each number of partitions already held; the
    seconds each point's history took to build."""

    points: tuple[int, ...]
    timings: tuple[tuple[float, ...], ...]
    rows_per_day: int
    build_s: float
    reads: tuple[tuple[float, ...], ...]
    built_s: tuple[float, ...]

    @property
    def merge_s(self) -> tuple[float, ...]:
        """The median merge at each point."""
        return tuple(statistics.median(t) for t in self.timings)

    @property
    def read_s(self) -> tuple[float, ...]:
        """The median read at each point."""
        return tuple(statistics.median(t) for t in self.reads)


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> HistoryResult:
    """Build the histories in one child and time the reads and merges at every point."""
    points = sizes.history_points
    sandbox = Sandbox(workdir / "history").create()
    synth.write_registry(sandbox.include, [synth.registry_row(synth.ORDERS)])
    sample = run_python(
        "bench.workers.history",
        synth.ORDERS,
        str(sizes.history_rows),
        str(sizes.history_repeats),
        str(int(sizes.warmup)),
        *map(str, points),
        env=sandbox.env(),
        timeout=1800,
    )
    sandbox.reset_lake()  # gigabytes: not kept to the end of the bench
    figures = sample.result
    return HistoryResult(
        points,
        tuple(tuple(figures["merge_s"][str(n)]) for n in points),
        sizes.history_rows,
        sample.wall,
        tuple(tuple(figures["read_s"][str(n)]) for n in points),
        tuple(float(figures["build_s"][str(n)]) for n in points),
    )


def rows(result: HistoryResult) -> list[Row]:
    """The merge at the most partitions against the merge at the fewest (≤ 1.5; the point
    before it shown beside, for context); the read at the most against the read at the
    fewest (≤ 1.2)."""
    first = result.merge_s[0]
    held = ", ".join(
        f"{n:,}: {seconds(s)}" for n, s in zip(result.points, result.merge_s, strict=True)
    )
    points = list(zip(result.points, result.merge_s, strict=True))[1:][-2:]
    out = [
        Row(
            f"Merge one day ({result.rows_per_day:,} rows) into {n:,} "
            f"partitions vs into {result.points[0]}",
            seconds(merge),
            f"held {held}",
            merge / first,
            at_most(MERGE_LIMIT) if n == result.points[-1] else None,  # context before it
        )
        for n, merge in points
    ]
    read_first, read_last = result.read_s[0], result.read_s[-1]
    out.append(
        Row(
            f"pipelines.read of one day ({result.rows_per_day:,} rows, raw as_of) from "
            f"{result.points[-1]:,} partitions vs from {result.points[0]}",
            seconds(read_last),
            f"from {result.points[0]}: {seconds(read_first)}",
            read_last / read_first,
            at_most(READ_LIMIT),
        )
    )
    return out


def details(result: HistoryResult) -> str:
    """Median merge and read seconds per history size, with the spread of the repeats."""
    first, read_first = result.merge_s[0], result.read_s[0]
    lines = [
        (
            f"{n:,}",
            seconds(built),
            seconds(merge),
            f"{merge / first:.2f}",
            _quartiles(timings),
            seconds(read),
            f"{read / read_first:.2f}",
            _quartiles(reads),
        )
        for n, built, merge, timings, read, reads in zip(
            result.points,
            result.built_s,
            result.merge_s,
            result.timings,
            result.read_s,
            result.reads,
            strict=True,
        )
    ]
    header = (
        "partitions held",
        "built in",
        "merge",
        "vs first",
        "middle half",
        "read one day",
        "vs first",
        "middle half",
    )
    return (
        f"Merge of one {result.rows_per_day:,}-row day, and read of one day's delivery "
        f"(histories built directly, checked against real merges; child ran "
        f"{seconds(result.build_s)}):\n\n" + grid(header, lines)
    )


def _quartiles(timings: tuple[float, ...]) -> str:
    if len(timings) < 4:
        return "—"
    low, _, high = statistics.quantiles(timings, n=4)
    return f"{seconds(low)} – {seconds(high)}"
