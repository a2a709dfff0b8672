"""The timetable's path before the package was laid out by layer: DAGs serialized then name
``pipelines.timetable.PipelinesTimetable``. Airflow finds a plugin's timetable by its class's
module and name, so this is the same class under the old name, and the plugin registers both."""

from pipelines.wiring.timetable import PipelinesTimetable as _Moved


class PipelinesTimetable(_Moved):
    """:class:`pipelines.wiring.timetable.PipelinesTimetable` under its old path."""
