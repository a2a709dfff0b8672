"""A run's outputs by plain name, from what its result tasks returned (pipelines.runs.outputs)."""

from __future__ import annotations

import pytest

from pipelines.project.config import Kind
from pipelines.runs.outputs import Outputs, Tables, latest, outputs_of, with_children
from pipelines.wiring import task_ids
from pipelines.wiring.operators import (
    AggregateOperator,
    CheckKeysOperator,
    ExtractOperator,
    MergeOperator,
    WorkflowOperator,
)
from pipelines.wiring.task_ids import VERIFY

DATASET_RESULTS = {
    "ingest.extract": {"rows": 5, "ds": "2024-01-02"},
    "clean.merge": {
        "raw_rows": 5,
        "delivered": 3,
        "quarantined": 2,
        "superseded": 1,
        "touched": ["2024-01-01", "2024-01-02"],
        "cleaned_rows": 3,
        "reshaped": [],
    },
    "check.check_keys": {"rows_checked": 3, "partitions": ["2024-01-02"], "checks": "passed"},
    "aggregate.aggregate": {"daily_revenue": 2, "_details": {"daily_revenue": {"rows": 2}}},
}


def test_the_result_tasks_are_the_operators_tasks():
    operators = [ExtractOperator, MergeOperator, CheckKeysOperator, AggregateOperator]
    paths = [op.task_path() for op in (*operators, WorkflowOperator)]
    assert list(task_ids.RESULT_TASKS) == [*paths, VERIFY]
    assert all(op.returns_dag_result for op in (*operators, WorkflowOperator))


def test_a_dataset_run_gives_its_counts_aggregates_and_checks():
    assert outputs_of(Kind.DATASET, DATASET_RESULTS) == {
        "rows_raw": 5,
        "rows_cleaned": 3,
        "rows_quarantined": 2,
        "rows_superseded": 1,
        "rows_checked": 3,
        "checks": "passed",
        "rows_daily_revenue": 2,
    }


def test_a_run_that_stopped_gives_what_its_finished_tasks_recorded():
    partial = {k: v for k, v in DATASET_RESULTS.items() if k == "ingest.extract"}
    assert outputs_of(Kind.DATASET, partial) == {"rows_raw": 5}
    assert outputs_of(Kind.DATASET, {}) == {}
    assert outputs_of(Kind.WORKFLOW, {}) == {} and outputs_of(Kind.COOKBOOK, {}) == {}


def test_a_workflow_run_gives_its_metrics_and_rows():
    ran = {"workflow.run": {"ds": "d", "rows": 4, "metrics": {"accuracy": 0.75}, "inputs": {}}}
    assert outputs_of(Kind.WORKFLOW, ran) == {"rows_written": 4, "accuracy": 0.75}


def test_a_cookbook_gives_its_checks_its_childrens_outputs_and_unique_bare_metrics():
    own = outputs_of(Kind.COOKBOOK, {VERIFY: {"passed": 7, "failed": 1}})
    assert own == {"passed": 7, "failed": 1, "checked": 8}
    children = {
        "orders": {"rows_raw": 5},
        "model_a": {"accuracy": 0.9, "rows_written": 3, "loss": 0.1},
        "model_b": {"accuracy": 0.8, "rows_written": 2, "passed": 99},
    }
    found = with_children(own, children, workflows=["model_a", "model_b"])
    assert found["orders.rows_raw"] == 5 and found["model_b.accuracy"] == 0.8
    assert found["loss"] == 0.1  # only model_a publishes it
    assert "accuracy" not in found and "rows_written" not in found  # two children publish it
    assert found["passed"] == 7  # the cookbook's own output wins over a child's bare name
    assert "rows_raw" not in found  # a dataset's counts stay under its name


def test_a_range_keeps_each_outputs_latest_value():
    assert latest([{"a": 1, "b": 2}, {"a": 3}, {}]) == {"a": 3, "b": 2}


def test_outputs_are_values_and_lazily_read_tables(monkeypatch):
    reads = []
    monkeypatch.setattr(
        "pipelines.inspection.reader.read",
        lambda name, layer, ns: reads.append((name, layer, ns)) or "T",
    )
    tables = Tables(["cleaned.orders", "raw.orders"], "ns", ["2024-01-02"])
    outputs = Outputs({"rows_raw": 5}, tables, "2024-01-02")
    assert list(outputs) == ["rows_raw", "cleaned.orders", "raw.orders"] and len(outputs) == 3
    assert outputs.metrics == {"rows_raw": 5} and reads == []
    assert outputs["cleaned.orders"] == "T" == outputs.tables["cleaned.orders"]
    assert reads == [("orders", "cleaned", "ns")]  # read once, then kept
    with pytest.raises(KeyError, match="'accuracy'; outputs are: rows_raw, cleaned.orders"):
        outputs["accuracy"]
    with pytest.raises(KeyError, match="tables are: cleaned.orders, raw.orders"):
        tables["aggregated.nope"]
