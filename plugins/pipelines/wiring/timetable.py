"""The timetable of every pipelines DAG: scheduled, manual and test runs for D cover [D, next D).

Airflow's ``CronDataIntervalTimetable`` gives the scheduled run for D the interval ``[D, next D)``
but a manual or ``dags test`` run for D the interval ``[prev D, D)``. Partitions are keyed by the
interval start, so both must agree: this subclass changes only the manual inference. It is a core
timetable, registered by ``plugins/pipelines_plugin.py`` so the scheduler can deserialize it.
"""

from __future__ import annotations

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
