"""The master namespace under a real Airflow: only its e2e cookbook is scheduled, replaying one
sample day under the namespace's own lake prefix.

``PIPELINES_NAMESPACE=main`` makes the namespace of kind master (include/namespaces.yaml). Its
e2e cookbook runs on the master schedule (here every minute, not hourly, so the test does not wait
an hour) and its scheduled runs trigger the children for the replayed sample day ``date`` (here the
moved sample's first day) under the run id ``{cookbook dag}__replay__{day}``: every tick re-runs
the same child runs. The dataset and workflow DAGs have no schedule: they run only when the
cookbook triggers them.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse

import pytest
import yaml

from tests.e2e.airflow_stack import AirflowStack, shifted_include

pytestmark = pytest.mark.slow

NS = "main"
PARENT = f"{NS}__cookbook__e2e_test"
DATASETS = (f"{NS}__orders", f"{NS}__customers", f"{NS}__events")
WORKFLOWS = (f"{NS}__workflow__customer_features", f"{NS}__workflow__train_refund_model")
CHILDREN = (*DATASETS, *WORKFLOWS)
EVERY_MINUTE = "* * * * *"
DAY = dt.timedelta(days=1)
TICK_TIMEOUT = 90  # the first scheduled run: the next minute after the unpause, plus slack
RUN_TIMEOUT = 240  # one cookbook run: five children and their trigger tasks, with slack


def _midnight(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Namespace ``main`` over the sample moved to end today; the master schedule every minute,
    replaying the moved sample's first day; the cookbook and its children unpaused."""
    today = dt.datetime.now(dt.UTC).date()
    home = tmp_path_factory.mktemp("airflow-master")
    days = shifted_include(home, today - 3 * DAY)
    # the first day (today - 3, in the past, so Airflow starts the child runs): the replay runs
    # that one day, and customer_features' 3-day window on orders is whole only on the first day
    # (a window missing a day is refused, issue 25)
    replayed = days["2024-01-01"]
    path = home / "include" / "namespaces.yaml"
    config = yaml.safe_load(path.read_text())
    config["master"] = {"cookbook": "e2e_test", "schedule": EVERY_MINUTE, "date": str(replayed)}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    airflow = AirflowStack(home)
    airflow.env["PIPELINES_NAMESPACE"] = NS  # every process start() spawns gets this env
    # each waiting trigger task holds an executor slot: room for three of them and the children
    airflow.env["AIRFLOW__CORE__PARALLELISM"] = "8"
    airflow.replayed = replayed
    try:
        with airflow.stopped_on_sigterm():
            airflow.start()
            airflow.wait_ready([PARENT, *CHILDREN])
            for dag_id in CHILDREN:  # first: a paused child fails the cookbook's trigger task
                airflow.set_paused(dag_id, False)
            airflow.unpaused_at = time.monotonic()
            airflow.set_paused(PARENT, False)
            yield airflow
    finally:
        airflow.stop()


def _scheduled(stack, dag_id: str) -> list[dict]:
    return [r for r in stack.runs(dag_id) if r["run_type"] == "scheduled"]


def _wait_scheduled(stack, count: int, timeout: float) -> dict | None:
    """The ``count``-th scheduled run of the cookbook once the scheduler created it (None after
    ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        runs = sorted(_scheduled(stack, PARENT), key=lambda r: r["run_after"])
        if len(runs) >= count:
            return runs[count - 1]
        time.sleep(1)
    return None


def _child_runs(stack) -> dict[str, list[dict]]:
    return {dag_id: stack.runs(dag_id) for dag_id in CHILDREN}


def _wait_ended(stack, run: dict, timeout: float = RUN_TIMEOUT) -> dict:
    """The cookbook's run once it ended, in whatever state (the checks say what went wrong)."""
    deadline = time.monotonic() + timeout
    path = f"/api/v2/dags/{PARENT}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}"
    while time.monotonic() < deadline:
        stack.check_alive()
        run = stack.api("GET", path)
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(1)
    tasks = stack.task_states(PARENT, run["dag_run_id"])
    raise AssertionError(
        f"{PARENT} {run['dag_run_id']}: {run['state']} after {timeout}s; tasks {tasks}\n"
        f"{stack.logs()}"
    )


def _check_replayed(stack, parent_run: dict, tries: int) -> dict[str, dict]:
    """Each child has one run: the replay's, for the replayed day, succeeded, its tasks at try
    ``tries``; and the parent run succeeded, every task once (verify: the replayed day's checks).

    A run that outlasts the minute tick has the next tick's run waiting; it starts as soon as
    this one ends and clears the same child runs. Each try's outcome is then read from the
    tries Airflow recorded; the children's current states are checked too while no later run of
    the cookbook has started."""
    day = stack.replayed
    child_run = f"{PARENT}__replay__{day}"
    later = [
        r
        for r in _scheduled(stack, PARENT)
        if r["run_after"] > parent_run["run_after"] and r["state"] != "queued"
    ]
    out = {}
    for dag_id, runs in _child_runs(stack).items():
        got = [(r["dag_run_id"], r["logical_date"]) for r in runs]
        assert got == [(child_run, _midnight(day))], (
            f"{dag_id}: runs {got}, expected only the replay of {day} (parent run "
            f"{parent_run['dag_run_id']}, run_type {parent_run['run_type']})"
        )
        [run] = runs
        assert run["run_type"] == "operator_triggered", run
        if not later:
            assert run["state"] == "success", run
            states = stack.task_states(dag_id, child_run)
            assert states and set(states.values()) == {("success", tries)}, (dag_id, states)
        recorded = stack.task_tries(dag_id, child_run)
        outcome = {task: {n: t["state"] for n, t in ts.items()} for task, ts in recorded.items()}
        assert recorded and all(
            ts.get(tries, {}).get("state") == "success" for ts in recorded.values()
        ), (
            dag_id,
            outcome,
        )
        out[dag_id] = recorded
    tasks = stack.task_states(PARENT, parent_run["dag_run_id"])
    assert set(tasks) == {
        *(f"trigger_{d.rsplit('__', 1)[1]}" for d in CHILDREN),
        "verify",
    }, tasks
    assert parent_run["state"] == "success" and set(tasks.values()) == {("success", 1)}, (
        f"{parent_run['dag_run_id']}: {parent_run['state']}, tasks {tasks}\n{stack.logs()}"
    )
    log = _task_log(stack, parent_run["dag_run_id"], "verify")
    for name in ("customer_features", "train_refund_model"):  # it checked the replayed day
        assert f"{name}: workflows ds={day} has" in log, (name, day, log[-3000:])
    return out


def _task_log(stack, run_id: str, task_id: str, try_number: int = 1) -> str:
    run = urllib.parse.quote(run_id)
    path = f"/api/v2/dags/{PARENT}/dagRuns/{run}/taskInstances/{task_id}/logs/{try_number}"
    content = stack.api("GET", f"{path}?full_content=true")["content"]
    return json.dumps(content) if not isinstance(content, str) else content


def test_dataset_and_workflow_dags_have_no_schedule(stack):
    for dag_id in CHILDREN:
        dag = stack.api("GET", f"/api/v2/dags/{dag_id}")
        summary, description = dag["timetable_summary"], dag["timetable_description"]
        print(f"\n{dag_id}: timetable_summary={summary!r} timetable_description={description!r}")
        assert summary in (None, "None"), (dag_id, summary, description)
        assert dag["next_dagrun_run_after"] is None, (dag_id, dag["next_dagrun_run_after"])
        assert {NS, "master"} <= {t["name"] for t in dag["tags"]}, dag["tags"]
    parent = stack.api("GET", f"/api/v2/dags/{PARENT}")
    assert parent["timetable_summary"] == EVERY_MINUTE, parent["timetable_summary"]
    assert parent["next_dagrun_run_after"] is not None, parent


@pytest.fixture(scope="module")
def first_run(stack):
    """The scheduler's first own run of the cookbook, ended."""
    run = _wait_scheduled(stack, 1, TICK_TIMEOUT)
    assert run is not None, (
        f"no scheduled run of {PARENT} {TICK_TIMEOUT}s after the unpause (schedule "
        f"{EVERY_MINUTE!r}): {stack.runs(PARENT)}\n{stack.logs()}"
    )
    created = time.monotonic() - stack.unpaused_at
    ended = _wait_ended(stack, run)
    print(
        f"\nfirst scheduled run {run['dag_run_id']} created {created:.0f}s after the unpause, "
        f"ended ({ended['state']}) after {time.monotonic() - stack.unpaused_at:.0f}s: "
        f"{ended['start_date']} .. "
        f"{ended['end_date']}"
    )
    return ended


def test_the_scheduled_cookbook_replays_the_sample_day(stack, first_run):
    assert first_run["run_type"] == "scheduled"
    _check_replayed(stack, first_run, tries=1)

    lake = stack.home / "lake"
    assert sorted(p.name for p in lake.iterdir()) == [NS], list(lake.iterdir())
    claim = json.loads((lake / NS / "_namespace.json").read_text())
    assert (claim["namespace"], claim["kind"]) == (NS, "master"), claim
    for layer, name in [
        ("raw", "orders"),
        ("cleaned", "orders"),
        ("cleaned", "customers"),
        ("cleaned", "events"),
        ("workflows", "customer_features"),
        ("workflows", "train_refund_model"),
    ]:
        table = lake / NS / layer / name
        assert table.is_dir() and any(table.rglob("*")), f"{table} missing or empty"
    day = str(stack.replayed)
    for name in ("customer_features", "train_refund_model"):  # the replayed day's partition
        assert any(day in str(p) for p in (lake / NS / "workflows" / name).rglob("*")), name


def test_the_next_tick_reruns_the_same_child_runs(stack, first_run):
    waited = time.monotonic()
    second = _wait_scheduled(stack, 2, TICK_TIMEOUT)
    if second is None:
        pytest.skip(f"no second scheduled run {TICK_TIMEOUT}s after the first ended")
    print(f"\nsecond scheduled run {second['dag_run_id']} {time.monotonic() - waited:.0f}s later")
    assert second["dag_run_id"] != first_run["dag_run_id"]
    assert second["logical_date"] > first_run["logical_date"], (first_run, second)
    ended = _wait_ended(stack, second)
    after = _check_replayed(stack, ended, tries=2)  # the same runs cleared, their tasks again
    for dag_id, recorded in after.items():
        for task, ts in recorded.items():  # try 2 ran after try 1 ended: it ran again
            assert ts[2]["start_date"] >= ts[1]["end_date"], (dag_id, task, ts)


def test_no_dataset_or_workflow_dag_was_scheduled(stack, first_run):
    for dag_id in CHILDREN:
        assert _scheduled(stack, dag_id) == [], dag_id
        assert {r["run_type"] for r in stack.runs(dag_id)} == {"operator_triggered"}, dag_id
    assert {r["run_type"] for r in stack.runs(PARENT)} == {"scheduled"}
