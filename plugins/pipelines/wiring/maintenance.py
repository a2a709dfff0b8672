"""A namespace's maintenance DAG, ``{namespace}__maintenance``: ``optimize`` (compact the small
files of every table the namespace writes), then ``vacuum`` (delete the files no version of the
last ``retention_hours`` needs), on the schedule ``maintenance`` of its kind in namespaces.yaml.

The operators are thin: what they do is :mod:`pipelines.steps.maintenance`, imported when a task
runs; a parse reads no table.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, BaseOperator

from pipelines.exceptions import PipelinesError
from pipelines.lake.lake import Lake
from pipelines.project.namespaces import NamespaceSpec
from pipelines.runtime import environment
from pipelines.wiring.docs import code
from pipelines.wiring.operators import RESULTS, ReachesTheLake, default_args, fail_clearly
from pipelines.wiring.task_ids import OPTIMIZE, VACUUM
from pipelines.wiring.timetable import PipelinesTimetable


class MaintenanceOperator(ReachesTheLake, BaseOperator):
    """One maintenance step over every table the namespace writes (and its runs table); logs
    and returns its summary.

    :param namespace: the namespace whose tables it maintains
    """

    template_fields = ()  # nothing templated: config is data, never code
    ui_color = "#f0f0f0"

    def __init__(self, *, namespace: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.namespace = namespace

    def execute(self, context: Any) -> dict:
        try:
            result = self.maintain()
        except PipelinesError as exc:
            raise fail_clearly(self, context, exc) from None
        RESULTS[f"{self.dag_id}.{self.task_id}"] = result
        return result

    def maintain(self) -> dict:  # pragma: no cover
        raise NotImplementedError


class OptimizeOperator(MaintenanceOperator):
    """Compact each table's small files (Delta's optimize): one commit per table; a table a
    writer commits to meanwhile is left for the next run."""

    def maintain(self) -> dict:
        from pipelines.steps.maintenance import optimize

        done = optimize(self.project, self.lake)
        self.log.info(
            "compacted %s files into %s in %s tables", done.removed, done.added, done.tables
        )
        for path in done.beaten:
            self.log.warning("%s: not compacted, a writer committed first", path)
        return done.as_dict()


class VacuumOperator(MaintenanceOperator):
    """Delete each table's files that no version of the last ``retention_hours`` needs (Delta's
    vacuum, full: also files no commit names).

    :param retention_hours: the namespace's ``retention_hours`` (at least
        :data:`~pipelines.lake.delta.MIN_RETENTION_HOURS`: a commit in flight writes its files
        before it commits them)
    """

    def __init__(self, *, namespace: str, retention_hours: float, **kwargs: Any) -> None:
        super().__init__(namespace=namespace, **kwargs)
        self.retention_hours = retention_hours

    def maintain(self) -> dict:
        from pipelines.steps.maintenance import vacuum

        done = vacuum(self.project, self.lake, self.retention_hours)
        self.log.info(
            "deleted %s files no version of the last %s h needs, in %s tables",
            done.deleted,
            done.retention_hours,
            done.tables,
        )
        return done.as_dict()


def maintenance_dag(where: NamespaceSpec, lake: Lake, shared: dict | None = None) -> DAG:
    """``{namespace}__maintenance``: ``optimize >> vacuum``, on the namespace's ``maintenance``
    schedule (none when ``PIPELINES_SCHEDULES=off``: it runs when triggered).

    :param where: a namespace that has a maintenance schedule (:attr:`NamespaceSpec.maintenance`)
    :param shared: arguments every DAG of the parse gets (see
        :func:`pipelines.wiring.factory.dag_defaults`)
    """
    if where.maintenance is None:
        raise ValueError(f"namespace {where.name!r} has no maintenance schedule")
    cron, retention = where.maintenance
    with DAG(
        dag_id=environment.maintenance_dag_id(lake.namespace),
        schedule=PipelinesTimetable(cron, timezone="UTC")
        if environment.schedules_enabled()
        else None,
        start_date=None,  # catchup is off: a date of the parse would make a new version daily
        catchup=False,
        max_active_runs=1,
        default_args=default_args("pipelines", where.pool),
        description=f"optimize, then vacuum every table of {lake.namespace}",
        doc_md=(
            f"### Maintenance of {code(lake.namespace)}\n\n`optimize` compacts the small files of "
            "every table the namespace writes; `vacuum` then deletes the files no version of "
            f"the last {retention:g} h needs ({code(f'{where.kind}.maintenance')} and "
            "`retention_hours` in `include/namespaces.yaml`)."
        ),
        tags=["pipelines", "maintenance", lake.namespace, where.kind],
        **(shared or {}),
    ) as dag:
        optimize = OptimizeOperator(task_id=OPTIMIZE, namespace=lake.namespace)
        vacuum = VacuumOperator(task_id=VACUUM, namespace=lake.namespace, retention_hours=retention)
        optimize >> vacuum
    return dag
