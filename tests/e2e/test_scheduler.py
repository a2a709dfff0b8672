"""The product under a real Airflow: api-server, scheduler (LocalExecutor) and dag-processor.

The sample is moved in time so that its four days end today (D1..D4 = today-3..today): the
scheduler's own catchup then creates three runs of orders and events (D1..D3), not one per day
since 2024. ``customers`` starts today (no scheduled run before tomorrow), so the cookbook runs
for D4, which no scheduled run holds yet. ``orders_api`` (orders' row under another name, also
starting today, in no cookbook) gives the client a date that no other run holds. ``orders_late``
(orders' row from D2, its delivery for D2 withheld at first) and the workflow ``late_features`` on
it give a window missing a day. ``orders_db`` (from D2) reads a PostgreSQL table through a
connection made with ``airflow connections add``; the table is updated between its two days'
reads (tests/e2e/sql_orders.py). Airflow does not start a run whose logical date is in the
future, so every date here is today or earlier.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
import urllib.parse

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.inspection.reader import read
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project
from pipelines.steps.dataset import run_steps
from tests.conftest import data_columns
from tests.e2e import sql_orders
from tests.e2e.airflow_stack import BIN, USERNAME, AirflowStack, shifted_include

pytestmark = pytest.mark.slow

ORDERS, CUSTOMERS, EVENTS = "local__orders", "local__customers", "local__events"
ORDERS_API = "local__orders_api"
PARENT = "local__cookbook__e2e_test"
FEATURES = "local__workflow__customer_features"  # reads cleaned orders (3 days) and customers
MODEL = "local__workflow__train_refund_model"  # reads customer_features
WORKFLOWS = {"customer_features": FEATURES, "train_refund_model": MODEL}
CATCHUP = {"orders": ORDERS, "events": EVENTS}
LATE = "local__orders_late"  # orders' row from D2, whose delivery for D2 comes late
LATE_FEATURES = "local__workflow__late_features"  # customer_features on orders_late
SQL = "local__orders_db"  # a PostgreSQL table, from D2: two scheduled runs
SQL_PASSWORD = "e2e-" + "never-printed"  # the connection's (the server trusts any)
DAY = dt.timedelta(days=1)


def _wait_past_midnight(margin: dt.timedelta = dt.timedelta(minutes=10)) -> dt.date:
    """Today (UTC), after waiting out midnight when it is closer than the test's duration.

    A new day in the middle would give the scheduler a fourth catchup run, for today.
    """
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date() + DAY, dt.time(), tzinfo=dt.UTC)
    if midnight - now < margin:
        time.sleep((midnight - now).total_seconds() + 5)
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    today = _wait_past_midnight()
    home = tmp_path_factory.mktemp("airflow-e2e")
    days = shifted_include(home, today - 3 * DAY)
    assert days["2024-01-04"] == today
    registry = home / "include" / "registry.csv"
    text = registry.read_text()
    row = {line.split(",")[0]: line for line in text.splitlines()}

    def starting_today(line: str) -> str:
        return line.replace(f",{today - 3 * DAY},", f",{today},")

    text = text.replace(row["customers"], starting_today(row["customers"]))
    text += "orders_api" + starting_today(row["orders"]).removeprefix("orders") + "\n"
    text += _late_delivery(home / "include", row["orders"], today)
    registry.write_text(text + sql_orders.registry_row("orders_db", today - 2 * DAY))
    airflow = AirflowStack(home)
    airflow.today = today
    airflow.source_database = sql_orders.create(today - 2 * DAY)
    try:
        with airflow.stopped_on_sigterm():
            airflow.start()
            uri = sql_orders.uri(airflow.source_database, SQL_PASSWORD)
            adding = subprocess.Popen(  # as a user does, while the servers start
                [str(BIN / "airflow"), "connections", "add", sql_orders.CONN_ID, "--conn-uri", uri],
                env=airflow.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            partitioned = (*WORKFLOWS.values(), LATE_FEATURES)
            airflow.wait_ready(
                [ORDERS, CUSTOMERS, EVENTS, ORDERS_API, PARENT, LATE, SQL, *partitioned]
            )
            said = adding.communicate(timeout=120)[0]
            assert adding.returncode == 0, said[-3000:]
            for dag_id in partitioned:  # before any input lands: an event a paused
                airflow.set_paused(dag_id, False)  # partitioned consumer gets is lost for good
            yield airflow
    finally:
        airflow.stop()


def _late_delivery(include, orders: str, today: dt.date) -> str:
    """``orders_late``: orders' row and files from D2 on, without D2's file (its delivery comes
    late: the catch-up's run for D2 fails), no freshness; and ``late_features``, customer_features
    on it. :return: its registry row"""
    first = today - 2 * DAY
    late = include / "sample" / "orders_late"
    late.mkdir()
    for path in (include / "sample" / "orders").iterdir():
        if path.name != f"orders_{first}.csv":
            (late / path.name).write_bytes(path.read_bytes())
    with (include / "workflows.yaml").open("a") as out:
        out.write(
            "\n- name: late_features\n  function: features:customer_features\n  inputs:\n"
            "    orders: {table: orders_late, window: 3d}\n"
            "    customers: {table: customers, layer: cleaned, window: all}\n"
            "  params: {min_orders: 0}\n  primary_key: [customer_id]\n"
        )
    row = orders.replace("orders,sample/orders/", "orders_late,sample/orders_late/", 1)
    return row.replace(f",{today - 3 * DAY},", f",{first},").rsplit(",", 1)[0] + ",\n"


@pytest.fixture(scope="module")
def caught_up(stack):
    """Unpause orders and events; the scheduler's catchup runs D1..D3 of each (max 150 s). Then
    orders_late and orders_db: their catch-ups run while the next tests do."""
    expected = [stack.today - n * DAY for n in (3, 2, 1)]
    for dag_id in CATCHUP.values():
        stack.set_paused(dag_id, False)
    deadline = time.monotonic() + 150
    runs: dict[str, list[dict]] = {}
    while time.monotonic() < deadline:
        stack.check_alive()
        runs = {dag_id: stack.runs(dag_id) for dag_id in CATCHUP.values()}
        failed = [(d, r["dag_run_id"]) for d in runs for r in runs[d] if r["state"] == "failed"]
        assert not failed, f"{failed}: {[stack.task_states(*f) for f in failed]}\n{stack.logs()}"
        if all(
            len(rs) == len(expected) and all(r["state"] == "success" for r in rs)
            for rs in runs.values()
        ):
            stack.set_paused(LATE, False)  # its catch-up (D2 failing, D3) runs meanwhile
            return {"days": expected, "runs": runs, "sql": _sql_catchup(stack)}
        time.sleep(1)
    raise AssertionError(f"catchup incomplete after 150 s: {runs}\n{stack.logs()}")


def _sql_catchup(stack) -> dict:
    """Unpause orders_db: the scheduler's catchup runs D2, then D3 (one run at a time); the late
    update is made between the two reads (a lock queue, not timing).
    :return: D2's rows as the SELECT gives them before the update, and the update's gate"""
    first = stack.today - 2 * DAY
    first_rows = sql_orders.source_rows(stack.source_database, first, first + DAY)
    gate = sql_orders.UpdateBetweenReads(stack.source_database, first)
    stack.set_paused(SQL, False)
    return {"first_rows": first_rows, "gate": gate}


def _lake(root) -> Lake:
    return Lake(str(root), "local")


def _interval(run: dict) -> tuple[str, str, str]:
    return run["logical_date"], run["data_interval_start"], run["data_interval_end"]


def _midnight(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def test_scheduler_catchup_writes_the_same_data_as_run_steps(stack, caught_up, monkeypatch):
    days = caught_up["days"]
    for dag_id, runs in caught_up["runs"].items():
        assert [r["run_type"] for r in runs] == ["scheduled"] * 3, dag_id
        assert [_interval(r) for r in runs] == [
            (_midnight(d), _midnight(d), _midnight(d + DAY)) for d in days
        ], dag_id
        for run in runs:  # every task of every run ran once and succeeded
            states = stack.task_states(dag_id, run["dag_run_id"])
            assert set(states.values()) == {("success", 1)}, (dag_id, states)

    monkeypatch.setenv("PIPELINES_HOME", str(stack.home))
    project = load_project(stack.home / "include")
    reference = _lake(stack.home / "reference-lake")
    for name in CATCHUP:
        for day in days:
            run_steps(name, day.isoformat(), project=project, lake=reference)
    actual = _lake(stack.home / "lake")

    def both(name, layer, as_of=None):
        return [
            data_columns(read(name, layer, as_of=as_of, project=project, lake=lake))
            for lake in (actual, reference)
        ]

    for name in CATCHUP:
        raw = actual.raw(name).snapshot()
        assert sorted(raw.partitions) == [d.isoformat() for d in days], name
        for day in days:
            got, want = both(name, "raw", day)
            assert len(got) > 0 or name == "events", (name, day)
            assert got.equals(want), (name, day, got, want)
        got, want = both(name, "cleaned")
        assert len(got) > 0 and got.equals(want), (name, got, want)
        for spec in project.aggregates_of(name):
            got, want = both(spec.name, "aggregated")
            assert len(got) > 0 and got.equals(want), (spec.name, got, want)


def test_cli_backfill_reruns_the_scheduled_intervals(stack, caught_up, monkeypatch):
    """``airflow backfill create`` (the UI's backfill) re-runs D1..D3: same intervals, same data."""
    monkeypatch.setenv("PIPELINES_HOME", str(stack.home))
    project, lake = load_project(stack.home / "include"), _lake(stack.home / "lake")
    before = data_columns(read("events", "cleaned", project=project, lake=lake))
    days = caught_up["days"]
    command = ["backfill", "create", "--dag-id", EVENTS, "--reprocess-behavior", "completed"]
    command += ["--from-date", str(days[0]), "--to-date", str(days[-1])]
    done = subprocess.run(
        [str(BIN / "airflow"), *command], env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = stack.runs(EVENTS)
        if all(r["run_type"] == "backfill" and r["state"] == "success" for r in runs):
            break
        assert not [r for r in runs if r["state"] == "failed"], (runs, stack.logs())
        time.sleep(1)
    assert [(r["run_type"], r["state"]) for r in runs] == [("backfill", "success")] * 3, runs
    assert [_interval(r) for r in runs] == [_interval(r) for r in caught_up["runs"][EVENTS]]
    for run in runs:
        assert set(stack.task_states(EVENTS, run["dag_run_id"]).values()) == {("success", 2)}
    assert data_columns(read("events", "cleaned", project=project, lake=lake)).equals(before)


def test_cookbook_triggers_each_child_once_also_when_cleared(stack, caught_up):
    today = stack.today
    children = (ORDERS, CUSTOMERS, EVENTS, FEATURES, MODEL)
    stack.set_paused(ORDERS, True)  # caught up; paused, its run would never start
    stack.set_paused(PARENT, False)
    run_id = f"rest__{today}"
    body = {"dag_run_id": run_id, "logical_date": _midnight(today)}
    stack.api("POST", f"/api/v2/dags/{PARENT}/dagRuns", body)
    stack.wait_run(PARENT, run_id, timeout=90, want="failed")  # at once, not after a hang
    assert stack.task_states(PARENT, run_id)["trigger_orders"] == ("failed", 1)
    assert stack.runs_on(ORDERS, today) == []

    for dag_id in (ORDERS, CUSTOMERS):
        stack.set_paused(dag_id, False)
    child_run = f"{PARENT}__{run_id}"  # the child's run id carries the namespace
    first: dict[str, dict] = {}
    for attempt in (2, 3):  # clear the failed parent, then clear it again once it succeeded
        stack.api("POST", f"/api/v2/dags/{PARENT}/dagRuns/{run_id}/clear", {"dry_run": False})
        stack.wait_run(PARENT, run_id, timeout=180)
        tasks = stack.task_states(PARENT, run_id)
        assert set(tasks) == {
            *(f"trigger_{name}" for name in ("orders", "customers", "events")),
            *(f"trigger_{name}" for name in WORKFLOWS),
            "verify",
        }
        assert {state for state, _ in tasks.values()} == {"success"}, tasks
        for child in children:
            runs = stack.runs_on(child, today)
            assert [r["dag_run_id"] for r in runs] == [child_run], (child, runs)
            run = runs[0]
            assert (run["state"], run["run_type"]) == ("success", "operator_triggered")
            if child not in WORKFLOWS.values():  # a workflow's run is for its logical date's day
                assert _interval(run) == (
                    _midnight(today),
                    _midnight(today),
                    _midnight(today + DAY),
                )
            if child in first:
                assert run["end_date"] > first[child]["end_date"], f"{child} did not run again"
            first[child] = run
            tries = {t for _, t in stack.task_states(child, child_run).values()}
            assert tries == {attempt - 1}, (child, tries)  # a second time: cleared, not added
    assert len(stack.runs(CUSTOMERS)) == 1  # never scheduled: the cookbook's run is its only one
    triggered = [r for r in stack.runs(ORDERS) if r["run_type"] != "scheduled"]
    assert [r["dag_run_id"] for r in triggered] == [child_run]


def test_client_submits_and_reruns_through_the_rest_api(stack, caught_up, monkeypatch):
    from pipelines.client import Client
    from pipelines.exceptions import PipelinesError

    monkeypatch.setenv("PIPELINES_HOME", str(stack.home))
    monkeypatch.setenv("PIPELINES_LAKE", str(stack.home / "lake"))
    client = Client(
        stack.url, username=USERNAME, password=stack.password, poll_seconds=1, timeout_seconds=90
    )
    today = stack.today  # its interval is still running: asked for explicitly (allow_incomplete)
    with pytest.raises(PipelinesError, match="paused"):  # its runs would wait forever
        client.submit("orders_api", today, allow_incomplete=True)
    with pytest.raises(PipelinesError, match="future"):  # likewise
        client.submit("orders", today + DAY)
    assert stack.runs(ORDERS_API) == []

    stack.set_paused(ORDERS_API, False)
    results = client.submit("orders_api", today, allow_incomplete=True)
    assert results.ok, (results.runs, stack.logs())
    [run] = stack.runs(ORDERS_API)
    assert (run["dag_run_id"], run["run_type"]) == (f"client__{today}", "manual")
    assert _interval(run) == (_midnight(today), _midnight(today), _midnight(today + DAY))
    raw = results.outputs["raw.orders_api"]
    assert sorted(raw["order_id"].astype(int)) == [1008, 1009]  # sample day 4's delivery
    assert set(raw["ds"]) == {str(today)}
    assert len(results.outputs["cleaned.orders_api"]) == 2

    again = client.submit("orders_api", today, allow_incomplete=True)  # the same run, again
    assert again.ok, (again.runs, stack.logs())
    assert [r["dag_run_id"] for r in stack.runs(ORDERS_API)] == [f"client__{today}"]
    assert set(stack.task_states(ORDERS_API, f"client__{today}").values()) == {("success", 2)}

    yesterday = today - DAY  # a date the scheduler ran: that run is cleared and run again
    [scheduled] = stack.runs_on(ORDERS, yesterday)
    before = data_columns(read("orders", "raw", as_of=yesterday))
    rerun = client.submit("orders", yesterday)
    assert rerun.ok, (rerun.runs, stack.logs())
    assert [r["dag_run_id"] for r in stack.runs_on(ORDERS, yesterday)] == [scheduled["dag_run_id"]]
    assert set(stack.task_states(ORDERS, scheduled["dag_run_id"]).values()) == {("success", 2)}
    assert data_columns(read("orders", "raw", as_of=yesterday)).equals(before)


# -- workflows: partitioned-asset consumers of the datasets' days ----------------------------------
# By now orders has run D1..D4 (catchup, the cookbook; D3 again by the client) and customers only D4
# (the cookbook, cleared once more; a run of it before its start date would hold no task), so the
# workflows have runs for D4 only. The workflow DAGs were unpaused before the catchup's events.


def _by_key(stack, dag_id: str) -> dict[str, list[dict]]:
    """The DAG's runs its inputs' events started, by partition key, oldest first (not those the
    e2e_test cookbook triggered for its logical date)."""
    out: dict[str, list[dict]] = {}
    for run in sorted(stack.runs(dag_id), key=lambda r: (r["run_after"], r["dag_run_id"])):
        if run["run_type"] == "asset_triggered":
            out.setdefault(run["partition_key"], []).append(run)
    return out


def _settled(stack, dag_ids, quiet: float = 8, timeout: float = 120, want=None) -> dict:
    """Runs by DAG and key once no run of ``dag_ids`` is unfinished and nothing changed for
    ``quiet`` seconds (and ``want(runs)`` holds); no run may fail."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        stack.check_alive()
        runs = {d: _by_key(stack, d) for d in dag_ids}
        flat = [(d, r) for d in runs for rs in runs[d].values() for r in rs]
        failed = [(d, r["dag_run_id"]) for d, r in flat if r["state"] == "failed"]
        assert not failed, f"{failed}: {[stack.task_states(*f) for f in failed]}\n{stack.logs()}"
        seen = sorted((d, r["dag_run_id"], r["state"]) for d, r in flat)
        if seen != last:
            last, since = seen, time.monotonic()
        elif (
            all(r["state"] == "success" for _, r in flat)
            and (want is None or want(runs))
            and time.monotonic() - since >= quiet
        ):
            return runs
        time.sleep(1)
    raise AssertionError(f"workflow runs not settled in {timeout}s: {last}\n{stack.logs()}")


def _at(timestamp: str) -> str:
    """To the second: the API's timestamps differ in their fractions' digits."""
    return timestamp[:19]


def _counts(runs: dict[str, list[dict]]) -> dict[str, int]:
    return {key: len(rs) for key, rs in runs.items()}


def _consumed(stack, dag_id: str, run: dict) -> list[dict]:
    """The asset events the run was started on."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}"
    return stack.api("GET", f"{path}/upstreamAssetEvents")["asset_events"]


def test_workflow_waits_for_every_input_and_runs_once_per_day(stack, caught_up):
    """D1..D3: orders landed (the catchup), customers never did: no run. D4: both landed (the
    cookbook): one run, started on the two inputs' events for D4; every other run of D4 was
    started by a rewrite signal (the cookbook cleared, the client reran orders)."""
    today = stack.today
    _settled(stack, [ORDERS, CUSTOMERS])  # the earlier tests' runs have ended
    ran = {r["logical_date"] for r in stack.runs(ORDERS)}
    assert ran >= {_midnight(d) for d in (*caught_up["days"], today)}, ran
    assert [r["logical_date"] for r in stack.runs(CUSTOMERS)] == [_midnight(today)]
    runs = _settled(stack, WORKFLOWS.values())
    inputs = {
        FEATURES: {"cleaned/orders", "cleaned/customers"},
        MODEL: {"workflows/customer_features"},
    }
    for dag_id, by_key in runs.items():
        assert set(by_key) == {str(today)}, (dag_id, _counts(by_key))  # nothing for D1..D3
        for run in by_key[str(today)]:
            assert (run["run_type"], run["logical_date"]) == ("asset_triggered", None), run
            tasks = stack.task_states(dag_id, run["dag_run_id"])
            assert tasks == {"workflow.run": ("success", 1)}, (dag_id, tasks)
            events = _consumed(stack, dag_id, run)
            assert {e["partition_key"] for e in events} == {str(today)}, (dag_id, events)
        first = by_key[str(today)][0]  # the first landing: on every input's event for D4
        events = [e for e in _consumed(stack, dag_id, first) if "/_rewritten/" not in e["uri"]]
        assert {e["uri"].rsplit("/lake/local/", 1)[1] for e in events} == inputs[dag_id], events
        assert _at(first["run_after"]) >= max(_at(e["timestamp"]) for e in events), (first, events)
    landed = [  # every later run of D4 was started by a rewrite signal
        run
        for run in runs[FEATURES][str(today)]
        if not any("/_rewritten/" in e["uri"] for e in _consumed(stack, FEATURES, run))
    ]
    assert landed == runs[FEATURES][str(today)][:1], landed


def test_a_workflows_first_landing_sends_no_rewrite_signal(stack, caught_up):
    """customer_features' first run of D4 (train_refund_model had not written D4): its rewrite
    signal for train_refund_model must carry no key, so train's first run of D4 is on the table's
    event alone (a second input would otherwise be skipped: AssetAny starts it on the signal)."""
    today = stack.today
    runs = _settled(stack, WORKFLOWS.values())
    first = runs[FEATURES][str(today)][0]
    signals = _rewrites(stack, "train_refund_model", first)
    assert signals == set(), signals
    events = _consumed(stack, MODEL, runs[MODEL][str(today)][0])
    assert not [e for e in events if "/_rewritten/" in e["uri"]], events


def _rewrites(stack, workflow: str, run: dict) -> set[str]:
    """The days ``run`` signalled on ``workflow``'s rewrite assets (its partition keys)."""
    query = urllib.parse.urlencode(
        {"source_run_id": run["dag_run_id"], "timestamp_gte": run["start_date"], "limit": 100}
    )
    events = stack.api("GET", f"/api/v2/assets/events?{query}")["asset_events"]
    return {
        e["partition_key"]
        for e in events
        if f"/workflows/{workflow}/_rewritten/" in e["uri"] and e["partition_key"]
    }


def test_rerunning_one_input_reruns_its_workflows_once(stack, caught_up):
    """Orders D4 again: each day customer_features wrote whose window holds what the run changed
    (D4, and the older days a late update reached) runs once more, and the model after it."""
    today = stack.today
    before = _settled(stack, WORKFLOWS.values())
    [orders] = stack.runs_on(ORDERS, today)  # the cookbook's run for D4
    path = f"/api/v2/dags/{ORDERS}/dagRuns/{orders['dag_run_id']}/clear"
    stack.api("POST", path, {"dry_run": False})
    rerun = stack.wait_run(ORDERS, orders["dag_run_id"], timeout=120)
    assert rerun["end_date"] > orders["end_date"]
    days = _rewrites(stack, "customer_features", rerun)
    assert str(today) in days and days <= set(before[FEATURES]), (days, before[FEATURES].keys())
    grown = {
        dag_id: {**_counts(before[dag_id]), **{d: len(before[dag_id][d]) + 1 for d in days}}
        for dag_id in WORKFLOWS.values()
    }
    after = _settled(
        stack,
        WORKFLOWS.values(),
        quiet=10,
        want=lambda rs: all(len(rs[d].get(k, [])) >= n for d in grown for k, n in grown[d].items()),
    )
    for dag_id, runs in after.items():  # each such day once more, on the rewrite signal alone
        assert _counts(runs) == grown[dag_id], (
            dag_id,
            days,
            _counts(runs),
            _counts(before[dag_id]),
        )
        for day in days:
            new = runs[day][-1]
            assert new["run_type"] == "asset_triggered", new
            assert _at(new["run_after"]) >= _at(rerun["start_date"]), (new, rerun)
    for day in days:  # the model's rerun for a day follows the features' rerun for it
        model, features = after[MODEL][day][-1], after[FEATURES][day][-1]
        assert _at(model["run_after"]) >= _at(features["start_date"]), (model, features)


def test_workflow_outputs_and_metrics_equal_an_in_process_run(stack, caught_up, monkeypatch):
    from pipelines.steps import workflow as workflows

    today = stack.today
    _settled(stack, WORKFLOWS.values())
    monkeypatch.setenv("PIPELINES_HOME", str(stack.home))
    project = load_project(stack.home / "include")
    reference = _lake(stack.home / "workflow-reference-lake")
    for day in (*caught_up["days"], today):
        run_steps("orders", day.isoformat(), project=project, lake=reference)
    run_steps("customers", today.isoformat(), project=project, lake=reference)
    for name in WORKFLOWS:  # customer_features first: the model reads it
        workflows.run(project.workflow(name), today.isoformat(), reference, project)
    actual = _lake(stack.home / "lake")

    for name in WORKFLOWS:
        table = actual.workflow(name).snapshot()
        assert sorted(table.partitions) == [str(today)], name
        got, want = (
            data_columns(read(name, "workflows", as_of=today, project=project, lake=lake))
            for lake in (actual, reference)
        )
        assert len(got) > 0 and got.equals(want), (name, got, want)
        got, want = (workflows.metrics_of(name, str(today), lake) for lake in (actual, reference))
        assert got == want, (name, got, want)
    metrics = workflows.metrics_of("train_refund_model", str(today), actual)
    assert set(metrics) == {"accuracy", "training_rows"} and metrics["training_rows"] > 0, metrics


def _ended(stack, dag_id: str, count: int, key: str | None = None, timeout: float = 120) -> list:
    """The DAG's first ``count`` runs (of partition ``key``: started by asset events) once each
    has ended."""
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        stack.check_alive()
        runs = _by_key(stack, dag_id).get(key, []) if key else stack.runs(dag_id)
        if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs[:count]):
            return runs[:count]
        time.sleep(1)
    raise AssertionError(f"{dag_id}: {count} runs not ended in {timeout}s: {runs}\n{stack.logs()}")


def _task_log(stack, dag_id: str, run: dict) -> str:
    """The text of the run's task logs (every try)."""
    folder = stack.home / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run['dag_run_id']}"
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_a_workflow_window_missing_a_day_is_refused_until_that_day_lands(
    stack, caught_up, monkeypatch, capsys
):
    """orders_late's delivery for D2 comes late: the catch-up's run for D2 failed (no source), D3
    landed. Its run for D4 (customers landed D4 in the cookbook) starts late_features for D4, which
    refuses, writing nothing, with the line naming D2. The file arrives and D2 is run again: its
    rewrite signal starts late_features' D4 again (the refused run recorded D4), which reads the
    whole window: it writes what customer_features wrote for D4 from the same deliveries, and
    the orders a pandas count of the window's cleaned rows gives."""
    today, d2, d3 = stack.today, stack.today - 2 * DAY, stack.today - DAY
    catchup = _ended(stack, LATE, 2)
    assert [(r["logical_date"], r["state"]) for r in catchup] == [
        (_midnight(d2), "failed"),
        (_midnight(d3), "success"),
    ], catchup
    run_id = f"late__{today}"
    body = {"dag_run_id": run_id, "logical_date": _midnight(today)}
    stack.api("POST", f"/api/v2/dags/{LATE}/dagRuns", body)
    stack.wait_run(LATE, run_id, timeout=120)

    [refused] = _ended(stack, LATE_FEATURES, 1, key=str(today))
    assert refused["state"] == "failed", refused
    line = (
        f"late_features: input orders (cleaned orders_late, 3d) is missing {d2} of its window for "
        f"{today}: run orders_late for them first (pipelines run orders_late --date {d2})"
    )
    log = _task_log(stack, LATE_FEATURES, refused)
    assert line in log, log[-3000:]
    lake = _lake(stack.home / "lake")
    table = lake.workflow("late_features").snapshot()
    assert not table.partitions, table.partitions  # no partial output
    assert str(table.run_metrics(str(today))["checks"]).startswith("failed: " + line)
    monkeypatch.setenv("PIPELINES_HOME", str(stack.home))
    monkeypatch.setenv("PIPELINES_LAKE", str(stack.home / "lake"))
    monkeypatch.setenv("PIPELINES_AIRFLOW_USERNAME", USERNAME)
    monkeypatch.setenv("PIPELINES_AIRFLOW_PASSWORD", stack.password)
    capsys.readouterr()
    assert main(["status", "--url", stack.url, "--json"]) == 0  # the day of the refused run
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["late_features"]["run"] == {"state": "failed", "ds": str(today)}, rows

    sample = stack.home / "include" / "sample"
    late_file = f"orders_{d2}.csv"
    (sample / "orders_late" / late_file).write_bytes((sample / "orders" / late_file).read_bytes())
    started = time.monotonic()
    failed = catchup[0]
    stack.api(
        "POST", f"/api/v2/dags/{LATE}/dagRuns/{failed['dag_run_id']}/clear", {"dry_run": False}
    )
    rerun = stack.wait_run(LATE, failed["dag_run_id"], timeout=120)
    assert _rewrites(stack, "late_features", rerun) == {str(today)}
    refused_again, completed = _ended(stack, LATE_FEATURES, 2, key=str(today))
    assert refused_again["dag_run_id"] == refused["dag_run_id"], (refused_again, refused)
    assert completed["state"] == "success", (completed, stack.logs())
    assert stack.task_states(LATE_FEATURES, completed["dag_run_id"]) == {
        "workflow.run": ("success", 1)
    }
    events = _consumed(stack, LATE_FEATURES, completed)
    assert {e["uri"].rsplit("/lake/local/", 1)[1] for e in events} == {
        "workflows/late_features/_rewritten/cleaned.orders_late"
    }, events
    print(f"late day rerun -> workflow completed: {time.monotonic() - started:.1f}s")

    table = lake.workflow("late_features").snapshot()
    assert sorted(table.partitions) == [str(today)], table.partitions
    assert table.run_metrics(str(today))["read"]["orders"]["days"] == 3  # D2..D4, whole
    project = load_project(stack.home / "include")
    got = read("late_features", "workflows", as_of=today, project=project, lake=lake)
    same = read("customer_features", "workflows", as_of=today, project=project, lake=lake)
    assert len(got) > 0 and data_columns(got).equals(data_columns(same)), (got, same)
    orders = read("orders_late", "cleaned", project=project, lake=lake)
    dated = pd.to_datetime(orders["order_date"]).dt.date
    window = orders[(dated >= d2) & (dated <= today)]
    assert d2 in set(dated[window.index]), window  # the late day's orders are in it
    counted = got.set_index("customer_id")["orders"]  # the customers of D4's snapshot
    want = window.groupby("customer_id")["order_id"].nunique().reindex(counted.index, fill_value=0)
    assert counted.to_dict() == want.to_dict() and want.sum() > 0, (got, window)


def test_scheduler_reads_a_postgresql_table_through_a_connection(stack, caught_up, monkeypatch):
    """orders_db's catch-up: two scheduled runs (D2, D3), every task once, through the connection
    ``airflow connections add`` put in the metadata database (the task finds it through the Task
    SDK). Each day's raw is that day's SELECT, cleaned each order once as the table holds it now
    (the late update made between the reads won), D4's row unread; no log holds the password."""
    first = stack.today - 2 * DAY
    runs = _ended(stack, SQL, 2, timeout=240)
    failed = [_task_log(stack, SQL, r)[-4000:] for r in runs if r["state"] != "success"]
    assert [(r["run_type"], r["state"]) for r in runs] == [("scheduled", "success")] * 2, (
        runs,
        failed,
    )
    assert [_interval(r) for r in runs] == [
        (_midnight(d), _midnight(d), _midnight(d + DAY)) for d in (first, first + DAY)
    ]
    for run in runs:
        assert set(stack.task_states(SQL, run["dag_run_id"]).values()) == {("success", 1)}
        assert SQL_PASSWORD not in _task_log(stack, SQL, run)
    caught_up["sql"]["gate"].join()
    monkeypatch.setenv("PIPELINES_HOME", str(stack.home))
    first_rows = caught_up["sql"]["first_rows"]
    sql_orders.assert_read_incrementally(
        stack.home, "orders_db", stack.source_database, first, first_rows
    )


def test_a_scheduled_run_past_its_freshness_deadline_logs_one_late_line(stack, caught_up):
    """orders allows 1d: the catch-up runs of the intervals that ended more than a day ago were
    past their deadline while they ran, and the deadline alert's callback said so, once each, in
    the executor's callback log; the newest interval's run was not late, and customers and
    events (no allowance) have no alert."""
    logs = stack.home / "airflow" / "logs" / "executor_callbacks"
    lines = [
        line
        for path in logs.rglob("*")
        if path.is_file()
        for line in path.read_text(errors="replace").splitlines()
        if "late: " in line
    ]
    said = re.findall(r"late: (\S+) run \S+ \(interval ending (\S+?)T", "\n".join(lines))
    late = set(said)
    ends = {str(day + DAY) for day in caught_up["days"]}
    assert late, f"no late line under {logs}"
    assert len(said) == len(late), said  # once per run
    assert {dag for dag, _ in late} == {ORDERS}
    assert {end for _, end in late} <= ends - {str(stack.today)}  # the newest one is on time
