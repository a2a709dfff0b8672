"""Workflows in-process: the refund_model cookbook for three days, reruns, failures that write
nothing, a late correction, --upstream, and the metrics through the client."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import pipelines
from pipelines.client import Client
from pipelines.common.partitions import Layer
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project
from tests.conftest import data_columns

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


def workflow_table(name: str) -> pd.DataFrame:
    return data_columns(pipelines.read(name, "workflows"))


def version(name: str) -> int:
    return Lake.from_env().workflow(name).snapshot().version


@pytest.fixture
def cooked(home, airflow_db):
    """refund_model run for three days: ingest -> features -> train -> verify."""
    results = Client().submit("refund_model", DAYS[0], end=DAYS[-1])
    assert results.ok, [(r.dag_id, r.ds, r.error) for r in results.runs if not r.ok]
    return results


def test_the_cookbook_runs_features_and_training_for_each_day_and_reports_accuracy(cooked):
    ran = [(r.dag_id, r.ds) for r in cooked.runs if r.ds == DAYS[1]]
    assert ran == [
        ("local__orders", DAYS[1]),
        ("local__customers", DAYS[1]),
        ("local__workflow__customer_features", DAYS[1]),
        ("local__workflow__train_refund_model", DAYS[1]),
        ("local__cookbook__refund_model", DAYS[1]),
    ]
    features = pipelines.read("customer_features", "workflows")
    assert sorted(features["ds"].unique()) == DAYS
    day3 = pipelines.read("customer_features", "workflows", as_of=DAYS[2]).set_index("customer_id")
    # the 3-day window on orders: c1 ordered 1001, 1003 (day 1) and 1008 (day 3)
    assert day3.loc["c1", "orders"] == 3 and bool(day3.loc["c2", "refunded"])
    assert "c3" not in day3.index  # gone from the newest customers snapshot at or before day 3
    accuracy = cooked.outputs["accuracy"]
    assert isinstance(accuracy, float) and 0.5 <= accuracy <= 1.0
    assert cooked.outputs["train_refund_model.training_rows"] == len(day3)
    metrics = cooked.outputs.metrics
    assert {k: v for k, v in metrics.items() if "." not in k or "refund" in k} == {
        "train_refund_model.accuracy": accuracy,
        "train_refund_model.training_rows": len(day3),
        "train_refund_model.rows_written": 4,  # one row a model feature
        "accuracy": accuracy,
        "training_rows": len(day3),
        "passed": 12,  # the cookbook's own checks
        "failed": 0,
        "checked": 12,
    }
    # and each dataset's counts of the day, as its run recorded them
    assert metrics["orders.rows_raw"] == 4 and metrics["customers.rows_quarantined"] == 1
    assert metrics["orders.checks"] == "passed"
    assert "workflows.train_refund_model" in cooked.outputs


def test_a_rerun_writes_the_same_outputs_and_metrics(cooked):
    # the newest day: a rerun of an older one reads its inputs as later days left them
    before = {n: workflow_table(n) for n in ("customer_features", "train_refund_model")}
    versions = [version(n) for n in before]
    again = Client().submit("refund_model", DAYS[-1])
    assert again.ok and [version(n) for n in before] == [v + 1 for v in versions]
    for name, frame in before.items():
        pd.testing.assert_frame_equal(workflow_table(name), frame)
    assert (
        again.outputs["accuracy"]
        == pipelines.steps.workflow.metrics_of("train_refund_model", DAYS[-1], Lake.from_env())[
            "accuracy"
        ]
    )


def test_metrics_of_an_old_day_are_that_days(cooked):
    from pipelines.steps.workflow import metrics_of

    lake = Lake.from_env()
    rows = [metrics_of("train_refund_model", d, lake)["training_rows"] for d in DAYS]
    features = pipelines.read("customer_features", "workflows")
    assert rows == [int((features["ds"] == d).sum()) for d in DAYS]
    counted = lake.cleaned(load_project().dataset("orders")).snapshot()
    recorded = counted.run_metrics(DAYS[0])
    wrote = recorded.pop("wrote")  # what the day's run rewrote, and at which version
    assert recorded == {
        "raw": 6,
        "cleaned": 4,
        "quarantined": 2,
        "superseded": 1,
        "checks": "passed",
    }
    assert DAYS[0] in wrote["partitions"] and counted.wrote(DAYS[0])[0] == wrote["version"]


BROKEN = """
import pandas as pd

def raises(inputs, params, ds):
    raise RuntimeError("the model diverged on " + ds)

def duplicates(inputs, params, ds):
    return pd.DataFrame({"feature": ["a", "a"], "weight": [1.0, 2.0]})
"""


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            "raises",
            "train_refund_model: broken:raises raised RuntimeError: the model diverged on "
            "2024-01-02 (broken.py, line 5)",
        ),
        (
            "duplicates",
            "train_refund_model: primary_key feature: 1 duplicate and 0 null keys in the "
            "result; nothing was written",
        ),
    ],
)
def test_a_failing_function_fails_its_task_with_its_message_and_writes_nothing(
    cooked, home, function, message
):
    before, kept = version("train_refund_model"), workflow_table("train_refund_model")
    (home / "include" / "workflows" / "broken.py").write_text(BROKEN)
    declared = home / "include" / "workflows.yaml"
    declared.write_text(
        declared.read_text().replace("model:train_refund_model", f"broken:{function}")
    )
    outcome = Client().submit("train_refund_model", DAYS[1]).runs[-1]
    assert not outcome.ok and outcome.failed_task == "workflow.run"
    assert outcome.error == message
    assert version("train_refund_model") == before
    pd.testing.assert_frame_equal(workflow_table("train_refund_model"), kept)


def test_a_late_correction_then_a_rerun_changes_exactly_that_days_output(cooked, home):
    before = pipelines.read("customer_features", "workflows")
    source = home / "include" / "sample" / "orders" / f"orders_{DAYS[1]}.csv"
    text = source.read_text()
    corrected = text.replace("1006,c2,placed,30.00", "1006,c2,refunded,0.00")
    assert corrected != text
    source.write_text(corrected)
    assert Client().submit("orders", DAYS[1]).ok  # the late correction lands for day 2
    assert Client().submit("customer_features", DAYS[1]).ok
    after = pipelines.read("customer_features", "workflows")
    for day in DAYS:
        old, new = (data_columns(f[f["ds"] == day]) for f in (before, after))
        if day == DAYS[1]:
            assert not old.equals(new)
            c2 = new.set_index("customer_id").loc["c2"]  # 1002 refunded (day 3), 1006 now too
            assert c2["spend"] == 0.0 and bool(c2["refunded"]) and c2["orders"] == 2
        else:
            pd.testing.assert_frame_equal(new, old)


def test_a_missing_input_fails_in_one_line_and_upstream_runs_it_first(home, airflow_db, capsys):
    from pipelines.cli import main

    assert main(["run", "train_refund_model", "--date", DAYS[0]]) == 1
    out = capsys.readouterr().out
    assert (
        "workflow.run failed: train_refund_model: input features (workflows customer_features, 1d) "
        f"has no data for {DAYS[0]} yet: run customer_features for {DAYS[0]} first "
        f"(pipelines run customer_features --date {DAYS[0]}), or pass --upstream"
    ) in out
    assert main(["run", "train_refund_model", "--date", DAYS[0], "--upstream"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ran = [line.split()[1] for line in lines if line.startswith("ok ")]
    assert ran == [
        "local__orders",
        "local__customers",
        "local__workflow__customer_features",
        "local__workflow__train_refund_model",
    ]
    assert "accuracy" in lines[-2] and lines[-1] == "1/1 runs succeeded"


def test_backfill_runs_a_workflow_for_each_day(cooked, capsys):
    from pipelines.cli import main

    shutil.rmtree(Lake.from_env().workflow("customer_features").path)
    assert main(["backfill", "customer_features", "--start", DAYS[0], "--end", DAYS[-1]]) == 0
    assert "3/3 runs succeeded" in capsys.readouterr().out
    assert sorted(pipelines.read("customer_features", "workflows")["ds"].unique()) == DAYS


def test_a_changed_day_reruns_exactly_the_written_days_whose_windows_hold_it(cooked):
    from pipelines.project.config import load_project
    from pipelines.steps.window_inputs import rerun_days

    project, lake = load_project(), Lake.from_env()

    def days(workflow, layer, table, changed):
        return rerun_days(project, lake, workflow, Layer(layer), table, changed)

    # orders: a 3-day window; a late update to day 1 reaches the days 1 .. 3 written so far
    assert days("customer_features", "cleaned", "orders", [DAYS[0]]) == DAYS
    assert days("customer_features", "cleaned", "orders", [DAYS[2]]) == [DAYS[2]]
    assert days("customer_features", "cleaned", "orders", ["2024-01-09"]) == []  # not written
    # customers: snapshots, each day reads its own
    assert days("customer_features", "cleaned", "customers", [DAYS[1]]) == [DAYS[1]]
    assert days("train_refund_model", "workflows", "customer_features", [DAYS[0]]) == [DAYS[0]]
    assert days("train_refund_model", "cleaned", "orders", [DAYS[0]]) == []  # not an input


def test_a_day_that_failed_its_checks_has_not_landed_for_a_workflow(home, airflow_db):
    from pipelines.steps.check import record_checks

    assert Client().submit("orders", DAYS[0], end=DAYS[2]).ok  # its 3-day window is whole
    assert Client().submit("customers", DAYS[2]).ok
    customers = Lake.from_env().cleaned(load_project().dataset("customers"))
    record_checks(customers, DAYS[2], "failed: 1 duplicate primary keys")  # as a failed gate does
    outcome = Client().submit("customer_features", DAYS[2]).runs[-1]
    assert not outcome.ok
    assert outcome.error == (
        "customer_features: input customers (cleaned customers, all) failed its checks for "
        "2024-01-03 (1 duplicate primary keys): fix it and rerun customers for 2024-01-03"
    )


def test_a_failed_day_returns_no_metrics_of_an_earlier_run(cooked, home):
    (home / "include" / "workflows" / "broken.py").write_text(BROKEN)
    declared = home / "include" / "workflows.yaml"
    declared.write_text(declared.read_text().replace("model:train_refund_model", "broken:raises"))
    failed = Client().submit("train_refund_model", DAYS[1])
    assert not failed.ok and failed.outputs.metrics_day is None
    with pytest.raises(KeyError, match="accuracy"):
        failed.outputs["accuracy"]
