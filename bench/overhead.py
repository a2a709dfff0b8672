"""Measure 5: the cost of one small run as a process, against importing the Airflow SDK and
against ``airflow dags test`` of the same DAG; and ``pipelines run --airflow`` (the run through
Airflow's ``dag.test()``, when ``pipelines run --help`` offers it) against ``airflow dags test``.

All share one sandbox whose Airflow database was migrated beforehand (untimed); the lake is
emptied before each run. After the first run of each runner, the cleaned table is read back to
check it really holds the interval's rows (untimed).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import synth
from bench.measure import (
    BIN,
    PYTHON,
    BenchError,
    Sample,
    median,
    run_child,
    run_python,
    side_by_side,
)
from bench.report import Row, at_most, grid, less_than, seconds
from bench.sandbox import NAMESPACE, Sandbox
from bench.sizes import Sizes

DAY = 1
PRODUCT, IMPORT, DAGS_TEST = "pipelines run", "import airflow.sdk", "airflow dags test"
VIA_AIRFLOW = "pipelines run --airflow"


@dataclass(frozen=True)
class OverheadResult:
    """Median wall seconds per command (``pipelines run --airflow`` only when it exists), and
    the interval's rows."""

    rows: int
    wall: dict[str, float]


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> OverheadResult:
    """Time the commands side by side in one migrated sandbox."""
    sandbox = Sandbox(workdir / "overhead").create()
    synth.write_project(sandbox.include, [synth.registry_row(synth.ORDERS)])
    delivery = synth.write_delivery(sandbox.include, synth.ORDERS, DAY, sizes.run_rows, late_days=1)
    env = sandbox.env()
    run_child([str(BIN / "airflow"), "db", "migrate"], env)
    ds = synth.day(DAY).isoformat()
    run = [str(BIN / "pipelines"), "run", synth.ORDERS, "--date", ds]
    commands = {
        PRODUCT: run,
        IMPORT: [PYTHON, "-c", "import airflow.sdk"],
        DAGS_TEST: [str(BIN / "airflow"), "dags", "test", f"{NAMESPACE}__{synth.ORDERS}", ds],
    }
    if offers_airflow(env):
        commands[VIA_AIRFLOW] = [*run, "--airflow"]
    variants = {
        name: _runner(sandbox, argv, None if name == IMPORT else delivery.keys)
        for name, argv in commands.items()
    }
    samples = side_by_side(variants, sizes.run_repeats, warmup=sizes.warmup)
    return OverheadResult(delivery.rows, {name: median(runs) for name, runs in samples.items()})


def rows(result: OverheadResult) -> list[Row]:
    """``pipelines run`` against the import floor and against ``airflow dags test``; ``pipelines
    run --airflow`` against ``airflow dags test`` (skipped when there is no such option)."""
    product, floor, peer = (result.wall[name] for name in (PRODUCT, IMPORT, DAGS_TEST))
    what = f"Run one {result.rows}-row interval as a process"
    via = result.wall.get(VIA_AIRFLOW)
    return [
        Row(
            f"{what} vs import floor",
            seconds(product),
            f"`{IMPORT}` {seconds(floor)}",
            product / floor,
            at_most(2.0),
        ),
        Row(
            f"{what} vs airflow dags test",
            seconds(product),
            f"`{DAGS_TEST}` {seconds(peer)}",
            product / peer,
            less_than(1.0),
        ),
        Row(
            f"`{VIA_AIRFLOW}` vs airflow dags test",
            seconds(via) if via is not None else "—",
            f"`{DAGS_TEST}` {seconds(peer)}",
            via / peer if via is not None else None,
            at_most(1.1),
            note="informative: both run the DAG through dag.test()"
            if via is not None
            else "skipped: `pipelines run --help` offers no --airflow",
            skipped=via is None,
        ),
    ]


def offers_airflow(env: Mapping[str, str]) -> bool:
    """Whether ``pipelines run`` takes ``--airflow`` (run through ``dag.test()``)."""
    shown = subprocess.run(
        [str(BIN / "pipelines"), "run", "--help"],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return shown.returncode == 0 and "--airflow" in shown.stdout


def details(result: OverheadResult) -> str:
    """Median wall seconds per command."""
    lines = [(f"`{name}`", seconds(s)) for name, s in result.wall.items()]
    return f"One {result.rows}-row interval, whole process:\n\n" + grid(("command", "wall"), lines)


def _runner(
    sandbox: Sandbox, argv: Sequence[str], expected_rows: int | None
) -> Callable[[], Sample]:
    """Run ``argv`` on an empty lake; after its first run, check the cleaned table's rows."""
    env = sandbox.env()
    checked = expected_rows is None

    def run() -> Sample:
        nonlocal checked
        sandbox.reset_lake()
        sample = run_child(argv, env)
        if not checked:
            _expect_rows(sandbox, argv, expected_rows)
            checked = True
        return sample

    return run


def _expect_rows(sandbox: Sandbox, argv: Sequence[str], expected: int) -> None:
    got = run_python("bench.workers.lake_rows", synth.ORDERS, env=sandbox.env()).result["rows"]
    if got != expected:
        raise BenchError(f"{' '.join(argv)}: cleaned holds {got} rows, expected {expected}")
