"""The floor: one hand-written DAG file building the product's DAG shape for every registry row
and every workflow.

Same DAG ids, timetables (a workflow's: the partitioned-asset timetable on its inputs' tables and
their rewrite signals), catchup, max_active_runs, task groups and tasks as the product's factory,
with nothing else: no validation, no lake, no error reporting. Reads the registry and
``workflows.yaml`` named by ``PIPELINES_HOME`` with the standard csv module and libyaml.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import yaml
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import (
    DAG,
    Asset,
    AssetAll,
    AssetAny,
    CronDataIntervalTimetable,
    IdentityMapper,
    PartitionedAssetTimetable,
    TaskGroup,
)

from bench.dagfiles.shape import CRON, STEPS, WORKFLOW_STEP, noop, workflow_assets

INCLUDE = Path(os.environ["PIPELINES_HOME"]) / "include"
NAMESPACE = os.environ.get("PIPELINES_NAMESPACE", "local")


def build(row: dict[str, str]) -> DAG:
    """The four-group DAG of one registry row."""
    schedule = row["schedule"] or "@daily"
    with DAG(
        dag_id=f"{NAMESPACE}__{row['dataset']}",
        schedule=CronDataIntervalTimetable(CRON.get(schedule, schedule), timezone="UTC"),
        start_date=dt.datetime.fromisoformat(row["start_date"]).replace(tzinfo=dt.UTC),
        catchup=True,
        max_active_runs=int(row["max_active_runs"] or 1),
        description=row["description"],
        tags=sorted(row["tags"].split("|")),
        default_args={"owner": row["owner"]},
    ) as dag:
        previous = None
        for group_id, task_id in STEPS:
            with TaskGroup(group_id) as group:
                PythonOperator(task_id=task_id, python_callable=noop)
            if previous is not None:
                previous >> group
            previous = group
    return dag


def build_workflow(entry: dict, start: dt.datetime) -> DAG:
    """The one-task DAG of one workflow, run for each day its inputs land."""
    landed, rewritten = workflow_assets(os.environ["PIPELINES_LAKE"], NAMESPACE, entry)
    assets = AssetAny(AssetAll(*(Asset(**a) for a in landed)), *(Asset(**a) for a in rewritten))
    with DAG(
        dag_id=f"{NAMESPACE}__workflow__{entry['name']}",
        schedule=PartitionedAssetTimetable(
            assets=assets, default_partition_mapper=IdentityMapper()
        ),
        start_date=start,
        catchup=False,
        max_active_runs=1,
        description=entry.get("description", ""),
        tags=["workflow"],
        default_args={"owner": entry.get("owner", "pipelines")},
    ) as dag:
        group_id, task_id = WORKFLOW_STEP
        with TaskGroup(group_id):
            PythonOperator(task_id=task_id, python_callable=noop)
    return dag


with open(INCLUDE / "registry.csv", newline="") as f:
    starts = {}
    for registry_row in csv.DictReader(f):
        build(registry_row)
        starts[registry_row["dataset"]] = registry_row["start_date"]

if (INCLUDE / "workflows.yaml").exists():
    with open(INCLUDE / "workflows.yaml") as f:
        workflows = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or []
    # the product starts a workflow on its inputs' latest start_date; every synthetic dataset
    # starts the same day
    first = dt.datetime.fromisoformat(max(starts.values(), default="2020-01-01"))
    for workflow in workflows:
        build_workflow(workflow, first.replace(tzinfo=dt.UTC))
