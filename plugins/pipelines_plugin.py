"""The one Airflow plugin of the project: registers the timetable so the scheduler can load it.

The ``pipelines`` package itself is kept out of Airflow's plugin loader by ``.airflowignore``
(the loader imports every module as a top-level name, and ``runtime/secrets.py`` would shadow the
standard library's ``secrets``). The timetable is registered under its path and under the one it
had before the package was laid out by layer, which DAGs serialized then still name.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pipelines import timetable as before_layers
from pipelines.wiring.timetable import PipelinesTimetable


class PipelinesPlugin(AirflowPlugin):
    """Registers :class:`~pipelines.wiring.timetable.PipelinesTimetable`."""

    name = "pipelines"
    timetables = [PipelinesTimetable, before_layers.PipelinesTimetable]
