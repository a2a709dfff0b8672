"""Registry rows -> DAGs. Wiring only: what each task does lives in workflows and components.

Parsing is cheap and deterministic: it reads the three config files (cached per file version),
touches no data, network or database, and builds the DAGs in registry order. When Airflow parses
for one DAG (``get_parsing_context().dag_id``, as workers do), only that DAG is built.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import DAG, get_parsing_context

from pipelines.components import environment
from pipelines.components.lake import Lake
from pipelines.components.operators import default_args
from pipelines.config import Project, load_project
from pipelines.registry import Dataset
from pipelines.timetable import PipelinesTimetable
from pipelines.workflows.aggregate import aggregate
from pipelines.workflows.check import check
from pipelines.workflows.clean import clean
from pipelines.workflows.ingest import ingest

log = logging.getLogger(__name__)


def build_dags(project: Project | None = None, *, strict: bool = False) -> dict[str, DAG]:
    """Every DAG of the project in this namespace (or only the one being parsed for).

    :param strict: raise on any config problem instead of logging it and skipping the entry
    """
    project = project or load_project(strict=strict)
    for problem in project.problems:
        log.error("skipped: %s", problem)
    lake = Lake.from_env()
    wanted = get_parsing_context().dag_id
    dags: dict[str, DAG] = {}
    for dataset in project.datasets:
        dag_id = environment.dataset_dag_id(dataset.name, lake.namespace)
        if wanted in (None, dag_id):
            dags[dag_id] = dataset_dag(dataset, project, lake)
    from pipelines.cookbooks.parent import cookbook_dag

    for book in project.cookbooks:
        dag_id = environment.cookbook_dag_id(book.name, lake.namespace)
        if wanted in (None, dag_id):
            dags[dag_id] = cookbook_dag(book, project, lake)
    return dags


def dataset_dag(dataset: Dataset, project: Project, lake: Lake) -> DAG:
    """``ingest >> clean >> check >> aggregate`` for one dataset."""
    start = dt.datetime.combine(dataset.start_date, dt.time(), tzinfo=dt.UTC)
    scheduled = environment.schedules_enabled()
    with DAG(
        dag_id=environment.dataset_dag_id(dataset.name, lake.namespace),
        schedule=PipelinesTimetable(dataset.cron, timezone="UTC") if scheduled else None,
        start_date=start,
        catchup=True,
        max_active_runs=dataset.max_active_runs,
        default_args=default_args(dataset.owner),
        description=(dataset.description or f"{dataset.ingestion.value} dataset")[:200],
        doc_md=registry_doc(dataset),
        tags=sorted({"pipelines", lake.namespace, dataset.ingestion.value, *dataset.tags}),
        render_template_as_native_obj=False,
    ) as dag:
        chain = [ingest(dataset, lake), clean(dataset, lake), check(dataset, lake)]
        specs = project.aggregates_of(dataset.name)
        if specs:
            chain.append(aggregate(dataset, specs, lake))
        for upstream, downstream in zip(chain, chain[1:], strict=False):
            upstream >> downstream
    return dag


def registry_doc(dataset: Dataset) -> str:
    """The DAG's doc_md: its registry row as a table (values escaped, shown literally)."""
    rows = "\n".join(f"| `{col}` | {_md(value)} |" for col, value in dataset.row.items())
    return (
        f"### Dataset `{dataset.name}`\n\nFrom `include/registry.csv` line {dataset.line}.\n\n"
        f"| column | value |\n|---|---|\n{rows}\n"
    )


def _md(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return escaped.replace("{", "&#123;").replace("}", "&#125;").replace("<", "&lt;") or "–"
