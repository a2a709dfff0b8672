"""One DAG run in this process without a scheduler or a metadata database (the default local run).

The run is the manual run ``dag.test()`` would create for the logical date: run id
``manual__{run_after}``, the data interval the DAG's timetable gives a manual run of that date,
no conf, no partition key. Its tasks run one at a time in dependency order, each as a worker runs
it (:class:`~pipelines.runs.supervisor.LocalSupervisor`), retried as its ``retries`` say. A task
matching ``skip`` is marked successful without running (``dag.test``'s
``mark_success_pattern``); every task has the default trigger rule, ``all_success``, so a failed
task makes those downstream ``upstream_failed`` and a skipped one makes them ``skipped``. A DAG
with another trigger rule, or depending on its previous run, is refused rather than run
differently from Airflow.
"""

from __future__ import annotations

import datetime as dt
import graphlib
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from pipelines.exceptions import PipelinesError
from pipelines.runs.supervisor import UNAVAILABLE, AssetEvent, LocalSupervisor, TaskTry

ENDED = ("success", "failed", "skipped")  # how a task's last try can end here
BROKEN = ("failed", "upstream_failed")  # what fails the tasks downstream and a leaf the run


@dataclass
class RunRecord:
    """What a DAG run recorded: its state, each task's, the first failure, the asset events its
    tasks emitted (in the order they ran).

    :param error: what ended the first failed task, when known (None: it did not fail)
    """

    run_id: str
    state: str
    states: dict[str, str] = field(default_factory=dict)
    failed_task: str | None = None
    error: BaseException | None = None
    events: list[AssetEvent] = field(default_factory=list)


def run(
    dag: Any, logical_date: dt.datetime, skip: str | None = None, conf: dict | None = None
) -> RunRecord:
    """Run every task of ``dag`` for a manual run of ``logical_date``, upstream first.

    :param conf: the run's ``dag_run.conf`` (as a trigger's ``conf``)
    """
    refuse_what_differs(dag)
    dag_run = manual_run(dag, logical_date, conf)
    supervisor = LocalSupervisor()
    marked = re.compile(skip) if skip is not None else None
    record = RunRecord(dag_run.run_id, "running")
    for task_id in order(dag):
        task = dag.task_dict[task_id]
        state = blocked(task, record.states)
        if state is None and marked is not None and marked.fullmatch(task_id):
            state = "success"
        if state is None:
            ended = run_with_retries(supervisor, task, dag_run)
            state = ended.state
            record.events.extend(ended.events)
            if state == "failed" and record.failed_task is None:
                record.failed_task, record.error = task_id, ended.error
        record.states[task_id] = state
    leaves = [record.states[t.task_id] for t in dag.leaves]  # as the scheduler decides a run
    record.state = "failed" if any(s in BROKEN for s in leaves) else "success"
    return record


def order(dag: Any) -> list[str]:
    """The task ids, each after all of its upstream tasks (ties: the DAG's own order)."""
    graph = {task.task_id: task.upstream_task_ids for task in dag.tasks}
    return list(graphlib.TopologicalSorter(graph).static_order())


def blocked(task: Any, states: dict[str, str]) -> str | None:
    """``all_success``: ``upstream_failed`` after a failure, ``skipped`` after a skip, else None
    (the task runs)."""
    upstream = [states[u] for u in task.upstream_task_ids]
    if any(s in BROKEN for s in upstream):
        return "upstream_failed"
    if "skipped" in upstream:
        return "skipped"
    return None


def refuse_what_differs(dag: Any) -> None:
    """Say so for a task this runner would run differently from Airflow: another trigger rule
    than ``all_success``, or a dependency on the previous run (there is no history here)."""
    for task in dag.tasks:
        rule = str(getattr(task.trigger_rule, "value", task.trigger_rule))
        why = f"trigger rule {rule}" if rule != "all_success" else None
        if task.depends_on_past or task.wait_for_downstream:
            why = "a dependency on the previous run (depends_on_past, wait_for_downstream)"
        if why:
            raise PipelinesError(
                f"{dag.dag_id}: task {task.task_id} has {why}, which a local run does not "
                "honour: run with --airflow"
            )


def run_with_retries(supervisor: LocalSupervisor, task: Any, dag_run: Any) -> TaskTry:
    """Run ``task`` until it ends; between tries, wait as long as Airflow at least would."""
    try_number = 1
    while True:
        ended = supervisor.run_task(task, dag_run, try_number)
        if ended.state != "up_for_retry":
            break
        time.sleep(retry_wait(task, try_number, ended.retry_delay).total_seconds())
        try_number += 1
    if ended.state not in ENDED:  # deferred, rescheduled, waiting for a human: needs Airflow
        message = f"{task.task_id} is {ended.state}: that is {UNAVAILABLE}"
        return TaskTry("failed", PipelinesError(message))
    return ended


def retry_wait(task: Any, try_number: int, asked: dt.timedelta | None) -> dt.timedelta:
    """The task's retry delay after try ``try_number`` (exponential backoff without Airflow's
    jitter, which only lengthens it), or the delay the task's retry policy asked for."""
    if asked is not None:
        return asked
    delay = task.retry_delay
    multiplier = float(task.retry_exponential_backoff or 1.0)
    if multiplier > 0 and multiplier != 1.0:
        seconds = math.ceil(delay.total_seconds() * multiplier ** (try_number - 1))
        delay = dt.timedelta(seconds=max(seconds, 1))
    return min(delay, task.max_retry_delay) if task.max_retry_delay else delay


def manual_run(dag: Any, logical_date: dt.datetime, conf: dict | None = None) -> Any:
    """The Task SDK's ``DagRun`` of a manual run for ``logical_date``, started now, as
    ``dag.test()`` makes it (its tasks see it as ``dag_run``)."""
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType

    run_after = dt.datetime.now(dt.UTC)
    interval = manual_interval(dag.timetable, logical_date)
    made = DagRun(
        dag_id=dag.dag_id,
        run_id=f"manual__{run_after.isoformat()}",  # DagRun.generate_run_id for a manual run
        logical_date=logical_date,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
        run_after=run_after,
        start_date=logical_date,  # dag.test() starts its run "at" the logical date
        end_date=None,
        run_type=DagRunType.MANUAL,
        state=DagRunState.RUNNING,
        conf=dict(conf or {}),
        consumed_asset_events=[],
        partition_key=None,
    )
    return DagRun.model_validate_json(made.model_dump_json())  # as a worker reads it: from JSON


def manual_interval(timetable: Any, logical_date: dt.datetime) -> Any:
    """The data interval a manual run of ``logical_date`` gets from the DAG's timetable, as the
    scheduler's core timetable infers it (``dag.test()`` asks the same).

    A Task SDK timetable is turned into its core twin, except those whose twin has no interval
    of its own (no schedule, once, continuous, on assets, partitioned): those give ``[D, D]``,
    and decoding them would import the scheduler's models.
    """
    import pendulum
    from airflow.sdk.definitions.timetables.assets import (
        AssetOrTimeSchedule,
        AssetTriggeredTimetable,
        PartitionedAtRuntime,
    )
    from airflow.sdk.definitions.timetables.simple import (
        ContinuousTimetable,
        NullTimetable,
        OnceTimetable,
    )
    from airflow.timetables.base import DataInterval, Timetable

    when = pendulum.instance(logical_date)
    if isinstance(timetable, AssetOrTimeSchedule):  # assets or a clock: the clock decides
        return manual_interval(timetable.timetable, logical_date)
    trivial = (NullTimetable, OnceTimetable, ContinuousTimetable, AssetTriggeredTimetable)
    if isinstance(timetable, (*trivial, PartitionedAtRuntime)):
        return DataInterval.exact(when)
    if not isinstance(timetable, Timetable):
        from airflow.serialization.encoders import coerce_to_core_timetable

        timetable = coerce_to_core_timetable(timetable)
    return timetable.infer_manual_data_interval(run_after=when)
