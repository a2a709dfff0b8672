"""``pipelines status`` stays under its 2 s budget, as a whole process, on the bench's lake of
100 datasets with 365 daily partitions each (and an aggregate each): the runs table's records
(what each commit left each table holding), built by ``bench/workers/status_lake.py``.

The machine is shared and noisy, so the figure is the best of three runs after an untimed one
(which also writes the bytecode: a deployed process does not compile its modules each time), and
the three run while no other test of the suite runs (:func:`tests.alone.alone`: on two cores, a
test beside it starting Airflow's servers took half the machine; the CI of 8657a04 measured
2.87 s there).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.workers import status_lake
from pipelines.lake.lake import Lake
from tests.alone import alone

BUDGET_S = 2.0
DATASETS, DAYS = 100, 365
PIPELINES = Path(sys.executable).parent / "pipelines"


def test_status_of_100_datasets_by_365_days_takes_under_2s(home, tmp_path):
    status_lake.write_project(home / "include", DATASETS)
    status_lake.build(Lake.from_env("local"), DATASETS, DAYS)
    now = dt.datetime.combine(status_lake.last_day(DAYS), dt.time(3)) + dt.timedelta(days=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    argv = [str(PIPELINES), "status", "--now", now.isoformat()]

    def timed() -> tuple[float, str]:
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        return time.perf_counter() - started, done.stdout

    _, out = timed()
    lines = out.splitlines()[2:]
    assert len(lines) == 2 * DATASETS + 2  # a dataset and its aggregate each, two workflows
    late = {line.split()[0] for line in lines if line.endswith(", late")}
    assert late == {n for d in status_lake.late(DATASETS) for n in (d, f"{d}_by_status")}
    with alone():
        best = min(timed()[0] for _ in range(3))
    assert best < BUDGET_S, f"pipelines status took {best:.2f} s (best of 3)"
