"""The product's merge of one day into a cleaned table already holding N daily partitions, and
its read of one day from a table of N partitions.

Usage: ``python -m bench.workers.history DATASET ROWS_PER_DAY REPEATS WARMUP N [N ...]``.

Each point's lake (its own root) is built directly (:mod:`bench.workers.history_lake`: the
tables N runs of extract + merge would leave, written by a few commits of the product's own
``Table.commit``), after checking that a lake built so for a few days matches the one the
product's real merges write for them. Then, interleaved round by round (an untimed first round
when WARMUP is 1), so drift and warm-up hit every point alike:

- ``pipelines.read`` of the last day's delivery (``raw``, ``as_of``: a dataset's one-day read;
  an incremental cleaned table is read whole) from each table of N partitions;
- after day N is extracted (the product's extract), the product's merge of day N, each from the
  lake as it was before (files the merge wrote removed, files it replaced linked back), the
  disk synced first. Late updates reach back one day, so every timed merge rewrites the same
  amount of data: one new partition and one existing one.

Reports ``merge_s`` and ``read_s`` (``{N: [seconds, ...]}``) and ``build_s`` (``{N: seconds}``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench import synth
from bench.workers import history_lake
from bench.workers.common import report
from pipelines.inspection.reader import read
from pipelines.project.config import Kind, load_project
from pipelines.project.registry import Dataset
from pipelines.steps.dataset import run_steps

LATE_DAYS = history_lake.LATE_DAYS
CHECKED_DAYS = 3  # days merged for real to check the direct build against (2 batches of it)


def main(dataset: str, rows: int, repeats: int, warmup: bool, points: list[int]) -> None:
    home = Path(os.environ["PIPELINES_LAKE"])
    check_build(dataset, rows, home / "check")
    built = {}
    for n in points:
        start = time.perf_counter()
        with lake_at(home / f"lake-{n}"):
            history_lake.build(_dataset(dataset), load_project().lake(), n, rows)
        built[n] = time.perf_counter() - start
    read_s = rounds(points, repeats, warmup, lambda n: timed_read(dataset, n, rows, home))
    saved = {n: extracted(dataset, n, rows, home) for n in points}
    merge_s = rounds(points, repeats, warmup, lambda n: timed_merge(dataset, n, home, saved[n]))
    report(merge_s=merge_s, read_s=read_s, build_s=built)


def rounds(points: list[int], repeats: int, warmup: bool, timed) -> dict[int, list[float]]:
    """``timed(n)`` for every point, round by round; the first round untimed with ``warmup``."""
    timings: dict[int, list[float]] = {n: [] for n in points}
    for round_ in range(repeats + warmup):
        for n in points:
            seconds = timed(n)
            if round_ >= warmup:
                timings[n].append(seconds)
    return timings


def check_build(dataset: str, rows: int, folder: Path) -> None:
    """Build a few days directly, give the product's real extract + merge the deliveries the
    built raw table holds, and stop on any difference between the two lakes."""
    include = Path(os.environ["PIPELINES_HOME"]) / "include"
    spec = _dataset(dataset)
    with lake_at(folder / "built"):
        built = load_project().lake()
        history_lake.build(spec, built, CHECKED_DAYS, rows, batch=2)
    shape = synth.delivery(0, rows, late_days=LATE_DAYS, seed=1).dtypes.astype(str)
    with lake_at(folder / "merged"):
        for index in range(CHECKED_DAYS):
            ds = synth.day(index).isoformat()
            delivery = built.raw(dataset).read_partition(ds).sort_values("_row")
            source = delivery.drop(columns="_row").reset_index(drop=True)
            if dict(source.dtypes.astype(str)) != dict(shape):  # what day N's extract will add
                sys.exit(f"built deliveries: {dict(source.dtypes)}, synth's: {dict(shape)}")
            synth.write_source(include, dataset, index, source)
            run_steps(dataset, ds, steps=("extract", "merge"))
        merged = load_project().lake()
    found = history_lake.differences(spec, merged, built)
    if found:
        sys.exit(
            "the history built directly differs from the one the product's merges write "
            "(bench/workers/history_lake.py must follow the merge):\n  " + "\n  ".join(found)
        )
    shutil.rmtree(folder)


def timed_read(dataset: str, n: int, rows: int, home: Path) -> float:
    """``pipelines.read`` of day N - 1's delivery from the raw table of N partitions."""
    with lake_at(home / f"lake-{n}"):
        start = time.perf_counter()
        got = read(dataset, layer="raw", as_of=synth.day(n - 1).isoformat())
        seconds = time.perf_counter() - start
    if len(got) != rows:
        sys.exit(f"read of day {n - 1} from {n} partitions: {len(got)} rows, expected {rows}")
    return seconds


def extracted(dataset: str, n: int, rows: int, home: Path) -> tuple[Path, dict[str, int]]:
    """Extract day N into the lake of point N, and keep that lake (hard links, with the inode of
    each file) as the state every timed merge starts from."""
    include = Path(os.environ["PIPELINES_HOME"]) / "include"
    lake = home / f"lake-{n}"
    synth.write_delivery(include, dataset, n, rows, late_days=LATE_DAYS, seed=1)
    with lake_at(lake):
        run_steps(dataset, synth.day(n).isoformat(), steps=("extract",))
    copy = lake.with_name(f"{lake.name}.saved")
    shutil.copytree(lake, copy, copy_function=os.link)
    return copy, _files(copy)


def timed_merge(dataset: str, n: int, home: Path, saved: tuple[Path, dict[str, int]]) -> float:
    """Put the lake back as it was before the merge of day N, flush the disk, time the merge."""
    lake = home / f"lake-{n}"
    restore(lake, *saved)
    os.sync()
    with lake_at(lake):
        start = time.perf_counter()
        run_steps(dataset, synth.day(n).isoformat(), steps=("merge",))
        return time.perf_counter() - start


def restore(lake: Path, copy: Path, files: dict[str, int]) -> None:
    """Make ``lake`` hold what ``copy`` holds (``files``: its files and their inodes): files it
    does not hold removed, with the folders they leave empty, its files linked back. Writes are
    renames of new files and deletes unlink, so a file never changes under its name."""
    now = _files(lake)
    for rel, inode in now.items():
        if files.get(rel) != inode:
            (lake / rel).unlink()
    for rel, inode in files.items():
        if now.get(rel) != inode:
            (lake / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(copy / rel, lake / rel)
    folders = {str(Path(rel).parent) for rel in files}
    for folder, _, _ in sorted(os.walk(lake), key=lambda entry: -len(entry[0])):
        rel = os.path.relpath(folder, lake)
        if rel != "." and rel not in folders and not os.listdir(folder):
            os.rmdir(folder)


def _files(root: Path) -> dict[str, int]:
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = os.stat(path).st_ino
    return found


@contextlib.contextmanager
def lake_at(root: Path) -> Iterator[None]:
    """``PIPELINES_LAKE`` set to ``root`` while inside (the product reads it for every lake)."""
    before = os.environ["PIPELINES_LAKE"]
    os.environ["PIPELINES_LAKE"] = str(root)
    try:
        yield
    finally:
        os.environ["PIPELINES_LAKE"] = before


def _dataset(name: str) -> Dataset:
    return load_project().require(name, Kind.DATASET).spec


if __name__ == "__main__":
    dataset, rows, repeats, warmup, *points = sys.argv[1:]
    main(dataset, int(rows), int(repeats), warmup == "1", [int(n) for n in points])
