"""The shared operators of a dataset DAG, one per step, each a thin wrapper over
:mod:`pipelines.steps.dataset`; the operator of a user's workflow (over
:mod:`pipelines.steps.workflow`); and what every task of the package shares
(:func:`default_args`, :func:`fail_clearly`, :data:`FAILURES`).

The operators call the steps and reach the project and the lake through one cached property each
(:attr:`StepOperator.project`, :attr:`StepOperator.lake`), read when a task runs. Nothing is
templated (``template_fields`` is empty): registry values are plain constructor arguments and
never reach Jinja. The steps (pandas, pyarrow) are imported inside ``execute``, not at DAG parse
time.

Each operator says what it read and wrote (:meth:`StepOperator.moved`); Airflow's OpenLineage
provider, when a transport is configured, asks its ``get_openlineage_facets_on_*`` hooks and gets
those tables as OpenLineage datasets (built by :mod:`pipelines.wiring.lineage`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from pipelines.common.partitions import (
    DAILY,
    Interval,
    Layer,
    format_date,
    interval_for,
    latest_complete_interval,
    parse_date,
)
from pipelines.exceptions import (
    ConfigError,
    NamespaceError,
    OutsideNamespace,
    PipelinesError,
    QualityCheckFailed,
    SchemaDriftError,
    SourceError,
    SourceRefused,
    WorkflowError,
)
from pipelines.project.config import Kind, load_project
from pipelines.runtime import environment
from pipelines.runtime.secrets import redact
from pipelines.wiring.task_ids import (
    AGGREGATE_STEP,
    CHECK_STEP,
    EXTRACT_STEP,
    MERGE_STEP,
    STAGES,
    WORKFLOW_STAGE,
    WORKFLOW_STEP,
    task_id,
)

if TYPE_CHECKING:
    from pipelines.lake.lake import Lake
    from pipelines.project.config import Project
    from pipelines.wiring.lineage import TaskLineage

# What the last tasks of this process returned, and why the failed ones failed, by
# "dag_id.task_id": the local runner reports both on the run's line, without a traceback (tasks
# of ``dag.test()`` run in this process).
RESULTS: dict[str, dict] = {}
FAILURES: dict[str, str] = {}
DETAILS = "_details"  # the aggregate task's per-table results (no aggregate name starts with _)


def fail_clearly(operator: BaseOperator, context: Any, exc: Exception) -> Exception:
    """Log a user-facing error in one line and pick the exception that ends the task.

    Config, schema and quality errors, a database source that refused (no such connection, a
    wrong password, an unknown table), a workflow function that failed (it has no I/O: it
    would fail again), and a namespace clash or a write outside the namespace (a bug) will not
    fix themselves: no retry. A missing source file, a dropped database connection or a storage
    error may: Airflow retries those.
    """
    message = redact(str(exc))
    FAILURES[f"{operator.dag_id}.{operator.task_id}"] = message
    operator.log.error("%s", message)
    final = (ConfigError, SchemaDriftError, SourceRefused, QualityCheckFailed, WorkflowError)
    if isinstance(exc, (*final, NamespaceError, OutsideNamespace)):
        return AirflowFailException(message)
    if message == str(exc):
        return exc
    # Airflow logs the exception that ends a try: one that named a credential (an S3 client's
    # error quoting a presigned URL) ends it as the same kind, so it is still retried, saying
    # only the redacted message
    try:
        said = type(exc)(message)
    except Exception:  # a kind that is not built from a message alone
        said = SourceError(message)
    return said.with_traceback(exc.__traceback__)


def task_interval(context: Mapping[str, Any], cron: str) -> Interval:
    """The data interval of the running task: ``[D, next D)`` for logical date D.

    Partitions are keyed by the logical date (every way of starting a run for D agrees on it); a
    run with no logical date processes the latest complete interval before it was started.
    """
    logical = context.get("logical_date")
    if logical is not None:
        return interval_for(cron, logical)
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and start < end:
        return Interval(start, end)
    run_after = getattr(context.get("dag_run"), "run_after", None) or dt.datetime.now(dt.UTC)
    return latest_complete_interval(cron, run_after)


class ReachesTheLake:
    """An operator of a namespace that reaches the project and the namespace's lake through
    :attr:`project` and :attr:`lake`, each read once, when the task runs (never when the DAG is
    parsed: ``__init__`` asks for neither, so a parse reads no config and opens no lake), as the
    Amazon provider's operators reach their hook."""

    namespace: str  # set by each operator's __init__
    # a copy of the task (Airflow copies it to run it) shares what was read, never deep-copies it
    shallow_copy_attrs = ("project", "lake")

    @cached_property
    def project(self) -> Project:
        """The project's config (:func:`~pipelines.project.config.load_project`)."""
        return load_project()

    @cached_property
    def lake(self) -> Lake:
        """The lake of the namespace the task reads and writes."""
        return self.project.lake(self.namespace)


class StepOperator(ReachesTheLake, BaseOperator):
    """A step of the package: its task is ``{group}.{step}`` (:meth:`task_path`), it is never
    templated, a user-facing error ends it in one line (:func:`fail_clearly`), and it reaches
    the project and the lake as :class:`ReachesTheLake` says."""

    template_fields = ()
    step = ""
    group = ""
    # its return value is one of the run's results: the REST API's run-wait endpoint returns it
    # (what :mod:`pipelines.runs.outputs` reads, as the local runner's outcome holds it)
    returns_dag_result = True
    _result: dict | None = None  # what execute returned: the counts its lineage reports

    @classmethod
    def task_path(cls) -> str:
        """``{group}.{step}``: the task id of this step in its DAG."""
        return task_id(cls.group, cls.step)

    def execute(self, context: Any) -> dict:
        self._result = None
        try:
            self._result = self._execute(context)
        except PipelinesError as exc:
            raise fail_clearly(self, context, exc) from None
        return self._result

    def _execute(self, context: Any) -> dict:  # pragma: no cover
        raise NotImplementedError

    def moved(self, result: dict | None) -> TaskLineage:  # pragma: no cover
        """The tables this task reads and writes, with the rows ``result`` (what it returned)
        counted; ``None``: the task has not finished, nothing is counted."""
        raise NotImplementedError

    def get_openlineage_facets_on_start(self) -> Any:
        """The OpenLineage provider's START event: the tables the task reads and writes."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """COMPLETE: the tables, the rows read and written, the schema of each table written."""
        return self._lineage(self._result)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """FAIL: the tables, nothing counted (a failed step commits nothing)."""
        return self._lineage(None)

    def _lineage(self, result: dict | None) -> Any:
        from pipelines.wiring import lineage

        return lineage.operator_lineage(self.project, self.lake, self.moved(result))

    def signal(self, events: Any, outlet: Any, ds: str, changed: list[str] | tuple = ()) -> None:
        """:func:`publish` the outlet's day; a rewrite signal with no day to rerun sends no
        event at all. Airflow gives an outlet's event the run's own partition key when the task
        gave it none (a workflow's run has one), which would start the day on its own before
        the other inputs landed; a task's events are those of its ``outlets`` when it ends."""
        if not publish(events[outlet], outlet, ds, self.project, self.lake, changed):
            self.outlets = [o for o in self.outlets if o is not outlet]


class DatasetStepOperator(StepOperator):
    """Run one step of a dataset for the task's interval.

    Each subclass names its step (the task id), the stage that holds it (the task group id) and
    the layers of its dataset it reads and writes (its inlet and outlet assets): the task of a
    step is ``{group}.{step}`` in every dataset DAG (:meth:`task_path`).

    :param dataset: dataset name in registry.csv
    :param namespace: namespace whose lake the step reads and writes
    """

    ui_color = "#e8f4fd"
    reads: tuple[Layer, ...] = ()
    writes: tuple[Layer, ...] = ()
    publishes: tuple[Layer, ...] = ()  # outlets whose events carry the run's day (see _record)
    _interval: Interval | None = None  # the interval execute ran for

    def __init__(self, *, dataset: str, namespace: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.namespace = namespace

    def _execute(self, context: Any) -> dict:
        dataset = self.project.dataset(self.dataset)
        if dataset is None:
            raise PipelinesError(
                f"dataset {self.dataset!r} is no longer valid in registry.csv: "
                f"{'; '.join(map(str, self.project.problems)) or 'removed'}"
            )
        interval = self._interval = task_interval(context, dataset.cron)
        self.log.info(
            "%s %s for interval [%s, %s)", self.step, dataset.name, interval.start, interval.end
        )
        result = self.run(dataset, interval, context)
        self._record(context, result, interval.ds)
        RESULTS[f"{self.dag_id}.{self.task_id}"] = result
        return result

    def run(self, dataset, interval, context) -> dict:  # pragma: no cover
        raise NotImplementedError

    def changed(self, context: Any, result: dict) -> list[str]:
        """Days of the published table the run wrote besides its own (none)."""
        return []

    def merged(self, context: Any):
        """The :class:`~pipelines.steps.merge.MergeResult` of this run's merge task."""
        from pipelines.steps.merge import MergeResult

        return MergeResult.from_dict(
            context["ti"].xcom_pull(task_ids=MergeOperator.task_path()) or {}
        )

    def _record(self, context: Any, result: dict, ds: str) -> None:
        """Attach the step's counts to every outlet asset event (shown in the UI), and the run's
        day as the partition key of the tables it publishes: that event is what starts the
        workflows reading the day (a table is published once its day passed its checks)."""
        events = context.get("outlet_events")
        if events is None:
            return
        published = {f"{self.namespace}.{layer}.{self.dataset}" for layer in self.publishes}
        for outlet in self.outlets:
            extra = {k: v for k, v in result.items() if isinstance(v, int | str | float | list)}
            events[outlet].extra.update(extra)
            if outlet.extra.get("table", outlet.extra.get("rewritten")) in published:
                self.signal(events, outlet, ds, self.changed(context, result))


class ExtractOperator(DatasetStepOperator):
    """Source -> raw partition ``ds=`` of the interval."""

    step = EXTRACT_STEP
    group = STAGES[step]
    writes = (Layer.RAW,)
    publishes = (Layer.RAW,)

    def run(self, dataset, interval, context) -> dict:
        from pipelines.steps import dataset as steps

        return steps.extract(dataset, interval, self.lake)

    def moved(self, result: dict | None) -> TaskLineage:
        """The source -> raw ``ds=``; in a namespace reading its upstream's raw layer in place,
        that raw table is what the task read."""
        from pipelines.wiring.lineage import Moved, TaskLineage

        raw = (Moved(Layer.RAW, self.dataset, *_counted(result, "rows", "ds")),)
        if not self.lake.owns(Layer.RAW):
            return TaskLineage(reads=raw)
        dataset = self.project.dataset(self.dataset)
        if result is None or dataset is None or self._interval is None:
            return TaskLineage(writes=raw)
        from pipelines.steps import sources

        if dataset.sql is not None:  # a database source: its sql:// name (no host, no login)
            return TaskLineage(writes=raw, sources=(dataset.source,))
        return TaskLineage(writes=raw, sources=(sources.location(dataset, self._interval),))


class MergeOperator(DatasetStepOperator):
    """Raw -> cleaned (upsert by key, or snapshot) and quarantine."""

    step = MERGE_STEP
    group = STAGES[step]
    reads = (Layer.RAW,)
    writes = (Layer.CLEANED, Layer.QUARANTINE)

    def run(self, dataset, interval, context) -> dict:
        from pipelines.steps import dataset as steps

        return steps.merge(dataset, interval, self.lake).as_dict()

    def moved(self, result: dict | None) -> TaskLineage:
        """Raw ``ds=`` -> cleaned (the rows delivered) and quarantine."""
        from pipelines.wiring.lineage import Moved, TaskLineage

        raw, cleaned, quarantined = _counted(result, "raw_rows", "delivered", "quarantined")
        ds = self._interval.ds if self._interval is not None else None
        return TaskLineage(
            reads=(Moved(Layer.RAW, self.dataset, raw),),
            writes=(  # the cleaned table's manifest declares its schema
                Moved(Layer.CLEANED, self.dataset, cleaned),
                Moved(Layer.QUARANTINE, self.dataset, quarantined, ds),
            ),
        )


class CheckKeysOperator(DatasetStepOperator):
    """Quality gate: keys unique and not null in what the run wrote; counts reconcile."""

    step = CHECK_STEP
    group = STAGES[step]
    ui_color = "#fdf3e8"
    publishes = (Layer.CLEANED,)  # the merge wrote the day; the gate lets workflows read it

    def run(self, dataset, interval, context) -> dict:
        from pipelines.steps import dataset as steps

        return steps.check_keys(dataset, interval, self.lake, self.merged(context))

    def moved(self, result: dict | None) -> TaskLineage:
        """The cleaned rows it checked; it writes no rows (it records the outcome)."""
        from pipelines.wiring.lineage import Moved, TaskLineage

        checked = Moved(Layer.CLEANED, self.dataset, *_counted(result, "rows_checked"))
        return TaskLineage(reads=(checked,))

    def changed(self, context: Any, result: dict) -> list[str]:
        """The cleaned partitions the merge rewrote (late updates reach older days)."""
        return list(self.merged(context).touched)

    def _record(self, context: Any, result: dict, ds: str) -> None:
        """The cleaned table's event of the day: the merge's counts and the checks' outcome."""
        super()._record(context, {**self.merged(context).as_dict(), **result}, ds)


class AggregateOperator(DatasetStepOperator):
    """Cleaned -> every aggregate of the dataset, for the partitions the run touched."""

    step = AGGREGATE_STEP
    group = STAGES[step]
    reads = (Layer.CLEANED,)  # writes: the aggregates' own tables, named by aggregates.yaml

    def run(self, dataset, interval, context) -> dict:
        from pipelines.steps import dataset as steps

        results = steps.aggregate(dataset, interval, self.lake, self.merged(context), self.project)
        return {name: r["rows"] for name, r in results.items()} | {DETAILS: results}

    publishes = (Layer.AGGREGATED,)

    def moved(self, result: dict | None) -> TaskLineage:
        """Cleaned -> each aggregate of the dataset, with the rows it wrote."""
        from pipelines.wiring.lineage import Moved, TaskLineage

        if result is None:
            names = [spec.name for spec in self.project.aggregates_of(self.dataset)]
            wrote = [Moved(Layer.AGGREGATED, name) for name in names]
        else:
            wrote = [
                Moved(Layer.AGGREGATED, name, built["rows"], max(built["partitions"], default=None))
                for name, built in result[DETAILS].items()
            ]
        return TaskLineage(reads=(Moved(Layer.CLEANED, self.dataset),), writes=tuple(wrote))

    def _record(self, context: Any, result: dict, ds: str) -> None:
        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in self.outlets:
            if "rewrite_of" in outlet.extra:  # a workflow's signal: the keys only
                table = outlet.extra["rewritten"].rsplit(".", 1)[-1]
                changed = result[DETAILS].get(table, {}).get("partitions", [])
                self.signal(events, outlet, ds, changed)
                continue
            name = outlet.extra["table"].rsplit(".", 1)[-1]
            details = result[DETAILS].get(name, {})
            events[outlet].extra.update(
                {"rows": details.get("rows", 0), "partitions": details.get("partitions", [])}
            )
            self.signal(events, outlet, ds)


def default_args(owner: str, pool: str | None = None) -> dict:
    """Arguments every task of a pipelines DAG shares.

    :param pool: the namespace's Airflow pool (None: Airflow's default pool)
    """
    args = {
        "owner": owner,
        "retries": environment.task_retries(),
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
    }
    return args | ({"pool": pool} if pool else {})


def publish(
    event: Any,
    outlet: Any,
    ds: str,
    project: Project,
    lake: Lake,
    changed: list[str] | tuple = (),
) -> bool:
    """Give the outlet's asset event its partition keys: for a table, ``ds``, the day landed.

    A rewrite signal (:func:`pipelines.wiring.stages.rewrite_asset`) gets the days its workflow
    already wrote whose windows hold ``ds`` or another day the run ``changed`` (a late update to
    an older partition): those runs start again, once each. The first landing of a day gets none:
    it waits for every input.

    :param project: the project's config
    :param lake: the lake of the namespace the task wrote
    :return: whether the event has a key (a rewrite signal with none should not be sent)
    """
    reader = outlet.extra.get("rewrite_of")
    if reader is None:
        event.add_partitions(ds)
        return True
    from pipelines.steps.window_inputs import rerun_days  # pandas: not at parse time

    _, layer, table = outlet.extra["rewritten"].split(".", 2)
    days = rerun_days(project, lake, reader, Layer(layer), table, [ds, *changed])
    if days:
        event.add_partitions(days)
    return bool(days)


def run_day(context: Mapping[str, Any]) -> str:
    """The day D a workflow's run is for: its partition key when its inputs' events started it,
    else the day of its logical date (a cookbook, the CLI, a cron), else of its data interval,
    else (a manual run without a date) the latest day that has ended."""
    key = getattr(context.get("dag_run"), "partition_key", None)
    if key:
        return format_date(parse_date(str(key)[:10]))
    when = context.get("logical_date") or context.get("data_interval_start")
    if when is not None:
        return format_date(when)
    run_after = getattr(context.get("dag_run"), "run_after", None) or dt.datetime.now(dt.UTC)
    return latest_complete_interval(DAILY, run_after).ds  # a day that has ended, as datasets do


class WorkflowOperator(StepOperator):
    """Run a user's workflow for the run's day (:func:`run_day`): read its inputs' windows,
    call its function, check and commit the result, publish its metrics.

    The function is imported when the task runs, never when the DAG is parsed.

    :param workflow: the workflow's name in workflows.yaml
    :param namespace: namespace whose lake it reads and writes
    """

    ui_color = "#eefde8"
    step = WORKFLOW_STEP
    group = WORKFLOW_STAGE

    def __init__(self, *, workflow: str, namespace: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow = workflow
        self.namespace = namespace

    def _execute(self, context: Any) -> dict:
        # pandas and the user's module: not at parse time
        from pipelines.steps import workflow as workflows

        spec = self.project.require(self.workflow, Kind.WORKFLOW).spec
        ds = run_day(context)
        self.log.info("workflow %s for %s", spec.name, ds)
        result = workflows.run(spec, ds, self.lake, self.project)
        events = context.get("outlet_events")
        for outlet in self.outlets if events is not None else ():
            events[outlet].extra.update({"rows": result["rows"], "ds": ds, **result["metrics"]})
            self.signal(events, outlet, ds)
        RESULTS[f"{self.dag_id}.{self.task_id}"] = result
        return result

    def moved(self, result: dict | None) -> TaskLineage:
        """Each input table (the rows read from it, by every alias reading it) -> the
        workflow's table."""
        from pipelines.wiring.lineage import Moved, TaskLineage

        spec = self.project.require(self.workflow, Kind.WORKFLOW).spec
        rows: dict[tuple[Layer, str], int | None] = {}
        for item in spec.inputs:
            read = None if result is None else result["inputs"].get(item.alias)
            before = rows.get((item.layer, item.table))
            rows[item.layer, item.table] = None if read is None else (before or 0) + read
        reads = tuple(Moved(layer, table, n) for (layer, table), n in rows.items())
        wrote = Moved(Layer.WORKFLOWS, spec.name, *_counted(result, "rows", "ds"))
        return TaskLineage(reads=reads, writes=(wrote,))


def _counted(result: dict | None, *keys: str) -> tuple:
    """``result``'s values of ``keys`` (each None before the task has finished)."""
    return tuple(None if result is None else result.get(key) for key in keys)
