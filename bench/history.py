"""Measure 3: how the cost of merging one day grows with the history the cleaned table holds.

One child builds the history with the product and times merges at each point (see
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


@dataclass(frozen=True)
class HistoryResult:
    """Merge seconds, every repeat, at each number of partitions already held."""

    points: tuple[int, ...]
    timings: tuple[tuple[float, ...], ...]
    rows_per_day: int
    build_s: float

    @property
    def merge_s(self) -> tuple[float, ...]:
        """The median at each point."""
        return tuple(statistics.median(t) for t in self.timings)


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> HistoryResult:
    """Build the history in one child and time the merges at every point."""
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
    timings = tuple(tuple(sample.result["merge_s"][str(n)]) for n in points)
    return HistoryResult(points, timings, sizes.history_rows, sample.wall)


def rows(result: HistoryResult) -> list[Row]:
    """The merge at the most partitions against the merge at the fewest."""
    first, last = result.merge_s[0], result.merge_s[-1]
    held = ", ".join(
        f"{n}: {seconds(s)}" for n, s in zip(result.points, result.merge_s, strict=True)
    )
    return [
        Row(
            f"Merge one day ({result.rows_per_day:,} rows) into {result.points[-1]} "
            f"partitions vs into {result.points[0]}",
            seconds(last),
            f"held {held}",
            last / first,
            at_most(1.2),
        )
    ]


def details(result: HistoryResult) -> str:
    """Median merge seconds per history size, with the spread of the repeats."""
    first = result.merge_s[0]
    lines = [
        (str(n), seconds(median), f"{median / first:.2f}", _quartiles(timings))
        for n, median, timings in zip(result.points, result.merge_s, result.timings, strict=True)
    ]
    return (
        f"Merge of one {result.rows_per_day:,}-row day (history built in "
        f"{seconds(result.build_s)}):\n\n"
        + grid(("partitions held", "merge", "vs first", "middle half of repeats"), lines)
    )


def _quartiles(timings: tuple[float, ...]) -> str:
    if len(timings) < 4:
        return "—"
    low, _, high = statistics.quantiles(timings, n=4)
    return f"{seconds(low)} – {seconds(high)}"
