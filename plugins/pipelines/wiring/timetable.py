"""The timetable of every pipelines DAG: scheduled, manual and test runs for D cover [D, next D).

Airflow's ``CronDataIntervalTimetable`` gives the scheduled run for D the interval ``[D, next D)``
but a manual or ``dags test`` run for D the interval ``[prev D, D)``. Partitions are keyed by the
interval start, so both must agree: this subclass changes only the manual inference. A DAG that
is not scheduled (every DAG of a research or master namespace, ``PIPELINES_SCHEDULES=off``, a
cookbook without a schedule) has :class:`TriggeredTimetable`: it schedules nothing, as
``schedule=None`` does, but a run triggered for D still covers ``[D, next D)`` of its cron, where
Airflow's ``NullTimetable`` records ``[D, D)``. Both are core timetables, registered by
``plugins/pipelines_plugin.py`` so the scheduler can deserialize them.
"""

from __future__ import annotations

import functools

from airflow.timetables.base import DataInterval
from airflow.timetables.interval import CronDataIntervalTimetable
from pendulum import DateTime


class PipelinesTimetable(CronDataIntervalTimetable):
    """Cron data intervals whose manual runs for D cover ``[D, next D)``.

    A ``run_after`` between schedule points (a trigger with no date, at "now") gets the latest
    complete interval, as Airflow's own timetable does.
    """

    description = "Cron data intervals; a manual run for D covers [D, next D)"

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        start = self._align_to_prev(run_after)
        if start == run_after:
            return DataInterval(start=start, end=self._get_next(start))
        return DataInterval(start=self._get_prev(start), end=start)

    @property
    def summary(self) -> str:
        return self._expression


class TriggeredTimetable(PipelinesTimetable):
    """A cron that starts no run: runs come only when triggered (the CLI, the client, the UI, a
    cookbook, ``airflow dags test``), and the one for D covers ``[D, next D)`` of the cron, as a
    scheduled run would, so Airflow records the interval its tasks process."""

    can_be_scheduled = False
    periodic = False
    description = "Never, external triggers only; a run for D covers [D, next D)"

    def next_dagrun_info(self, *, last_automated_data_interval, restriction):
        return None

    @property
    def summary(self) -> str:
        return "None"  # what Airflow shows for a DAG without a schedule


@functools.lru_cache(maxsize=256)
def timetable_of(cron: str, *, scheduled: bool = True) -> PipelinesTimetable:
    """The timetable of a DAG on ``cron``: :class:`PipelinesTimetable`, or when its namespace (or
    its entry) schedules nothing, :class:`TriggeredTimetable`. One per distinct schedule, shared
    by the DAGs that use it (building one parses the cron expression and its description: per
    DAG that was a fifth of the parse)."""
    return (PipelinesTimetable if scheduled else TriggeredTimetable)(cron, timezone="UTC")
