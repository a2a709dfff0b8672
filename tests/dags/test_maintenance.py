"""DAG integrity of a namespace's maintenance DAG: there when its kind's ``maintenance`` schedule
is set in namespaces.yaml (``optimize >> vacuum``, on that cron), absent otherwise, built alone
when parsed for, unscheduled with ``PIPELINES_SCHEDULES=off``, and never opening the lake at
parse."""

from __future__ import annotations

import logging

import pytest

from pipelines.wiring.timetable import PipelinesTimetable
from tests.conftest import REPO, write_registry

DAGS = str(REPO / "dags")
SHIPPED = 8  # the sample's DAGs (tests/dags/test_dag_integrity.py)
WEEKLY = """\
kinds:
  - {match: [main, master], kind: master}
  - {match: [prod, production, serving, "release*", local], kind: serving}
  - {match: ["*"], kind: research}
serving: {maintenance: "0 3 * * 0", retention_hours: 24}
research: {maintenance: "@daily"}
"""


def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS)


@pytest.fixture
def weekly(home):
    (home / "include" / "namespaces.yaml").write_text(WEEKLY)
    return home


def test_the_setting_gives_optimize_then_vacuum_on_its_cron(weekly):
    from airflow.serialization.serialized_objects import DagSerialization

    bag = dagbag()
    assert bag.import_errors == {}
    assert len(bag.dag_ids) == SHIPPED + 1
    dag = bag.dags["local__maintenance"]
    assert [t.task_id for t in dag.topological_sort()] == ["optimize", "vacuum"]
    assert dag.get_task("vacuum").upstream_task_ids == {"optimize"}
    assert isinstance(dag.timetable, PipelinesTimetable)
    assert dag.timetable._expression == "0 3 * * 0"
    assert (dag.catchup, dag.max_active_runs) == (False, 1)
    assert {"pipelines", "maintenance", "local", "serving"} <= set(dag.tags)
    assert dag.get_task("vacuum").retention_hours == 24
    assert all(t.namespace == "local" and t.template_fields == () for t in dag.tasks)
    assert all("project" not in vars(t) and "lake" not in vars(t) for t in dag.tasks)  # parsed
    back = DagSerialization.from_dict(DagSerialization.to_dict(dag))  # as the scheduler stores it
    assert back.task_dict["vacuum"].upstream_task_ids == {"optimize"}
    assert back.timetable.summary == dag.timetable.summary


def test_without_the_setting_there_is_no_maintenance_dag(home):
    from pipelines.project.namespaces import load_rules

    assert not any(
        settings.maintenance for settings in load_rules(home / "include").settings.values()
    )
    bag = dagbag()
    assert len(bag.dag_ids) == SHIPPED
    assert not [i for i in bag.dag_ids if i.endswith("__maintenance")]


def test_every_kind_may_have_one(weekly, monkeypatch):
    monkeypatch.setenv("PIPELINES_NAMESPACE", "exp")  # research: nothing else is scheduled
    bag = dagbag()
    dag = bag.dags["exp__maintenance"]
    assert dag.timetable._expression == "0 0 * * *"  # @daily, kept as cron
    assert dag.get_task("vacuum").retention_hours == 168  # the default
    assert not bag.dags["exp__orders"].timetable.can_be_scheduled


def test_schedules_off_leaves_it_to_be_triggered(weekly, monkeypatch):
    monkeypatch.setenv("PIPELINES_SCHEDULES", "off")
    dag = dagbag().dags["local__maintenance"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert [t.task_id for t in dag.topological_sort()] == ["optimize", "vacuum"]


def test_a_parse_for_one_dag_builds_only_that_one(weekly, monkeypatch):
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "local__maintenance")
    assert list(dagbag().dag_ids) == ["local__maintenance"]
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "local__orders")
    assert list(dagbag().dag_ids) == ["local__orders"]


def test_a_dataset_named_maintenance_keeps_its_dag_and_the_clash_is_reported(
    weekly, caplog, capsys
):
    from pipelines.cli import main
    from pipelines.wiring.factory import build_dags

    write_registry(
        weekly,
        "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date\n"
        "maintenance,sample/x_{ds}.csv,id,ts,ts,incremental,2024-01-01\n",
    )
    with caplog.at_level(logging.ERROR, logger="pipelines.wiring.factory"):
        dags = build_dags()
    assert list(dags) == ["local__maintenance"]
    assert [t.task_id for t in dags["local__maintenance"].tasks][0] == "ingest.extract"
    message = (
        "namespaces.yaml: serving.maintenance: the maintenance DAG would take the DAG id of "
        "dataset 'maintenance' (registry.csv line 2): rename the dataset to schedule it"
    )
    assert f"skipped: {message}" in caplog.messages
    assert main(["validate"]) == 1
    assert message in capsys.readouterr().out.splitlines()
