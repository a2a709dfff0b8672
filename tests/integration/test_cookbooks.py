"""The e2e_test cookbook: children run once each, also when the parent is cleared and rerun."""

from __future__ import annotations

import datetime as dt

import pipelines
from pipelines.client import Client
from pipelines.runtime.environment import child_run_id

DAY = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)  # a date no other test runs
CHILDREN = [
    "local__orders",
    "local__customers",
    "local__events",
    "local__workflow__customer_features",
    "local__workflow__train_refund_model",
]


def child_runs(dag_id, day):
    """(run_id, logical_date) of the runs of ``dag_id`` for ``day``."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.logical_date == day)
        return [(r.run_id, r.logical_date) for r in runs]


def test_trigger_operator_creates_each_child_once_even_when_rerun(home, airflow_db):
    from pipelines.runs.local import load_dag

    parent = load_dag("local__cookbook__e2e_test")  # .test() below syncs the children too
    for task in parent.tasks:
        if task.task_id.startswith("trigger_"):
            task.wait_for_completion = False  # nothing would run the child without a scheduler
    run_after = DAY + dt.timedelta(hours=30)  # fixed: the rerun keeps the parent's run id
    for _ in range(2):  # the second run replaces the first: a cleared and rerun parent
        run = parent.test(logical_date=DAY, run_after=run_after, mark_success_pattern="verify")
        assert str(run.state).endswith("success")
    for child in CHILDREN:
        assert child_runs(child, DAY) == [
            (child_run_id("local__cookbook__e2e_test", run.run_id), DAY)
        ], child


def test_cookbook_runs_children_in_process_and_verifies(home, airflow_db):
    # through dag.test(): the child runs it counts are rows of the metadata database
    results = Client(full_airflow=True).submit("e2e_test", "2024-01-01", end="2024-01-02")
    assert results.ok, [(r.dag_id, r.ds, r.error) for r in results.runs]
    assert [r.dag_id for r in results.runs][:6] == [*CHILDREN, "local__cookbook__e2e_test"]
    assert len(results.runs) == 12
    assert results.runs[5].results["verify"] == {"passed": 16, "failed": 0}
    assert 0.5 <= results.outputs["accuracy"] <= 1
    assert results.outputs["cleaned.orders"]["order_id"].is_unique
    assert set(results.outputs) >= {"raw.orders", "aggregated.daily_revenue"}
    for child in CHILDREN:  # one local run per child and day
        for day in (1, 2):
            assert len(child_runs(child, dt.datetime(2024, 1, day, tzinfo=dt.UTC))) == 1


def test_cookbook_verify_fails_when_outputs_are_wrong(home, airflow_db):
    cookbooks = home / "include" / "cookbooks.yaml"
    cookbooks.write_text(cookbooks.read_text().replace("min_rows: 3}", "min_rows: 300}", 1))
    results = Client().submit("e2e_test", "2024-01-01")
    assert not results.ok
    parent = results.runs[-1]
    assert parent.failed_task == "verify"
    assert "orders: cleaned has 4 rows, expected at least 300" in parent.error


def test_asset_events_carry_row_counts(home, airflow_db):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from pipelines.runs.local import run_dag

    assert run_dag("local__orders", "2024-01-01", full_airflow=True).ok  # events in the database
    with create_session() as session:
        events = {
            m.extra["table"]: e.extra
            for e, m in session.query(AssetEvent, AssetModel)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri.startswith(f"file://{home}"))
            if "table" in m.extra  # not the workflows' rewrite signals (no rows: a key only)
        }
    assert events["local.raw.orders"]["rows"] == 6
    assert events["local.cleaned.orders"]["delivered"] == 4
    assert events["local.aggregated.daily_revenue"]["rows"] == 2
    assert pipelines.read("daily_revenue", "aggregated")["orders"].sum() == 4
