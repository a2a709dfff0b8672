"""The one Airflow plugin of the project: registers the timetables so the scheduler can load them.

The ``pipelines`` package itself is kept out of Airflow's plugin loader by ``.airflowignore``
(the loader imports every module as a top-level name, and ``runtime/secrets.py`` would shadow the
standard library's ``secrets``). The timetable is registered under its path and under the one it
had before the package was laid out by layer, which DAGs serialized then still name.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pipelines import timetable as before_layers
from pipelines.wiring.timetable import PipelinesTimetable, TriggeredTimetable


class PipelinesPlugin(AirflowPlugin):
    """Registers :class:`~pipelines.wiring.timetable.PipelinesTimetable` and its unscheduled
    twin, :class:`~pipelines.wiring.timetable.TriggeredTimetable`."""

    name = "pipelines"
    timetables = [PipelinesTimetable, TriggeredTimetable, before_layers.PipelinesTimetable]
