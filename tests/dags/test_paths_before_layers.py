"""A DAG serialized before the package was laid out by layer still loads: its timetable and its
deadline callback name the old paths (``pipelines.timetable``, ``pipelines.freshness``).

``serialized/serving__orders.before_layers.json`` is ``DagSerialization.to_dict`` of the sample's
``serving__orders`` (it has a freshness allowance, so a deadline alert) as commit 70d9c4d built it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
from airflow._shared.module_loading import import_string
from airflow.serialization.decoders import decode_deadline_alert
from airflow.serialization.serialized_objects import DagSerialization

from pipelines.wiring.freshness import log_late
from pipelines.wiring.timetable import PipelinesTimetable

BEFORE = Path(__file__).parent / "serialized" / "serving__orders.before_layers.json"


def test_a_dag_serialized_before_the_move_deserializes_with_its_timetable_and_deadline():
    data = json.loads(BEFORE.read_text())
    assert data["dag"]["timetable"]["__type"] == "pipelines.timetable.PipelinesTimetable"
    dag = DagSerialization.from_dict(data)
    assert isinstance(dag.timetable, PipelinesTimetable)
    day = pendulum.datetime(2024, 1, 2, tz="UTC")
    interval = dag.timetable.infer_manual_data_interval(run_after=day)
    assert (interval.start, interval.end) == (day, day.add(days=1))
    (alert,) = (decode_deadline_alert(encoded) for encoded in dag.deadline)
    assert alert.callback.path == "pipelines.freshness.log_late"
    assert import_string(alert.callback.path) is log_late


def test_a_dag_serialized_now_names_the_new_paths_and_reads_back(monkeypatch):
    from pipelines.wiring.factory import build_dags

    monkeypatch.setenv("PIPELINES_NAMESPACE", "serving")
    data = DagSerialization.to_dict(build_dags()["serving__orders"])
    assert data["dag"]["timetable"]["__type"] == "pipelines.wiring.timetable.PipelinesTimetable"
    assert "pipelines.wiring.freshness.log_late" in json.dumps(data)
    assert isinstance(DagSerialization.from_dict(data).timetable, PipelinesTimetable)
