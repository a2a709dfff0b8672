"""AirflowRest's reading of runs, on the generated client's answers (no server)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from pipelines.runs.airflow_rest import AirflowRest


def _latest(**run) -> str:
    """The day ``latest_runs`` gives a DAG whose newest run is ``run``."""
    fields = {"logical_date": None, "partition_key": None, "state": "failed", "duration": 1.0}
    answer = SimpleNamespace(dag_runs=[SimpleNamespace(dag_run_id="r1", **{**fields, **run})])
    airflow = AirflowRest("http://127.0.0.1:1", token="t")
    airflow._apis = lambda name: SimpleNamespace(get_dag_runs=lambda *a, **k: answer)
    return airflow.latest_runs(["d"])["d"].ds


def test_a_partitioned_runs_day_is_its_partition_key_not_when_it_ran():
    ran = dt.datetime(2024, 1, 7, 3, tzinfo=dt.UTC)  # a rewrite signal reran key 2024-01-04
    assert _latest(run_after=ran, partition_key="2024-01-04") == "2024-01-04"
    assert _latest(run_after=ran, logical_date=dt.datetime(2024, 1, 5, tzinfo=dt.UTC)) == (
        "2024-01-05"
    )
    assert _latest(run_after=ran) == "2024-01-07"  # a manual run without a date
