"""DAG integrity: every registry row renders a DAG, ids are unique, parsing is cheap and pure."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pendulum
import pytest

import pipelines
from pipelines.wiring.timetable import PipelinesTimetable
from tests.conftest import REPO, write_registry

DAGS = str(REPO / "dags")
EXPECTED = [
    "local__orders",
    "local__customers",
    "local__events",
    "local__payments",
    "local__workflow__customer_features",
    "local__workflow__train_refund_model",
    "local__cookbook__e2e_test",
    "local__cookbook__refund_model",
]


def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS)


@pytest.fixture(scope="module")
def bag():
    return dagbag()


def test_shipped_registry_has_no_import_errors(bag):
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(EXPECTED)


def test_factory_builds_in_registry_order():
    from pipelines.wiring.factory import build_dags

    assert list(build_dags(strict=True)) == EXPECTED


@pytest.mark.parametrize("dag_id", EXPECTED[:3])
def test_dataset_dag_shape(bag, dag_id):
    dag = bag.dags[dag_id]
    assert isinstance(dag.timetable, PipelinesTimetable)
    assert dag.catchup is True
    assert dag.max_active_runs >= 1
    assert [t.task_id for t in dag.topological_sort()] == [
        "ingest.extract",
        "clean.merge",
        "check.check_keys",
        "aggregate.aggregate",
    ]
    assert "pipelines" in dag.tags and "local" in dag.tags
    name = dag_id.split("__")[1]
    assert f"| `dataset` | {name} |" in dag.doc_md
    merge = dag.get_task("clean.merge")
    assert {a.extra["table"] for a in merge.outlets} == {
        f"local.cleaned.{name}",
        f"local.quarantine.{name}",
    }
    assert all(a.uri.startswith("file:///") for a in merge.outlets)


def test_the_database_dataset_is_a_dataset_dag_reading_its_connection_only_when_run(bag):
    """The sample's database source (sql://shop_db/..., the compose stack's shop-db): the same
    steps as a file dataset's (no aggregate reads it), its source shown as the registry spells it;
    parsing it needs no connection (test_parse_touches_no_network_data_or_heavy_imports)."""
    dag = bag.dags["local__payments"]
    assert isinstance(dag.timetable, PipelinesTimetable) and dag.catchup is True
    steps = [t.task_id for t in dag.topological_sort()]
    assert steps == ["ingest.extract", "clean.merge", "check.check_keys"]
    assert "| `source` | sql://shop\\_db/public.payments |" in dag.doc_md
    assert "| `format` | sql |" in dag.doc_md


def test_cookbook_dag_triggers_children_in_order_then_verifies(bag):
    dag = bag.dags["local__cookbook__e2e_test"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order[:3] == ["trigger_orders", "trigger_customers", "trigger_events"]
    assert order[3:] == ["trigger_customer_features", "trigger_train_refund_model", "verify"]
    assert dag.get_task("trigger_customer_features").upstream_task_ids == {
        "trigger_orders",
        "trigger_customers",
    }
    trigger = dag.get_task("trigger_customers")
    assert trigger.trigger_dag_id == "local__customers"
    assert trigger.reset_dag_run and trigger.wait_for_completion
    assert trigger.poke_interval == 10  # PIPELINES_TRIGGER_POKE_SECONDS unset


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("0.5", 0.5)])
def test_the_trigger_tasks_poke_as_often_as_the_environment_says(monkeypatch, value, expected):
    monkeypatch.setenv("PIPELINES_TRIGGER_POKE_SECONDS", value)
    dag = dagbag().dags["local__cookbook__e2e_test"]
    assert {t.poke_interval for t in dag.tasks if t.task_id.startswith("trigger_")} == {expected}


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "7200"])
def test_a_trigger_poke_that_is_no_positive_number_of_seconds_is_named(monkeypatch, value):
    from pipelines.exceptions import PipelinesError
    from pipelines.runtime.environment import trigger_poke_seconds

    monkeypatch.setenv("PIPELINES_TRIGGER_POKE_SECONDS", value)
    with pytest.raises(PipelinesError, match=f"PIPELINES_TRIGGER_POKE_SECONDS: '{value}' must be"):
        trigger_poke_seconds()


def test_k_bad_rows_of_n_give_n_minus_k_dags_and_k_errors(home, capsys):
    rows = ["dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date"]
    for i in range(10):
        rows.append(f"ds_{i},sample/x_{{ds}}.csv,id,ts,ts,incremental,2024-01-01")
    rows[3] = rows[3].replace("incremental", "incremntal")  # bad 1 (line 4)
    rows[5] = rows[5].replace("2024-01-01", "2024-13-01")  # bad 2 (line 6)
    rows[8] = rows[8].replace(",ts,ts,", ",,ts,")  # bad 3 (line 9)
    write_registry(home, "\n".join(rows) + "\n")
    from pipelines.cli import main

    assert main(["validate"]) == 1
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [
        "registry.csv:4: ingestion: 'incremntal' is not one of: full, incremental",
        "registry.csv:6: start_date: '2024-13-01' is not a real date: there is no month 13",
        "registry.csv:9: incremental_field: required when ingestion is incremental",
    ]
    bag = dagbag()
    assert bag.import_errors == {}
    assert len(bag.dag_ids) == 7


def test_parse_is_deterministic(bag):
    again = dagbag()
    assert sorted(again.dag_ids) == sorted(bag.dag_ids)
    for dag_id in bag.dag_ids:
        assert [t.task_id for t in again.dags[dag_id].tasks] == [
            t.task_id for t in bag.dags[dag_id].tasks
        ]


def test_parsing_context_builds_only_that_dag(monkeypatch):
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "local__customers")
    assert list(dagbag().dag_ids) == ["local__customers"]


PURITY_PROBE = """
import socket, sys, json
def refuse(*a, **k):
    raise AssertionError("network touched at parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
from airflow.dag_processing.dagbag import DagBag
import builtins
opened = []
real_open = builtins.open
def spy(file, *a, **k):
    opened.append(str(file))
    return real_open(file, *a, **k)
builtins.open = spy
bag = DagBag(dag_folder=sys.argv[1])
builtins.open = real_open
print(json.dumps({"dags": len(bag.dag_ids), "errors": list(bag.import_errors.values()),
                  "pandas": "pandas" in sys.modules, "opened": opened,
                  "user": sorted(m for m in sys.modules if m in ("features", "model", "numpy"))}))
"""


def parse_probe(tmp_path) -> dict:
    """What parsing the DAG folder in a fresh process did (see PURITY_PROBE)."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "af")}
    out = subprocess.run(
        [sys.executable, "-c", PURITY_PROBE, DAGS],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_parse_touches_no_network_data_or_heavy_imports(tmp_path):
    result = parse_probe(tmp_path)
    assert result["errors"] == [] and result["dags"] == len(EXPECTED)
    assert result["pandas"] is False
    data_reads = [f for f in result["opened"] if "/sample/" in f or ".parquet" in f]
    assert data_reads == []


def test_scheduled_manual_and_dag_test_runs_get_the_same_full_width_interval(bag, airflow_db):
    dag = bag.dags["local__orders"]
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    day = pendulum.datetime(2024, 1, 2, tz="UTC")
    restriction = TimeRestriction(earliest=day, latest=None, catchup=True)
    scheduled = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction
    )
    manual = timetable.infer_manual_data_interval(run_after=day)
    run = dag.test(logical_date=day)
    expected = (day, day + dt.timedelta(days=1))
    assert (scheduled.data_interval.start, scheduled.data_interval.end) == expected
    assert scheduled.logical_date == day
    assert (manual.start, manual.end) == expected
    assert (run.data_interval_start, run.data_interval_end) == expected
    assert str(run.state) in ("success", "DagRunState.SUCCESS")


@pytest.mark.parametrize("namespace", ["serving", "exp", "main"])  # serving, research, master
def test_a_dag_test_run_records_the_interval_its_tasks_process(
    home, airflow_db, monkeypatch, namespace
):
    """``dag.test(logical_date=D)``, what ``airflow dags test DAG D`` runs, records ``[D, next
    D)`` in Airflow in every kind of namespace, scheduled or not, as its tasks process it (a
    research or master namespace schedules nothing: Airflow's NullTimetable recorded [D, D))."""
    from pipelines.steps.dataset import run_steps

    day = pendulum.datetime(2024, 1, 2, tz="UTC")
    monkeypatch.setenv("PIPELINES_NAMESPACE", "serving")
    run_steps("orders", "2024-01-02")  # a research namespace reads serving's raw in place
    monkeypatch.setenv("PIPELINES_NAMESPACE", namespace)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", f"{namespace}__orders")
    run = dagbag().dags[f"{namespace}__orders"].test(logical_date=day)
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    assert (run.data_interval_start, run.data_interval_end) == (day, day + dt.timedelta(days=1))
    cleaned = pipelines.read("orders", "cleaned")  # what the tasks merged: the delivery of D
    assert set(cleaned["dt"]) <= {"2024-01-01", "2024-01-02"} and len(cleaned)
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID")
    for dag_id, dag in dagbag().dags.items():  # a run triggered for D, of any DAG, starts at D
        if not isinstance(dag.timetable, PipelinesTimetable):
            assert namespace == "serving" and "__workflow__" in dag_id  # on its inputs' assets
            continue
        manual = dag.timetable.infer_manual_data_interval(run_after=day)
        assert manual.start == day < manual.end, (dag_id, manual)  # the e2e cookbook: hourly


def test_an_unscheduled_dag_reads_back_unscheduled_with_its_interval(monkeypatch):
    """What the scheduler and the API server load (the serialized DAG) of a research namespace's
    DAG: never scheduled, shown as Airflow shows schedule=None, and a run for D covers [D, D+1)."""
    from airflow.serialization.serialized_objects import DagSerialization

    from pipelines.wiring.factory import build_dags
    from pipelines.wiring.timetable import TriggeredTimetable

    monkeypatch.setenv("PIPELINES_NAMESPACE", "exp")
    data = DagSerialization.to_dict(build_dags()["exp__orders"])
    assert data["dag"]["timetable"]["__type"] == "pipelines.wiring.timetable.TriggeredTimetable"
    back = DagSerialization.from_dict(data)
    assert isinstance(back.timetable, TriggeredTimetable)
    assert (back.timetable.can_be_scheduled, back.timetable.summary) == (False, "None")
    day = pendulum.datetime(2024, 1, 2, tz="UTC")
    assert (
        back.timetable.next_dagrun_info(last_automated_data_interval=None, restriction=None) is None
    )
    interval = back.timetable.infer_manual_data_interval(run_after=day)
    assert (interval.start, interval.end) == (day, day.add(days=1))


def test_manual_run_without_a_date_point_gets_latest_complete_interval():
    tt = PipelinesTimetable("0 0 * * *", timezone="UTC")
    iv = tt.infer_manual_data_interval(run_after=pendulum.datetime(2024, 1, 5, 13, tz="UTC"))
    assert (iv.start, iv.end) == (
        pendulum.datetime(2024, 1, 4, tz="UTC"),
        pendulum.datetime(2024, 1, 5, tz="UTC"),
    )


@pytest.mark.parametrize("name", ["customer_features", "train_refund_model"])
def test_a_workflow_dag_reads_its_inputs_and_writes_its_table_as_assets(bag, name):
    from pipelines.project.config import load_project

    spec = load_project().workflow(name)
    dag = bag.dags[f"local__workflow__{name}"]
    [task] = dag.tasks
    assert task.task_id == "workflow.run" and task.template_fields == ()
    assert [a.extra["table"] for a in task.inlets] == [
        f"local.{i.layer}.{i.table}" for i in spec.inputs
    ]
    assert task.outlets[0].extra["table"] == f"local.workflows.{name}"
    timetable = dag.timetable
    assert type(timetable).__name__ == "PartitionedAssetTimetable"
    landed, *rewrites = timetable.asset_condition.objects  # every input's D, or one rewritten
    assert {a.uri for a in landed.objects} == {a.uri for a in task.inlets}
    assert {a.extra["rewrite_of"] for a in rewrites} == {name}


def test_the_producers_publish_the_tables_workflows_read(bag):
    check = bag.dags["local__orders"].get_task("check.check_keys")
    signals = [a.extra for a in check.outlets if "rewrite_of" in a.extra]
    assert signals == [{"rewritten": "local.cleaned.orders", "rewrite_of": "customer_features"}]
    run = bag.dags["local__workflow__customer_features"].get_task("workflow.run")
    assert [a.extra.get("rewrite_of") for a in run.outlets] == [None, "train_refund_model"]


def test_parsing_imports_no_user_workflow_module(tmp_path):
    result = parse_probe(tmp_path)
    assert result["errors"] == [] and result["user"] == []


def test_a_task_reads_the_project_and_opens_the_lake_only_when_it_runs(bag, home):
    import copy

    from pipelines.wiring.operators import StepOperator

    tasks = [t for dag in bag.dags.values() for t in dag.tasks if isinstance(t, StepOperator)]
    assert len(tasks) == 17  # 3 datasets x 4 steps, payments' 3 (no aggregate), 2 workflows
    assert all("project" not in vars(t) and "lake" not in vars(t) for t in tasks)  # parsed
    parsed = bag.dags["local__orders"].get_task("clean.merge")
    running = parsed.prepare_for_execution()  # the copy Airflow runs
    assert running.lake is running.lake and running.project is running.project  # read once
    assert running.lake.prefix == f"{home / 'lake'}/local"
    assert "project" not in vars(parsed) and "lake" not in vars(parsed)
    copied = copy.deepcopy(running)  # shallow_copy_attrs: copied, not deep-copied
    assert copied.lake.prefix == running.lake.prefix and copied.project.datasets


def test_a_cookbooks_verify_task_reaches_the_lake_the_same_way(bag, home):
    from pipelines.wiring.cookbooks import CookbookCheckOperator
    from pipelines.wiring.operators import ReachesTheLake

    verify = [t for dag in bag.dags.values() for t in dag.tasks if t.task_id == "verify"]
    assert len(verify) == 2 and all(isinstance(t, CookbookCheckOperator) for t in verify)
    assert all(isinstance(t, ReachesTheLake) for t in verify)
    assert all("project" not in vars(t) and "lake" not in vars(t) for t in verify)  # parsed
    running = verify[0].prepare_for_execution()
    assert running.lake.prefix == f"{home / 'lake'}/local" and running.project.cookbooks
