"""Running DAGs without a scheduler: one interval in-process.

:func:`configure` must run before Airflow is imported: it points Airflow at this project (a
SQLite home under ``.airflow/`` unless ``AIRFLOW_HOME`` is set, the repo's dags and plugins
folders) and keeps Airflow's own logging quiet unless asked. :func:`run_dag` runs a DAG either
way, with the same :class:`RunOutcome`: by default in this process with no metadata database
(:mod:`pipelines.runs.local_run`), or with ``full_airflow`` through ``dag.test()``, which writes the
run, its task instances and its asset events to the database. Each run parses only the DAG it
runs (``_AIRFLOW_PARSING_CONTEXT_DAG_ID``), so either stays fast however big the registry is.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.common.partitions import parse_date
from pipelines.exceptions import PipelinesError
from pipelines.runs import dag_folder, local_run
from pipelines.runs.dag_folder import parsing_only
from pipelines.runs.local_run import RunRecord
from pipelines.runs.supervisor import AssetEvent
from pipelines.runtime import environment


def configure(verbose: bool = False, *, database: bool = True) -> Path:
    """Set the environment Airflow reads at import (and make its database). Returns the home.

    :param database: create the metadata database when there is none (``dag.test()`` needs
        one; local runs and the commands that only read the lake do not: they look a lake
        connection up in it only when it exists)
    """
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(environment.project_home() / ".airflow")))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(environment.CHECKOUT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(environment.CHECKOUT / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    os.environ.setdefault("PIPELINES_TASK_RETRIES", "0")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO" if verbose else "CRITICAL")
    # OpenLineage (on only when a transport is set): emit from a thread, not a fork per task
    # event, in this process that runs every task (~0.6 s a task saved, no fork of a threaded
    # process)
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
    home.mkdir(parents=True, exist_ok=True)
    if database:
        ensure_database()
    return home


def ensure_database() -> None:
    """Create this home's SQLite metadata database when there is none (a database the user
    configured, ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``, is the user's to migrate)."""
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")  # Airflow's default
    own_database = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in os.environ
    if not own_database and not (home / "airflow.db").exists():
        init_database()


def init_database() -> None:
    """Create the metadata database (``airflow db migrate``), once per Airflow home."""
    from airflow.utils import db

    db.initdb()


@dataclass
class RunOutcome:
    """How one DAG run for one logical date ended, and what its tasks reported.

    :param results: what each task returned, by task id (``clean.merge``: the merge's counts)
    :param events: the asset events its tasks emitted, in the order they ran
    :param run_id: the run's id (``manual__{when it started}``)
    """

    dag_id: str
    ds: str
    state: str
    seconds: float
    failed_task: str | None = None
    error: str | None = None
    results: dict[str, dict] = field(default_factory=dict)
    events: list[AssetEvent] = field(default_factory=list)
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "success"


def load_dag(dag_id: str):
    """The DAG as Airflow's ``DagBag`` parses it from the dags folder (only that DAG is built)."""
    from airflow.dag_processing.dagbag import DagBag

    with parsing_only(dag_id):
        bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise PipelinesError(
            "cannot load the DAG folder:\n" + "\n".join(bag.import_errors.values())
        )
    dag = bag.dags.get(dag_id)
    if dag is None:
        raise PipelinesError(f"no DAG {dag_id!r} in {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}")
    return dag


def run_dag(
    dag_id: str,
    ds: str,
    skip: str | None = None,
    *,
    full_airflow: bool = False,
    conf: dict | None = None,
) -> RunOutcome:
    """Run one DAG for logical date ``ds`` (``YYYY-MM-DD``) in-process.

    Never raises for task failures: the outcome says which task failed and why (the task's own
    one-line message, else its exception's, never a traceback).

    :param skip: regex of task ids to mark successful instead of running
    :param full_airflow: run through ``dag.test()`` and the metadata database (created when
        missing) instead of the local runner
    :param conf: the run's ``dag_run.conf``
    """
    started = time.perf_counter()  # the line's time is the run's wall time, imports included
    from pipelines.runtime.secrets import redact
    from pipelines.wiring import operators  # Airflow: only after configure()

    logical = dt.datetime.combine(parse_date(ds), dt.time(), tzinfo=dt.UTC)
    operators.FAILURES.clear()
    operators.RESULTS.clear()
    if full_airflow:
        record = _through_dag_test(dag_id, logical, skip, conf)
    else:
        record = local_run.run(dag_folder.load(dag_id), logical, skip, conf)
    prefix = f"{dag_id}."
    results = {
        k.removeprefix(prefix): v for k, v in operators.RESULTS.items() if k.startswith(prefix)
    }
    error = None
    if record.failed_task is not None:
        error = operators.FAILURES.get(f"{dag_id}.{record.failed_task}")
        if error is None and record.error is not None:
            error = redact(f"{type(record.error).__name__}: {record.error}")
    return RunOutcome(
        dag_id,
        ds,
        record.state,
        time.perf_counter() - started,
        failed_task=record.failed_task,
        error=error,
        results=results,
        events=record.events,
        run_id=record.run_id,
    )


def _through_dag_test(
    dag_id: str, logical: dt.datetime, skip: str | None, conf: dict | None = None
) -> RunRecord:
    """``dag.test()``; the task states and asset events it wrote to the metadata database."""
    from airflow.utils.state import TaskInstanceState

    ensure_database()
    with parsing_only(dag_id):  # dag.test() re-parses the folder: keep that to one DAG
        run = load_dag(dag_id).test(logical_date=logical, mark_success_pattern=skip, run_conf=conf)
    record = RunRecord(run.run_id, str(getattr(run.state, "value", run.state)))
    instances = run.get_task_instances()
    record.states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in instances}
    failed = [ti.task_id for ti in instances if ti.state == TaskInstanceState.FAILED]
    if failed and record.state != "success":
        record.failed_task = failed[0]
    record.events = recorded_events(dag_id, run.run_id)
    return record


def recorded_events(dag_id: str, run_id: str) -> list[AssetEvent]:
    """The asset events the metadata database holds for one run, in the order they were made."""
    from airflow.models.asset import AssetEvent as AssetEventRow
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = (
        select(AssetEventRow, AssetModel)
        .join(AssetModel, AssetEventRow.asset_id == AssetModel.id)
        .where(AssetEventRow.source_dag_id == dag_id, AssetEventRow.source_run_id == run_id)
        .order_by(AssetEventRow.id)
    )
    with create_session() as session:
        return [
            AssetEvent(e.source_task_id, m.uri, m.name, dict(e.extra or {}), e.partition_key)
            for e, m in session.execute(query)
        ]
