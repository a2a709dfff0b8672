"""The stages of a dataset DAG: one task group each, holding the step that names its task.

``ingest`` (``extract``) -> ``clean`` (``merge``) -> ``check`` (``check_keys``) -> ``aggregate``
(``aggregate``); and a workflow DAG's one stage, ``workflow`` (``run``). The group and task ids are
the operators' (:mod:`pipelines.wiring.operators`); every task declares the lake tables it
reads and writes (and the check, the cleaned table it lets workflows read) as Airflow Assets.
"""

from __future__ import annotations

import functools

from airflow.sdk import Asset, TaskGroup

from pipelines.common.partitions import Layer
from pipelines.lake.lake import Lake
from pipelines.project.aggregates import AggregateSpec
from pipelines.project.config import Project
from pipelines.project.registry import Dataset
from pipelines.project.workflows import WorkflowInput, WorkflowSpec
from pipelines.wiring.docs import code, text
from pipelines.wiring.operators import (
    AggregateOperator,
    CheckKeysOperator,
    DatasetStepOperator,
    ExtractOperator,
    MergeOperator,
    WorkflowOperator,
)


def table_asset(lake: Lake, layer: Layer, name: str) -> Asset:
    """The table's lake URI, used as the asset's name too.

    Airflow ties a name to one URI, and the lake root may differ between deployments or tests;
    the readable ``{namespace}.{layer}.{name}`` is in ``extra["table"]``.
    """
    return _asset(lake.asset_uri(layer, name), f"{lake.home_of(layer)}.{layer}.{name}")


@functools.lru_cache(maxsize=1 << 16)
def _asset(uri: str, table: str) -> Asset:
    """One Asset object per table for a whole parse: a table is the outlet of one task and the
    inlet of the next, and building an Asset (URI checks) is a tenth of a DAG's parse."""
    return Asset(name=uri, uri=uri, group="pipelines", extra={"table": table})


def rewrite_asset(lake: Lake, workflow: str, layer: Layer, table: str) -> Asset:
    """The signal that ``table`` was written again for a day ``workflow`` already ran: the
    workflow's run for that day starts again on it alone (a first landing waits for every input).
    """
    uri = f"{lake.asset_uri(Layer.WORKFLOWS, workflow)}/_rewritten/{layer}.{table}"
    extra = {"rewritten": f"{lake.namespace}.{layer}.{table}", "rewrite_of": workflow}
    return Asset(name=uri, uri=uri, group="pipelines", extra=extra)


def rewrites(project: Project, lake: Lake, layer: Layer, table: str) -> list[Asset]:
    """The rewrite signals of every workflow that reads ``table`` of ``layer``."""
    return [rewrite_asset(lake, w.name, layer, table) for w in project.readers_of(layer, table)]


def stage(
    operator: type[DatasetStepOperator],
    tooltip: str,
    dataset: Dataset,
    lake: Lake,
    *,
    outlets: list[Asset] | None = None,
    doc_md: str | None = None,
    project: Project | None = None,
) -> TaskGroup:
    """The task group ``operator.group`` holding the one step ``operator.step`` of ``dataset``,
    with the dataset's tables the step reads and writes as its inlets and outlets.

    :param outlets: tables the step writes besides its dataset's own
    :param project: add the rewrite signals of the workflows reading what the step publishes
    """
    written = dict.fromkeys((*operator.writes, *operator.publishes))
    # a layer another namespace holds (research's raw) is read in place: an inlet, never an
    # outlet, so no event of this namespace reaches that namespace's consumers
    read = [*operator.reads, *(layer for layer in written if not lake.owns(layer))]
    signals = [
        signal
        for layer in operator.publishes
        if project is not None and layer is not Layer.AGGREGATED and lake.owns(layer)
        for signal in rewrites(project, lake, layer, dataset.name)
    ]
    with TaskGroup(operator.group, tooltip=tooltip) as group:
        operator(
            task_id=operator.step,
            dataset=dataset.name,
            namespace=lake.namespace,
            inlets=[table_asset(lake, layer, dataset.name) for layer in dict.fromkeys(read)],
            outlets=[
                *(table_asset(lake, layer, dataset.name) for layer in written if lake.owns(layer)),
                *(outlets or []),
                *signals,
            ],
            doc_md=doc_md,
        )
    return group


def ingest(dataset: Dataset, lake: Lake, project: Project | None = None) -> TaskGroup:
    """Source -> the raw partition of the interval (in a namespace that reads its upstream's raw
    layer in place: the check that the upstream has the interval's delivery)."""
    doc = f"Reads {code(dataset.source)} for the interval into raw `ds=`."
    tip = f"{dataset.source} -> raw"
    if not lake.owns(Layer.RAW):
        doc = f"Checks that namespace {code(lake.upstream)} holds raw `ds=` (read there, in place)."
        tip = f"{lake.upstream}.raw (read in place)"
    return stage(ExtractOperator, tip, dataset, lake, doc_md=doc, project=project)


def clean(dataset: Dataset, lake: Lake) -> TaskGroup:
    """Raw -> typed, deduplicated rows merged into cleaned (bad rows to quarantine)."""
    doc = f"{dataset.ingestion.value} merge by {', '.join(map(code, dataset.primary_key))}"
    return stage(MergeOperator, "raw -> cleaned", dataset, lake, doc_md=doc)


def check(dataset: Dataset, lake: Lake, project: Project | None = None) -> TaskGroup:
    """The quality gate between cleaned and aggregated (it publishes the cleaned day)."""
    tip = "keys unique and not null; counts reconcile"
    return stage(CheckKeysOperator, tip, dataset, lake, project=project)


def aggregate(
    dataset: Dataset, specs: list[AggregateSpec], lake: Lake, project: Project | None = None
) -> TaskGroup:
    """Cleaned -> the dataset's business tables from aggregates.yaml."""
    tables = [table_asset(lake, Layer.AGGREGATED, s.name) for s in specs]
    if project is not None:
        tables += [a for s in specs for a in rewrites(project, lake, Layer.AGGREGATED, s.name)]
    doc = ", ".join(code(s.name) for s in specs) or "no aggregates"
    return stage(
        AggregateOperator, "cleaned -> aggregated", dataset, lake, outlets=tables, doc_md=doc
    )


def input_asset(lake: Lake, item: WorkflowInput) -> Asset:
    """The table a workflow input reads, as the asset its producer publishes."""
    return table_asset(lake, item.layer, item.table)


def workflow(spec: WorkflowSpec, lake: Lake, project: Project | None = None) -> TaskGroup:
    """Inputs' windows -> the user's function -> ``workflows/{name}/ds=D`` and its metrics."""
    reads = ", ".join(f"{code(f'{i.layer}.{i.table}')} ({text(i.window)})" for i in spec.inputs)
    with TaskGroup(
        WorkflowOperator.group, tooltip=f"{spec.function} -> workflows.{spec.name}"
    ) as group:
        WorkflowOperator(
            task_id=WorkflowOperator.step,
            workflow=spec.name,
            namespace=lake.namespace,
            inlets=[input_asset(lake, item) for item in spec.inputs],
            outlets=[
                table_asset(lake, Layer.WORKFLOWS, spec.name),
                *(rewrites(project, lake, Layer.WORKFLOWS, spec.name) if project else []),
            ],
            doc_md=f"{code(f'{spec.function}(inputs, params, ds)')} over {reads}",
        )
    return group
