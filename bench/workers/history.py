"""The product's merge of one day into a cleaned table already holding N daily partitions.

Usage: ``python -m bench.workers.history DATASET ROWS_PER_DAY REPEATS WARMUP N [N ...]``.

First the history is built day by day with the product itself (extract + merge, untimed); at each
N, after extracting day N, a copy of the lake is kept. Then the merge of day N into each copy is
timed, the points interleaved round by round (an untimed first round when WARMUP is 1), so
drift and warm-up hit every point alike. Each timed merge starts from a restored copy with the
disk synced. Late updates reach back one day, so every timed merge rewrites the same amount of
data: one new partition and one existing one. Reports ``{N: [seconds, ...]}``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from bench import synth
from bench.workers.common import report
from pipelines.steps import run_steps

LATE_DAYS = 1


def main(dataset: str, rows: int, repeats: int, warmup: bool, points: list[int]) -> None:
    lake = Path(os.environ["PIPELINES_LAKE"])
    saved = build(dataset, rows, points, lake)
    timings: dict[int, list[float]] = {n: [] for n in points}
    for round_ in range(repeats + warmup):
        for n in points:
            seconds = timed_merge(dataset, n, lake, saved[n])
            if round_ >= warmup:
                timings[n].append(seconds)
    report(merge_s=timings)


def build(dataset: str, rows: int, points: list[int], lake: Path) -> dict[int, Path]:
    """Run days 0..max(points); keep the lake as it is just before each point's merge."""
    include = Path(os.environ["PIPELINES_HOME"]) / "include"
    saved: dict[int, Path] = {}
    for index in range(max(points) + 1):
        synth.write_delivery(include, dataset, index, rows, late_days=LATE_DAYS, seed=1)
        run_steps(dataset, synth.day(index).isoformat(), steps=("extract",))
        if index in points:
            saved[index] = lake.with_name(f"{lake.name}-{index}")
            shutil.copytree(lake, saved[index])
        run_steps(dataset, synth.day(index).isoformat(), steps=("merge",))
    return saved


def timed_merge(dataset: str, index: int, lake: Path, copy: Path) -> float:
    """Restore the lake from ``copy``, flush the disk, and time the merge of day ``index``."""
    shutil.rmtree(lake)
    shutil.copytree(copy, lake)
    os.sync()
    start = time.perf_counter()
    run_steps(dataset, synth.day(index).isoformat(), steps=("merge",))
    return time.perf_counter() - start


if __name__ == "__main__":
    dataset, rows, repeats, warmup, *points = sys.argv[1:]
    main(dataset, int(rows), int(repeats), warmup == "1", [int(n) for n in points])
