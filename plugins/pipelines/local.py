"""Running DAGs without a scheduler: one interval in-process with ``dag.test()``.

:func:`configure` must run before Airflow is imported: it points Airflow at this project (a
SQLite home under ``.airflow/`` unless ``AIRFLOW_HOME`` is set, the repo's dags and plugins
folders) and keeps Airflow's own logging quiet unless asked. Each run parses only the DAG it runs
(``_AIRFLOW_PARSING_CONTEXT_DAG_ID``), so ``dag.test()`` stays fast however big the registry is.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.components import environment
from pipelines.exceptions import PipelinesError
from pipelines.partitions import parse_date

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the repo holding dags/ and plugins/
PARSING_ENV = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"


def configure(verbose: bool = False, *, database: bool = True) -> Path:
    """Set the environment Airflow reads at import; create its database once. Returns the home.

    :param database: create the metadata database when there is none (commands that only read
        the lake need none: they look a lake connection up in it only when it exists)
    """
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(environment.project_home() / ".airflow")))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PACKAGE_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PACKAGE_ROOT / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    os.environ.setdefault("PIPELINES_TASK_RETRIES", "0")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO" if verbose else "CRITICAL")
    home.mkdir(parents=True, exist_ok=True)
    own_database = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in os.environ  # the user's to migrate
    if database and not own_database and not (home / "airflow.db").exists():
        init_database()
    return home


def init_database() -> None:
    """Create the metadata database (``airflow db migrate``), once per Airflow home."""
    from airflow.utils import db

    db.initdb()


@dataclass
class RunOutcome:
    """How one DAG run for one logical date ended, and what its tasks reported.

    :param results: what each task returned, by task id (``clean.merge``: the merge's counts)
    """

    dag_id: str
    ds: str
    state: str
    seconds: float
    failed_task: str | None = None
    error: str | None = None
    results: dict[str, dict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == "success"


def parsing_only(dag_id: str):
    """While inside, parsing the DAG folder builds only ``dag_id`` (as on a worker)."""
    return environment.variable(PARSING_ENV, dag_id)


def load_dag(dag_id: str):
    """The DAG parsed from the dags folder exactly as a worker would (only that DAG is built)."""
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


def run_dag(dag_id: str, ds: str, skip: str | None = None) -> RunOutcome:
    """Run one DAG for logical date ``ds`` (``YYYY-MM-DD``) in-process.

    Never raises for task failures: the outcome says which task failed and why.

    :param skip: regex of task ids to mark successful instead of running
    """
    started = time.perf_counter()  # the line's time is the run's wall time, imports included
    from airflow.utils.state import TaskInstanceState

    from pipelines.components import operators  # Airflow: only after configure()

    logical = dt.datetime.combine(parse_date(ds), dt.time(), tzinfo=dt.UTC)
    operators.FAILURES.clear()
    operators.RESULTS.clear()
    with parsing_only(dag_id):  # dag.test() re-parses the folder: keep that to one DAG
        run = load_dag(dag_id).test(logical_date=logical, mark_success_pattern=skip)
    seconds = time.perf_counter() - started
    state = str(getattr(run.state, "value", run.state))
    prefix = f"{dag_id}."
    results = {
        k.removeprefix(prefix): v for k, v in operators.RESULTS.items() if k.startswith(prefix)
    }
    outcome = RunOutcome(dag_id, ds, state, seconds, results=results)
    if not outcome.ok:
        failed = [ti for ti in run.get_task_instances() if ti.state == TaskInstanceState.FAILED]
        outcome.failed_task = failed[0].task_id if failed else None
        outcome.error = operators.FAILURES.get(f"{dag_id}.{outcome.failed_task}")
    return outcome
