"""The ``freshness`` column: parsed as a duration, turned into an Airflow deadline alert on each
dataset DAG that has one, and a callback that says which run is late in one line."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from pipelines.project.registry import parse_registry
from pipelines.wiring import freshness

HEADER = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,schedule,"
    "start_date,freshness\n"
)
ROW = (
    "orders,sample/o_{{ds}}.csv,csv,order_id,updated_at,order_date,incremental,{schedule},"
    "2024-01-01,{value}\n"
)
NOTIFIED: list[dict] = []


def _dataset(value: str, schedule: str = "@daily"):
    registry = parse_registry(HEADER + ROW.format(value=value, schedule=schedule))
    return registry, (registry.datasets[0] if registry.datasets else None)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("30m", dt.timedelta(minutes=30)),
        ("2h", dt.timedelta(hours=2)),
        ("1d", dt.timedelta(days=1)),
        (" 90 min ", dt.timedelta(minutes=90)),
        ("", None),
    ],
)
def test_an_allowance_is_a_duration(value, expected):
    registry, dataset = _dataset(value)
    assert not registry.problems
    assert dataset.freshness == expected


@pytest.mark.parametrize("value", ["2", "2x", "0h", "1.5h", "-1d", "soon"])
def test_a_wrong_allowance_names_line_column_and_the_form(value):
    registry, dataset = _dataset(value)
    assert dataset is None
    (problem,) = registry.problems
    assert str(problem).startswith("registry.csv:2: freshness:"), str(problem)
    assert "duration such as 30m, 2h or 1d" in str(problem)


@pytest.mark.parametrize("allowance", [dt.timedelta(minutes=90), dt.timedelta(days=2)])
def test_describe_writes_an_allowance_as_the_registry_does(allowance):
    assert _dataset(freshness.describe(allowance))[1].freshness == allowance


@pytest.mark.parametrize(
    "schedule, period", [("@daily", dt.timedelta(days=1)), ("@monthly", dt.timedelta(days=31))]
)
def test_the_deadline_is_the_longest_interval_plus_the_allowance(schedule, period):
    alert = freshness.deadline_alert("serving__orders", schedule, dt.timedelta(hours=2))
    assert alert.interval == period + dt.timedelta(hours=2)
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    assert alert.callback.path == "pipelines.wiring.freshness.log_late"
    assert alert.callback.kwargs == {"dag_id": "serving__orders", "allowance": "2h"}


def test_a_scheduled_dataset_dag_carries_its_alert_through_serialization(monkeypatch):
    from airflow.serialization.serialized_objects import DagSerialization

    from pipelines.wiring.factory import build_dags

    monkeypatch.setenv("PIPELINES_NAMESPACE", "serving")
    dags = build_dags()
    (alert,) = dags["serving__orders"].deadline  # the sample registry gives orders 1d
    assert alert.interval == dt.timedelta(days=2)
    assert not dags["serving__customers"].deadline  # no allowance, no alert
    back = DagSerialization.from_dict(DagSerialization.to_dict(dags["serving__orders"]))
    assert back.deadline, "the alert did not survive serialization"
    monkeypatch.setenv("PIPELINES_NAMESPACE", "research_x")  # schedules nothing: no deadline
    assert not build_dags()["research_x__orders"].deadline


def _context(run_type: str) -> dict:
    return {
        "dag_run": {
            "dag_run_id": "scheduled__2024-01-02T00:00:00+00:00",  # as the REST API names it
            "run_type": run_type,
            "state": "running",
            "data_interval_end": "2024-01-03T00:00:00Z",
        },
        "deadline": {"id": "x", "deadline_time": "2024-01-04T00:00:00Z"},
    }


def notify(**facts):
    NOTIFIED.append(facts)


def test_a_late_scheduled_run_is_one_warning_and_reaches_the_notifier(caplog, monkeypatch):
    NOTIFIED.clear()
    monkeypatch.setenv("PIPELINES_LATE_NOTIFIER", f"{__name__}.notify")
    with caplog.at_level(logging.INFO, logger="pipelines.freshness"):
        freshness.log_late(dag_id="serving__orders", allowance="1d", context=_context("scheduled"))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "late: serving__orders run scheduled__2024-01-02T00:00:00+00:00 (interval ending "
        "2024-01-03T00:00:00Z) had not finished 1d after its interval ended (deadline "
        "2024-01-04T00:00:00Z, state running)"
    )
    assert [n["message"] for n in NOTIFIED] == [record.getMessage()]
    assert NOTIFIED[0]["dag_id"] == "serving__orders"


def test_a_manual_run_of_a_past_day_is_not_reported(caplog, monkeypatch):
    NOTIFIED.clear()
    monkeypatch.setenv("PIPELINES_LATE_NOTIFIER", f"{__name__}.notify")
    with caplog.at_level(logging.INFO, logger="pipelines.freshness"):
        freshness.log_late(dag_id="serving__orders", allowance="1d", context=_context("manual"))
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "a manual run, not reported" in caplog.records[0].getMessage()
    assert NOTIFIED == []
