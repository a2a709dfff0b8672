"""The floor: one hand-written DAG file building the product's DAG shape for every registry row.

Same DAG ids, timetable, catchup, max_active_runs, task groups and tasks as the product's factory,
with nothing else: no validation, no lake, no error reporting. Reads the registry named by
``PIPELINES_HOME`` with the standard csv module.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, TaskGroup

from bench.dagfiles.shape import CRON, STEPS, noop


def build(row: dict[str, str]) -> DAG:
    """The four-group DAG of one registry row."""
    schedule = row["schedule"] or "@daily"
    with DAG(
        dag_id=f"{os.environ.get('PIPELINES_NAMESPACE', 'local')}__{row['dataset']}",
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


with open(Path(os.environ["PIPELINES_HOME"]) / "include" / "registry.csv", newline="") as f:
    for registry_row in csv.DictReader(f):
        build(registry_row)
