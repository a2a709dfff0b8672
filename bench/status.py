"""Measure 6: ``pipelines status`` as a whole process (Python's start-up and imports included) on
a lake of N datasets with D daily partitions each (and an aggregate each, and two workflows),
under the 2 s budget; ``pipelines show`` on the same lake beside it.

The lake is built once, untimed, by :mod:`bench.workers.status_lake`: the runs table with every
run record of the history (what status reads each day's counts, checks and landing from, and
what each commit left each table holding), and each table status asks about as a Delta table of
a day's partitions holding one tiny row each, written by the product's own Delta write (opened
only where the records cannot say).
After the first timed run, its table is checked: one row per table, and the late rows and gaps
the synthetic history was given.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.measure import BIN, BenchError, median, run_child, run_python, side_by_side
from bench.report import Row, grid, less_than, seconds
from bench.sandbox import Sandbox
from bench.sizes import Sizes
from bench.workers import status_lake

BUDGET_S = 2.0
PRODUCT, SHOW = "pipelines status", "pipelines show"


@dataclass(frozen=True)
class StatusResult:
    """Median wall seconds per command, and the lake's size."""

    datasets: int
    days: int
    wall: dict[str, float]


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> StatusResult:
    sandbox = Sandbox(workdir / "status").create()
    env = sandbox.env()
    datasets, days = sizes.status_datasets, sizes.status_days
    run_python("bench.workers.status_lake", str(datasets), str(days), env=env)
    now = dt.datetime.combine(status_lake.last_day(days), dt.time(3)) + dt.timedelta(days=1)
    status = [str(BIN / "pipelines"), "status", "--now", now.isoformat()]
    checked = False

    def run_status():
        nonlocal checked
        sample = run_child(status, env)
        if not checked:
            _check(status, env, datasets)
            checked = True
        return sample

    variants = {PRODUCT: run_status, SHOW: lambda: run_child([str(BIN / "pipelines"), "show"], env)}
    samples = side_by_side(variants, sizes.status_repeats, warmup=sizes.warmup)
    return StatusResult(datasets, days, {name: median(runs) for name, runs in samples.items()})


def _check(argv: list[str], env: dict, datasets: int) -> None:
    """The table has a row per table, and finds the gaps and the late rows it was given (a
    dataset's and its aggregate's)."""
    done = subprocess.run(
        argv, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=False
    )
    lines = done.stdout.splitlines()[2:]
    late, gaps = len(status_lake.late(datasets)), len(status_lake.with_gaps(datasets))
    expected = (2 * datasets + min(2, datasets), 2 * late, 2 * gaps)
    found = (
        len(lines),
        sum(line.endswith(", late") for line in lines),
        sum(".." in line for line in lines),
    )
    if done.returncode != 0 or found != expected:
        raise BenchError(
            f"{' '.join(argv)} exited {done.returncode}: (rows, late, with gaps) {found}, "
            f"expected {expected}:\n{(done.stdout + done.stderr)[-2000:]}"
        )


def rows(result: StatusResult) -> list[Row]:
    product, show = result.wall[PRODUCT], result.wall[SHOW]
    return [
        Row(
            f"`pipelines status`, {result.datasets} datasets x {result.days} days "
            "(+ an aggregate each), whole process",
            seconds(product),
            f"`{SHOW}` {seconds(show)}",
            product,
            less_than(BUDGET_S, "s"),
            note="the runs table alone; Python start-up and imports included",
        )
    ]


def details(result: StatusResult) -> str:
    lines = [(f"`{name}`", seconds(s)) for name, s in result.wall.items()]
    return (
        f"`pipelines status` on {result.datasets} datasets x {result.days} daily partitions, "
        "whole process:\n\n" + grid(("command", "wall"), lines)
    )
