"""Registry rows and workflows -> DAGs. Wiring only: the task groups live in :mod:`.stages`, the
tasks in :mod:`.operators`, what each task does in :mod:`pipelines.steps`.

Parsing is cheap and deterministic: it reads the four config files (cached per file version),
touches no data, network or database, and builds the DAGs in registry order. When Airflow parses
for one DAG (``get_parsing_context().dag_id``, as workers do), only that DAG is built.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
from collections.abc import Iterator

from airflow.sdk import DAG, get_parsing_context

from pipelines.common.partitions import DAILY
from pipelines.lake.lake import Lake
from pipelines.project.config import Project, load_project
from pipelines.project.namespaces import NamespaceSpec
from pipelines.project.registry import Dataset
from pipelines.project.workflows import WorkflowSpec
from pipelines.runtime import bundles, environment
from pipelines.wiring import freshness
from pipelines.wiring.docs import code, text
from pipelines.wiring.operators import default_args
from pipelines.wiring.stages import (
    aggregate,
    check,
    clean,
    ingest,
    input_asset,
    rewrite_asset,
    workflow,
)
from pipelines.wiring.timetable import timetable_of

log = logging.getLogger(__name__)


def build_dags(
    project: Project | None = None, *, strict: bool = False, dag_file: str | None = None
) -> dict[str, DAG]:
    """Every DAG of the project in this namespace (or only the one being parsed for).

    The namespace's kind decides the schedules (:mod:`pipelines.project.namespaces`): serving's
    DAGs run as the registry says; master schedules only its e2e cookbook; research schedules
    nothing. A kind with a ``maintenance`` schedule also gets ``{namespace}__maintenance``.

    :param strict: raise on any config problem instead of logging it and skipping the entry
    :param dag_file: the DAG file being parsed: from a DAG bundle, the namespace and the project
        (its ``include/``) are that bundle's (:func:`pipelines.runtime.bundles.bind_dag_file`)
    """
    with _no_cycle_collection():
        return _build_dags(project, strict=strict, dag_file=dag_file)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while the DAGs are built, as it was after.

    A parse allocates hundreds of thousands of objects that all stay alive (DAGs, tasks, assets,
    the config); each full collection walks every one of them, so the collections alone grew
    faster than the registry: ~40 % of a 5,000-dataset parse, for ~100 objects collected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build_dags(project: Project | None, *, strict: bool, dag_file: str | None) -> dict[str, DAG]:
    if dag_file is not None:
        bundles.bind_dag_file(dag_file)
    project = project or load_project(strict=strict)
    for problem in project.problems:
        log.error("skipped: %s", problem)
    where = project.namespace()
    lake = project.lake(where)
    wanted = get_parsing_context().dag_id
    shared = dag_defaults()
    dags: dict[str, DAG] = {}
    for dataset in project.datasets:
        dag_id = environment.dataset_dag_id(dataset.name, lake.namespace)
        if wanted in (None, dag_id):
            dags[dag_id] = dataset_dag(dataset, project, lake, shared, where)
    for spec in project.workflows:
        dag_id = environment.workflow_dag_id(spec.name, lake.namespace)
        if wanted in (None, dag_id):
            dags[dag_id] = workflow_dag(spec, project, lake, shared, where)
    books = [
        b
        for b in project.cookbooks
        if wanted in (None, environment.cookbook_dag_id(b.name, lake.namespace))
    ]
    if books:  # the trigger operator pulls in much of Airflow core: import it only when needed
        from pipelines.wiring.cookbooks import cookbook_dag

        for book in books:
            dags[environment.cookbook_dag_id(book.name, lake.namespace)] = cookbook_dag(
                book, project, lake, where
            )
    dags.update(_maintenance(project, lake, where, wanted, shared))
    return dags


def _maintenance(
    project: Project, lake: Lake, where: NamespaceSpec, wanted: str | None, shared: dict
) -> dict[str, DAG]:
    """``{namespace}__maintenance`` when the namespace's kind has a ``maintenance`` schedule (and
    no dataset of the registry holds that DAG id: then the dataset's DAG stays, and the problem
    is logged as ``validate`` reports it)."""
    dag_id = environment.maintenance_dag_id(lake.namespace)
    if where.maintenance is None or wanted not in (None, dag_id):
        return {}
    if project.dataset(environment.MAINTENANCE) is not None:
        for problem in project.namespace_problems():
            log.error("skipped: %s", problem)
        return {}
    from pipelines.wiring.maintenance import maintenance_dag

    return {dag_id: maintenance_dag(where, lake, shared)}


def dag_defaults() -> dict:
    """DAG arguments that Airflow would otherwise read from its config for every DAG (a third of
    the parse time of 1,000 DAGs), read once per parse instead."""
    from airflow.sdk.configuration import conf

    return {
        "max_active_tasks": conf.getint("core", "max_active_tasks_per_dag"),
        "max_consecutive_failed_dag_runs": conf.getint(
            "core", "max_consecutive_failed_dag_runs_per_dag"
        ),
        "disable_bundle_versioning": conf.getboolean("dag_processor", "disable_bundle_versioning"),
    }


class DatasetDAG(DAG):
    """A dataset's DAG. Its ``test()`` (``dag.test()``, ``airflow dags test``, ``pipelines run
    --airflow``) runs without the freshness deadline alert: Airflow 3.3.2 hands a test run's
    state update the alerts' definitions where the scheduler gives their ids, and the run fails as
    it ends (``DeadlineAlertModel.get_by_id({...})``: "'dict' object has no attribute 'hex'"). A
    test run has no scheduler to watch a deadline anyway."""

    def test(self, *args, **kwargs):
        alerts, self.deadline = self.deadline, None
        try:
            return super().test(*args, **kwargs)
        finally:
            self.deadline = alerts


def dataset_dag(
    dataset: Dataset,
    project: Project,
    lake: Lake,
    shared: dict | None = None,
    where: NamespaceSpec | None = None,
) -> DAG:
    """``ingest >> clean >> check >> aggregate`` for one dataset.

    :param shared: arguments every DAG of the parse gets (see :func:`dag_defaults`)
    :param where: the namespace (default: the lake's, from the project's namespaces.yaml)
    """
    where = where or project.namespace(lake.namespace)
    start = dt.datetime.combine(dataset.start_date, dt.time(), tzinfo=dt.UTC)
    dag_id = environment.dataset_dag_id(dataset.name, lake.namespace)
    with DatasetDAG(
        dag_id=dag_id,
        schedule=timetable_of(dataset.cron, scheduled=where.schedules),
        start_date=start,
        catchup=True,
        max_active_runs=dataset.max_active_runs,
        default_args=default_args(dataset.owner, where.pool),
        description=(dataset.description or f"{dataset.ingestion.value} dataset")[:200],
        doc_md=registry_doc(dataset),
        tags=sorted(
            {"pipelines", lake.namespace, where.kind, dataset.ingestion.value, *dataset.tags}
        ),
        render_template_as_native_obj=False,
        deadline=(
            freshness.deadline_alert(dag_id, dataset.cron, dataset.freshness)
            if dataset.freshness and where.schedules
            else None
        ),
        **(shared if shared is not None else dag_defaults()),
    ) as dag:
        chain = [
            ingest(dataset, lake, project),
            clean(dataset, lake),
            check(dataset, lake, project),
        ]
        specs = project.aggregates_of(dataset.name)
        if specs:
            chain.append(aggregate(dataset, specs, lake, project))
        # each group holds one task: chaining the tasks is what chaining the groups would do,
        # without Airflow walking every group's roots and leaves (an eighth of the parse)
        steps = [task for group in chain for task in group.children.values()]
        for upstream, downstream in zip(steps, steps[1:], strict=False):
            upstream >> downstream
    return dag


def workflow_dag(
    spec: WorkflowSpec,
    project: Project,
    lake: Lake,
    shared: dict | None = None,
    where: NamespaceSpec | None = None,
) -> DAG:
    """``{namespace}__workflow__{name}``: one run per day D, started by its inputs' D.

    On its inputs (no ``schedule``), the DAG is on Airflow's partitioned-asset timetable: each
    input table's asset event for day D carries the partition key D (published by the task that
    finished the day), and the run for key D starts once every input has one. An input written
    again (a rerun, a late backfill, a late update to an older partition) also signals its
    rewrite asset with the days the workflow already ran for whose windows hold what changed,
    which start again on their own (see :func:`pipelines.steps.window_inputs.rerun_days`). With
    a cron, it runs on the clock like a dataset.
    """
    where = where or project.namespace(lake.namespace)
    start = dt.datetime.combine(spec.start_date or dt.date(2020, 1, 1), dt.time(), tzinfo=dt.UTC)
    with DAG(
        dag_id=environment.workflow_dag_id(spec.name, lake.namespace),
        schedule=(
            _workflow_schedule(spec, lake)
            if where.schedules
            else timetable_of(spec.cron or DAILY, scheduled=False)
        ),
        start_date=start,
        catchup=bool(spec.cron),
        max_active_runs=1,
        default_args=default_args(spec.owner, where.pool),
        description=(spec.description or f"workflow {spec.function}")[:200],
        doc_md=workflow_doc(spec),
        tags=["pipelines", "workflow", lake.namespace, where.kind],
        render_template_as_native_obj=False,
        **(shared if shared is not None else dag_defaults()),
    ) as dag:
        workflow(spec, lake, project)
    return dag


def _workflow_schedule(spec: WorkflowSpec, lake: Lake):
    if spec.cron:
        return timetable_of(spec.cron)
    from airflow.sdk import AssetAll, AssetAny, IdentityMapper, PartitionedAssetTimetable

    tables = {(i.layer, i.table): i for i in spec.inputs}.values()  # one asset per table
    landed = AssetAll(*(input_asset(lake, i) for i in tables))
    rewritten = [rewrite_asset(lake, spec.name, i.layer, i.table) for i in tables]
    return PartitionedAssetTimetable(
        assets=AssetAny(landed, *rewritten), default_partition_mapper=IdentityMapper()
    )


def workflow_doc(spec: WorkflowSpec) -> str:
    """The DAG's doc_md: the declaration, shown literally (every value through
    :mod:`pipelines.wiring.docs`)."""
    rows = "\n".join(
        f"| {code(i.alias)} | {code(f'{i.layer}.{i.table}')} | {text(i.window)} |"
        for i in spec.inputs
    )
    params = ", ".join(code(k) for k in spec.params) or "none"
    key = ", ".join(code(c) for c in spec.primary_key) or "none"
    return (
        f"### Workflow {code(spec.name)}\n\n{code(spec.function)} from "
        f"`include/workflows.yaml`.\n\n| input | table | window |\n|---|---|---|\n{rows}\n\n"
        f"params: {params}; key: {key}\n"
    )


def registry_doc(dataset: Dataset) -> str:
    """The DAG's doc_md: its registry row as a table (every value through
    :mod:`pipelines.wiring.docs`: shown literally, one cell each)."""
    rows = "\n".join(f"| {code(col)} | {text(value)} |" for col, value in dataset.row.items())
    return (
        f"### Dataset {code(dataset.name)}\n\nFrom `include/registry.csv` line {dataset.line}."
        f"\n\n| column | value |\n|---|---|\n{rows}\n"
    )
