"""The client and ``pipelines submit`` / ``backfill --url`` against a real Airflow (api-server,
scheduler with the LocalExecutor at a parallelism of 4, dag-processor, PostgreSQL), compared with
the local client doing the same in a lake of its own.

The scheduler here makes no run of its own (``max_dagruns_to_create_per_loop`` 0: the datasets'
catchup from 2024 would otherwise run every day since), so every run is the client's or a
backfill's; the workflow DAGs are unpaused only when a run of them is asked for, so no
partitioned-asset run of them starts on its own before that (a paused consumer drops the event).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.client import Client
from pipelines.exceptions import (
    AirflowUnreachable,
    DagPaused,
    LoginRefused,
    RunFailed,
    RunTimeout,
    UnknownNameError,
)
from tests.e2e.airflow_stack import REPO, USERNAME, AirflowStack, free_port
from tests.integration.test_fast_run import in_order, lake_tables

D1, D2, D3, D5, D6 = "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05", "2024-01-06"
DAYS = [f"2024-01-0{n}" for n in range(1, 6)]
DATASETS = ("orders", "customers", "events")
WORKFLOWS = ("customer_features", "train_refund_model")
DAY5 = """order_id,customer_id,status,amount,updated_at,order_date
1010,c2,placed,33.00,2024-01-05T08:00:00Z,2024-01-05
1009,c4,paid,12.00,2024-01-05T09:00:00Z,2024-01-04
"""


def dag_id(name: str) -> str:
    kind = "workflow__" if name in WORKFLOWS else "cookbook__" if name == "e2e_test" else ""
    return f"local__{kind}{name}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("client-e2e")
    shutil.copytree(REPO / "include", home / "include")
    (home / "include" / "sample" / "orders" / "orders_2024-01-05.csv").write_text(DAY5)
    airflow = AirflowStack(home)
    airflow.env["AIRFLOW__SCHEDULER__MAX_DAGRUNS_TO_CREATE_PER_LOOP"] = "0"
    try:
        with airflow.stopped_on_sigterm():
            airflow.start()
            airflow.wait_ready([dag_id(n) for n in (*DATASETS, *WORKFLOWS, "e2e_test")])
            for name in ("orders", "customers"):
                airflow.set_paused(dag_id(name), False)
            yield airflow
    finally:
        airflow.stop()


@pytest.fixture
def at(stack, monkeypatch):
    """``at(lake)``: the project is the stack's, the lake the one named (for the local client)."""
    monkeypatch.setenv("PIPELINES_HOME", str(stack.home))
    monkeypatch.setenv("PIPELINES_NAMESPACE", "local")

    def use(lake: Path) -> Path:
        monkeypatch.setenv("PIPELINES_LAKE", str(lake))
        return lake

    return use


def remote(stack, **kwargs) -> Client:
    return Client(stack.url, username=USERNAME, password=stack.password, poll_seconds=1, **kwargs)


def assert_same_data(a: Path, b: Path) -> None:
    """Every table in both lakes, with the same partitions (rows, key ranges) and rows (as sets:
    the DuckDB merge's and delta-rs's order within a file is not the pandas path's key order);
    the versions may differ (a backfill's runs commit in their own order)."""
    ta, tb = lake_tables(a), lake_tables(b)
    assert sorted(ta) == sorted(tb)
    for path in ta:
        assert ta[path]["partitions"] == tb[path]["partitions"], path
        for key, frame in ta[path]["rows"].items():
            other = tb[path]["rows"][key]  # rows as a set: see in_order
            pd.testing.assert_frame_equal(in_order(frame), in_order(other), obj=f"{path} {key}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reference") / "lake"


CHILD_OF_E2E = f"local__cookbook__e2e_test__client__{D2}"  # the run the cookbook gave its child
SUBMITTED = [  # the last: a date a run already holds (the cookbook's child): cleared, run again
    ("orders", D1, f"client__{D1}"),
    ("e2e_test", D2, f"client__{D2}"),
    ("train_refund_model", D2, CHILD_OF_E2E),
]


def test_submit_gives_the_local_clients_outputs_and_lake(stack, at, reference):
    for name in (*WORKFLOWS, "e2e_test"):
        stack.set_paused(dag_id(name), False)  # the cookbook's children, and the workflow
    stack.set_paused(dag_id("events"), False)
    client = remote(stack, timeout_seconds=600)
    outputs = {}
    for name, day, run_id in SUBMITTED:
        at(reference)
        local = Client().submit(name, day)
        assert local.ok, (name, local.error)
        at(stack.home / "lake")
        got = client.submit(name, day)
        assert got.ok, (name, got.error, stack.logs())
        assert (got.dag_id, got.logical_date, got.state) == (dag_id(name), day, "success")
        assert got.run_id == run_id, (got, stack.runs(dag_id(name)))
        assert got.url == f"{stack.url}/dags/{dag_id(name)}/runs/{run_id}"
        assert got.outputs.metrics == local.outputs.metrics, name
        assert list(got.outputs.tables) == list(local.outputs.tables)
        outputs[name] = got.outputs
    assert outputs["train_refund_model"]["accuracy"] >= 0.5
    cooked = outputs["e2e_test"]  # its checks, and its children's outputs
    assert (cooked["passed"], cooked["checked"], cooked["orders.rows_raw"]) == (16, 16, 5)
    assert cooked["accuracy"] == cooked["train_refund_model.accuracy"]
    cleaned = cooked.tables["cleaned.orders"]  # read from the lake when asked for
    assert len(cleaned) > 0 and cleaned["order_id"].is_unique
    assert_same_data(stack.home / "lake", reference)
    # from here on only datasets run: a rerun of orders would start the workflows again for the
    # days whose windows it changed (their rewrite signal), which a local backfill does not do
    _pause_when_idle(stack, ["events", *WORKFLOWS, "e2e_test"])


def _pause_when_idle(stack, names: list[str], timeout: float = 120) -> None:
    """Pause the DAGs once none of their runs is queued or running (the workflows' runs that
    the cookbook's data started on their own, on the partitioned-asset timetable)."""
    deadline = time.monotonic() + timeout
    busy = names
    while busy:
        assert time.monotonic() < deadline, (busy, stack.logs())
        time.sleep(1)
        runs = {name: stack.runs(dag_id(name)) for name in names}
        busy = [n for n in names if any(r["state"] in ("queued", "running") for r in runs[n])]
    for name in names:
        stack.set_paused(dag_id(name), True)


def _runs_of(stack, name: str) -> dict[str, dict]:
    return {r["logical_date"][:10]: r for r in stack.runs(dag_id(name))}


def _times(run: dict) -> tuple[dt.datetime, dt.datetime]:
    return tuple(dt.datetime.fromisoformat(run[k]) for k in ("start_date", "end_date"))


@pytest.mark.parametrize("backwards", [False, True], ids=["forward", "backwards"])
def test_a_backfill_through_airflow_leaves_the_local_backfills_lake(
    stack, at, reference, capsys, monkeypatch, backwards
):
    at(reference)
    assert main(["backfill", "orders", "--start", D1, "--end", D5]) == 0
    at(stack.home / "lake")
    monkeypatch.setenv("PIPELINES_AIRFLOW_USERNAME", USERNAME)
    monkeypatch.setenv("PIPELINES_AIRFLOW_PASSWORD", stack.password)
    capsys.readouterr()
    argv = ["backfill", "orders", "--start", D1, "--end", D5, "--url", stack.url]
    argv += ["--max-active-runs", "4", *(["--run-backwards"] if backwards else [])]
    assert main(argv) == 0
    out = [line for line in capsys.readouterr().out.splitlines() if not line[:4].isdigit()]
    assert (
        out[0].startswith("backfill ") and "5 days 2024-01-01 .. 2024-01-05, 4 at a time" in out[0]
    )
    assert ("newest first" if backwards else "oldest first") in out[0]
    done = [line for line in out if line.startswith("ok   local__orders")]
    assert sorted(line.split()[2] for line in done) == DAYS and out[-1].startswith("5/5 runs")
    assert any("raw 2, cleaned 2" in line for line in done if D5 in line)
    runs = _runs_of(stack, "orders")
    started = {day: _times(runs[day])[0] for day in DAYS}
    first, last = (D5, D1) if backwards else (D1, D5)
    assert started[first] < started[last], started
    spans = sorted(_times(runs[day]) for day in DAYS)
    overlapping = any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
    assert overlapping, f"no two backfill runs ran at once: {spans}"
    assert_same_data(stack.home / "lake", reference)


def test_submit_on_the_command_line_prints_the_clients_outputs(stack, at, capsys, monkeypatch):
    at(stack.home / "lake")
    monkeypatch.setenv("PIPELINES_AIRFLOW_USERNAME", USERNAME)
    monkeypatch.setenv("PIPELINES_AIRFLOW_PASSWORD", stack.password)
    argv = ["submit", "customers", "--date", D3, "--url", stack.url]
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    [run] = printed["runs"]
    assert (run["state"], run["run_id"]) == ("success", f"client__{D3}")
    assert run["url"] == f"{stack.url}/dags/local__customers/runs/client__{D3}"
    rows = printed["outputs"]["rows_raw"]
    assert rows > 0 and printed["outputs"]["checks"] == "passed"
    assert main(argv) == 0  # the same date again: its run is cleared and run again
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"  local__customers {D3}: ") for line in lines)  # waiting
    table = dict(line.split(None, 1) for line in lines if line and not line.startswith(" "))
    assert {k: table[k] for k in printed["outputs"]} == {
        k: str(v) for k, v in printed["outputs"].items()
    }


def test_errors_a_user_can_fix_are_one_clear_line(stack, at, capsys, monkeypatch):
    at(stack.home / "lake")
    with pytest.raises(LoginRefused, match=f"Airflow at {stack.url} refused the login of 'admin'"):
        Client(stack.url, username=USERNAME, password="wrong").submit("orders", D1)
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AirflowUnreachable, match=f"cannot reach Airflow at {nowhere}"):
        Client(nowhere, username=USERNAME, password="x").submit("orders", D1)
    with pytest.raises(UnknownNameError, match="did you mean orders"):
        remote(stack).submit("ordrs", D1)
    with pytest.raises(DagPaused, match="local__events is paused in Airflow"):
        remote(stack).submit("events", D1)
    failed = remote(stack).submit("orders", D6)  # no delivery that day
    assert (failed.ok, failed.state, failed.failed_task) == (False, "failed", "ingest.extract")
    assert "source for 2024-01-06 not found" in failed.error, failed.error
    with pytest.raises(RunFailed, match="local__orders 2024-01-06: ingest.extract failed"):
        failed.raise_for_failure()
    monkeypatch.setenv("PIPELINES_AIRFLOW_USERNAME", USERNAME)
    monkeypatch.setenv("PIPELINES_AIRFLOW_PASSWORD", "wrong")
    capsys.readouterr()
    assert main(["submit", "orders", "--date", D1, "--url", stack.url]) == 1
    err = capsys.readouterr().err
    assert f"error: Airflow at {stack.url} refused the login of 'admin'" in err
    assert "Traceback" not in err


def test_a_wait_that_runs_out_names_the_run_which_goes_on(stack, at):
    at(stack.home / "lake")
    started = remote(stack).submit("customers", D1, wait=False)
    assert started.state == "queued" and started.outputs is None
    page = f"{stack.url}/dags/local__customers/runs/client__{D1}"
    with pytest.raises(RunTimeout, match=f"the run goes on: client__{D1} \\({page}\\)"):
        started.wait(timeout=1)
    assert started.wait().ok and started.outputs["rows_raw"] == 5


def test_status_adds_each_dags_latest_run(stack, at, capsys, monkeypatch):
    at(stack.home / "lake")
    # a day no test ran: its run is the newest, whatever ran before (not waited for: seconds)
    started = remote(stack).submit("customers", "2024-01-04", wait=False)
    monkeypatch.setenv("PIPELINES_AIRFLOW_USERNAME", USERNAME)
    monkeypatch.setenv("PIPELINES_AIRFLOW_PASSWORD", stack.password)
    capsys.readouterr()
    assert main(["status", "--url", stack.url, "--json", "--now", "2024-01-05T03:00"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    customers = rows["customers"]["run"]
    assert customers["ds"] == "2024-01-04"
    assert customers["state"] in ("queued", "running", "success")
    assert rows["customers_by_country"]["run"]["ds"] == "2024-01-04"  # its dataset's DAG
    for name in ("orders", "events"):  # only runs asked for: none starts between the two reads
        [latest] = stack.runs(dag_id(name), order_by="-run_after", limit="1") or [None]
        shown = {"state": latest["state"], "ds": latest["logical_date"][:10]} if latest else None
        assert rows[name]["run"] == (shown or {"state": "no run", "ds": ""}), name
    assert main(["status", "--url", stack.url, "--now", "2024-01-05T03:00"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[-2:] == ["LATEST", "RUN"]
    assert next(line for line in lines if line.startswith("customers ")).endswith(" 2024-01-04")
    assert started.run_id == "client__2024-01-04"


def test_stale_days_rerun_on_airflow_with_url(stack, at, capsys, monkeypatch):
    """The backfills of orders above rewrote the partitions customer_features read for the day
    the cookbook gave it: that day is stale, and ``--stale --url`` reruns exactly it there."""
    from pipelines.lake.lake import Lake
    from pipelines.project.config import load_project
    from pipelines.steps.staleness import stale_days

    at(stack.home / "lake")
    project = load_project()
    spec = project.workflow("customer_features")

    def stale() -> dict[str, str]:
        return stale_days(spec, Lake.from_env(), project)

    before = stale()
    assert D2 in before and "input orders (cleaned orders)" in before[D2], before
    stack.set_paused(dag_id("customer_features"), False)  # train_refund_model stays paused
    monkeypatch.setenv("PIPELINES_AIRFLOW_USERNAME", USERNAME)
    monkeypatch.setenv("PIPELINES_AIRFLOW_PASSWORD", stack.password)
    capsys.readouterr()
    argv = ["backfill", "customer_features", "--start", D1, "--end", D5, "--stale"]
    assert main([*argv, "--url", stack.url]) == 0
    out = capsys.readouterr().out.splitlines()
    ran = [line.split()[2] for line in out if line.startswith("ok   local__workflow__")]
    assert ran == sorted(before), out
    assert stale() == {}
    assert main([*argv, "--url", stack.url]) == 0
    assert "nothing stale" in capsys.readouterr().out
    _pause_when_idle(stack, ["customer_features"])
