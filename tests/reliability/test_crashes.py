"""Crashes and retries: seeded SIGKILLs of real worker processes doing extract and merge, crashes
at chosen points between writing data and recording it, and Airflow retrying a task that failed
half-way. After every kill, readers see a state an uninterrupted run passes through (never a mix
or a partial file) and a rerun ends with exactly the uninterrupted run's data.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path

import pytest

from tests.reliability import workload
from tests.reliability.kills import (
    STEPS,
    Checker,
    Expected,
    Plan,
    by_partition,
    expect,
    kill_round,
    lost_keys,
    observe,
    unreferenced,
)
from tests.reliability.workload import DAYS, Env, fingerprint, read_table

KILLS = int(os.environ.get("RELIABILITY_KILLS", "100"))
SEED = int(os.environ.get("RELIABILITY_SEED", "20240101"))


@pytest.fixture(scope="module")
def expected(project, session_dir) -> Expected:
    return expect(Env(str(project), str(session_dir / "crash-reference")), DAYS)


def test_sigkill_at_random_points_never_shows_a_mix_and_reruns_are_identical(
    procs, project, expected, fast_dir, figures
):
    rng = random.Random(SEED)
    kills = rounds = leftovers = 0
    while kills < KILLS:
        env = Env(str(project), str(fast_dir / f"round-{rounds}" / "lake"))
        plan = Plan(DAYS, KILLS - kills, max_delay=0.4, workdir=fast_dir / f"round-{rounds}")
        kills += kill_round(procs, env, Checker(expected, figures), rng, plan)
        assert observe(env) == expected.final  # identical to the uninterrupted run
        lost = lost_keys(env, expected.reference)
        figures["lost_rows"] += lost
        assert lost == 0
        leftovers += unreferenced(Path(env.lake))
        rounds += 1
    figures["kills"] += kills
    print(f"{kills} kills in {rounds} rounds; {leftovers} leftover files, ignored by readers")


CRASH_POINTS = {  # where a worker dies: (storage method, path fragment, cleaned committed?)
    "before-raw-manifest": ("create", "/raw/ledger/_log/", False),
    "before-cleaned-manifest": ("create", "/cleaned/ledger/_log/", False),
    "after-cleaned-manifest-before-vacuum": ("delete", "/cleaned/ledger/", True),
    "before-quarantine-manifest": ("create", "/quarantine/ledger/_log/", True),
}


def crash_at(env: Env, method: str, fragment: str, days) -> None:
    """Worker: run extract+merge of the days; die (exit 137, no clean-up) at the crash point."""
    from pipelines.lake import tables as resources

    original = getattr(resources.Storage, method)

    def dying(self, path, *args, **kwargs):
        paths = list(path) if method == "delete" else [path]
        if any(fragment in p for p in paths):
            os._exit(137)
        return original(self, paths if method == "delete" else path, *args, **kwargs)

    setattr(resources.Storage, method, dying)
    workload.run(env, ["ledger"], days, STEPS)


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_crash_between_writing_data_and_recording_it(procs, project, expected, fast_dir, point):
    env = Env(str(project), str(fast_dir / "lake"))
    workload.run(env, ["ledger"], DAYS[:1], STEPS)
    before = fingerprint(read_table(env, "ledger", "cleaned"))
    method, fragment, committed = CRASH_POINTS[point]
    worker = procs.Process(target=crash_at, args=(env, method, fragment, DAYS[1:2]))
    worker.start()
    worker.join()
    assert worker.exitcode == 137
    after_crash = fingerprint(read_table(env, "ledger", "cleaned"))
    states = expected.cleaned["ledger"]
    assert after_crash == (states[2] if committed else before)  # old or new, nothing between
    assert unreferenced(fast_dir / "lake") > 0  # the crash left debris behind
    workload.run(env, ["ledger"], DAYS[1:2], STEPS)  # the rerun
    assert fingerprint(read_table(env, "ledger", "cleaned")) == states[2]
    raw = by_partition(read_table(env, "ledger", "raw"))
    assert raw == {d: expected.partitions["raw.ledger"][d] for d in DAYS[:2]}
    quarantine = by_partition(read_table(env, "ledger", "quarantine"))
    assert quarantine == {d: expected.partitions["quarantine.ledger"][d] for d in DAYS[:2]}


def fail_once(original):
    """``original``, except that its first call fails: the task dies half-way through."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("injected: the worker lost its storage half-way through the task")
        return original(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("task", ["ingest.extract", "clean.merge"])
def test_airflow_retry_after_a_half_way_failure_leaves_no_duplicates(
    airflow_db, project, expected, fast_dir, monkeypatch, task
):
    import pipelines.steps.merge
    from pipelines.lake import tables as resources
    from pipelines.runs.local import load_dag, parsing_only

    monkeypatch.setenv("PIPELINES_HOME", str(project))
    monkeypatch.setenv("PIPELINES_LAKE", str(fast_dir / "lake"))
    monkeypatch.setenv("PIPELINES_TASK_RETRIES", "1")
    if task == "clean.merge":  # cleaned committed, then the task dies before quarantine
        monkeypatch.setattr(
            pipelines.steps.merge,
            "write_quarantine",
            fail_once(pipelines.steps.merge.write_quarantine),
        )
    else:  # raw data file written, then the task dies before its manifest
        monkeypatch.setattr(resources.Storage, "create", fail_once(resources.Storage.create))
    with parsing_only("local__ledger"):
        dag = load_dag("local__ledger")
        for t in dag.tasks:
            assert t.retries == 1
            t.retry_delay = dt.timedelta(0)
        run = dag.test(logical_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert str(run.state) in ("success", "DagRunState.SUCCESS") and tries[task] == 2, tries
    env = Env(str(project), str(fast_dir / "lake"))
    cleaned = read_table(env, "ledger", "cleaned")
    assert cleaned["entry_id"].is_unique
    assert fingerprint(cleaned) == expected.cleaned["ledger"][1]
    quarantine = by_partition(read_table(env, "ledger", "quarantine"))
    assert quarantine == {DAYS[0]: expected.partitions["quarantine.ledger"][DAYS[0]]}
