"""The parent DAG of a cookbook: one trigger task per child, then the cookbook's checks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, BaseOperator

from pipelines.common.partitions import DAILY, format_date
from pipelines.exceptions import PipelinesError
from pipelines.lake.lake import Lake
from pipelines.project.config import Kind, Project
from pipelines.project.cookbooks import CookbookSpec
from pipelines.project.namespaces import NamespaceSpec
from pipelines.project.table_config import record_cookbook
from pipelines.runtime import environment
from pipelines.runtime.environment import child_run_id
from pipelines.wiring.docs import code, text
from pipelines.wiring.operators import RESULTS, ReachesTheLake, default_args, fail_clearly
from pipelines.wiring.task_ids import VERIFY, trigger
from pipelines.wiring.timetable import timetable_of


def replayed_day(context: Any, replay: str | None) -> tuple[dt.datetime | None, bool]:
    """``(logical date, replayed)``: the date a cookbook run's children get, and whether it is
    a replay. The master namespace's scheduled e2e run replays its sample day ``replay``; any
    other run keeps its own logical date."""
    run_type = getattr(context.get("dag_run"), "run_type", None)
    scheduled = getattr(run_type, "value", run_type) == "scheduled"  # the Task SDK's enum
    if replay and scheduled:
        return _midnight(replay), True
    return context.get("logical_date"), False


class TriggerChildOperator(TriggerDagRunOperator):
    """Trigger a child for the parent's logical date, under a run id derived from the parent's.

    An existing child run with that id is cleared and run again (``reset_dag_run``), so clearing
    and re-running the parent never creates a second child run. A paused child fails the task:
    Airflow 3 never starts a paused DAG's runs, so waiting for one would never end.
    """

    def __init__(self, *, cookbook: str, replay: str | None = None, **kwargs: Any) -> None:
        """:param replay: the sample day the scheduled runs replay (the master namespace's e2e
        cookbook): every hour re-runs the same child runs for that day"""
        kwargs.setdefault("reset_dag_run", True)
        kwargs.setdefault("wait_for_completion", True)
        kwargs.setdefault("poke_interval", environment.trigger_poke_seconds())
        kwargs.setdefault("openlineage_inject_parent_info", False)
        super().__init__(**kwargs)
        self.cookbook = cookbook
        self.replay = replay

    def execute(self, context: Any):
        logical, replayed = replayed_day(context, self.replay)
        run_after = logical or context["dag_run"].run_after
        self.logical_date = logical.isoformat() if logical is not None else None
        self.run_after = run_after.isoformat()
        parent_run = context["run_id"]
        if replayed:
            parent_run = f"replay__{logical:%Y-%m-%d}"  # one child run per replayed day
        self.trigger_run_id = child_run_id(self.dag_id, parent_run)
        self.conf = dict(context["dag_run"].conf or {})  # the parent's conf goes on to the child
        if logical is not None:
            self._refuse_foreign_run(context, logical)
        if self.wait_for_completion:
            self._refuse_paused_child(context)
        return super().execute(context)

    def _refuse_paused_child(self, context: Any) -> None:
        if context["ti"].get_dag(self.trigger_dag_id).is_paused:
            exc = PipelinesError(
                f"{self.trigger_dag_id} is paused: Airflow would queue its run for cookbook "
                f"{self.cookbook!r} and never start it; unpause it"
            )
            raise fail_clearly(self, context, exc)

    def _refuse_foreign_run(self, context: Any, logical) -> None:
        """Airflow allows one run per logical date: say so clearly when another one holds it."""
        ti = context["ti"]
        same_date = ti.get_dr_count(self.trigger_dag_id, logical_dates=[logical])
        ours = ti.get_dr_count(self.trigger_dag_id, run_ids=[self.trigger_run_id])
        if same_date > ours:
            exc = PipelinesError(
                f"{self.trigger_dag_id} already has a run for {logical:%Y-%m-%d} that cookbook "
                f"{self.cookbook!r} did not create (scheduled or manual); clear that run to re-run "
                "the date, or delete it so that the cookbook can run the date (in a namespace "
                "driven by cookbooks, set PIPELINES_SCHEDULES=off)"
            )
            raise fail_clearly(self, context, exc)


class CookbookCheckOperator(ReachesTheLake, BaseOperator):
    """Assert the outputs of the cookbook's steps: keys unique and not null, row counts, the
    workflows' metrics for the run's day."""

    template_fields = ()
    returns_dag_result = True  # its counts are the run's result (see pipelines.runs.outputs)

    def __init__(
        self, *, cookbook: str, namespace: str, replay: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.cookbook = cookbook
        self.namespace = namespace
        self.replay = replay

    def execute(self, context: Any) -> dict:
        from pipelines.inspection.cookbook_checks import verify  # pandas: not at parse time

        logical, _ = replayed_day(context, self.replay)
        ds = format_date(logical) if logical is not None else None
        book = self.project.require(self.cookbook, Kind.COOKBOOK)
        report = verify(self.project, book, self.lake, ds)
        for line in report.lines():
            self.log.info("%s", line)
        try:
            report.raise_for_failures()
        except PipelinesError as exc:
            raise fail_clearly(self, context, exc) from None
        record_cookbook(self.lake, book.spec)  # for `plan`
        RESULTS[f"{self.dag_id}.{self.task_id}"] = report.as_dict()
        return report.as_dict()


def cookbook_dag(
    book: CookbookSpec, project: Project, lake: Lake, where: NamespaceSpec | None = None
) -> DAG:
    """``{namespace}__cookbook__{name}``: trigger tasks in the children's order, then ``verify``.

    Its schedule follows the namespace's kind: serving, the cookbook's own; master, only its e2e
    cookbook, on the namespace's e2e schedule, replaying the sample day; research, none.
    """
    where = where or project.namespace(lake.namespace)
    children = {child.name: child for child in project.require(book.name, Kind.COOKBOOK).children}
    cron, replay = book.cron if where.schedules else None, None
    e2e = project.e2e_of(book.name, where)
    if e2e is not None:
        cron, replay = e2e
    with DAG(
        dag_id=environment.cookbook_dag_id(book.name, lake.namespace),
        # unscheduled, a run triggered for D still covers [D, next D) of the days it runs for
        schedule=timetable_of(cron) if cron else timetable_of(book.cron or DAILY, scheduled=False),
        # a constant start (catchup is off): a date of the parse would make a new DAG version
        # every day
        start_date=_midnight(replay) if replay else None,
        catchup=False,
        max_active_runs=1,
        default_args=default_args("pipelines", where.pool) | {"retries": 0},
        description=book.description[:200] or f"cookbook {book.name}",
        doc_md=f"### Cookbook {code(book.name)}\n\nSteps: "
        + ", ".join(code(c.name) for c in book.children)
        + (f"\n\nScheduled runs replay {text(replay)} (namespace kind master)." if replay else ""),
        tags=["pipelines", "cookbook", lake.namespace, where.kind],
    ) as dag:
        tasks = {
            child.name: TriggerChildOperator(
                task_id=trigger(child.name),
                cookbook=book.name,
                replay=replay,
                trigger_dag_id=children[child.name].dag_id(lake.namespace),
            )
            for child in book.children
        }
        for child in book.children:
            for dep in child.after:
                tasks[dep] >> tasks[child.name]
        verify = CookbookCheckOperator(
            task_id=VERIFY, cookbook=book.name, namespace=lake.namespace, replay=replay
        )
        list(tasks.values()) >> verify
    return dag


def _midnight(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.UTC)
