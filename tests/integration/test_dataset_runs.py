"""A dataset over consecutive days through the real DAGs and through the step functions: reruns,
reverse order and late updates all give the same data."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

import pipelines
from pipelines.steps.dataset import run_steps
from tests.conftest import data_columns

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
# order_id -> (status, dt) after the three sample deliveries; a CSV key is the text delivered
FINAL_ORDERS = {
    "1001": ("shipped", "2024-01-01"),  # day 3's "delivered" is stale (older updated_at)
    "1002": ("refunded", "2024-01-01"),  # late update of a day-1 order
    "1003": ("placed", "2024-01-01"),
    "1004": ("placed", "2024-01-03"),  # order_date changed: moved partitions
    "1005": ("placed", "2024-01-02"),
    "1006": ("placed", "2024-01-02"),  # delivered twice on day 2
    "1008": ("placed", "2024-01-03"),
}


def snapshot(*names):
    out = {}
    for name in names:
        out[f"cleaned.{name}"] = data_columns(pipelines.read(name, "cleaned"))
    for agg in ("daily_revenue", "customers_by_country", "events_by_type"):
        out[f"aggregated.{agg}"] = data_columns(pipelines.read(agg, "aggregated"))
    return out


def run_days(days, names=("orders", "customers", "events")):
    for day in days:
        for name in names:
            run_steps(name, day)


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        pd.testing.assert_frame_equal(a[key], b[key], check_dtype=False, obj=key)


def test_three_days_through_dag_test_then_rerun_is_identical(home, airflow_db):
    from pipelines.runs.local import run_dag

    for day in DAYS:
        assert run_dag("local__orders", day).ok
    cleaned = pipelines.read("orders", "cleaned")
    got = {r.order_id: (r.status, r.dt) for r in cleaned.itertuples()}
    assert got == FINAL_ORDERS
    assert cleaned["order_id"].is_unique
    quarantine = pipelines.read("orders", "quarantine")
    assert sorted(quarantine["_reason"]) == [
        "duplicate key in this delivery: superseded by a later version",
        "duplicate key in this delivery: superseded by a later version",
        "order_id: primary key is null",
        "updated_at: missing or not an ISO 8601 timestamp",
    ]
    before = {
        "cleaned": data_columns(cleaned),
        "agg": data_columns(pipelines.read("daily_revenue", "aggregated")),
    }
    for day in DAYS:  # rerun every day: nothing changes
        assert run_dag("local__orders", day).ok
    after = {
        "cleaned": data_columns(pipelines.read("orders", "cleaned")),
        "agg": data_columns(pipelines.read("daily_revenue", "aggregated")),
    }
    assert_same(before, after)


def test_dag_test_and_step_functions_write_the_same_data(home, airflow_db, tmp_path, monkeypatch):
    from pipelines.runs.local import run_dag

    for day in DAYS:
        assert run_dag("local__customers", day).ok
    via_airflow = data_columns(pipelines.read("customers", "cleaned"))
    monkeypatch.setenv("PIPELINES_LAKE", str(tmp_path / "other-lake"))
    run_days(DAYS, ["customers"])
    pd.testing.assert_frame_equal(via_airflow, data_columns(pipelines.read("customers")))


@pytest.mark.parametrize(
    "order", [DAYS[::-1], [DAYS[1], DAYS[0], DAYS[2]]], ids=["reverse", "shuffled"]
)
def test_any_run_order_gives_the_forward_result(home, monkeypatch, order):
    run_days(DAYS)
    forward = snapshot("orders", "customers", "events")
    monkeypatch.setenv("PIPELINES_LAKE", str(home / "lake-2"))
    run_days(order)
    assert_same(forward, snapshot("orders", "customers", "events"))


def test_every_permutation_and_repeats_of_orders(home, monkeypatch):
    run_days(DAYS, ["orders"])
    expected = data_columns(pipelines.read("orders"))
    for i, order in enumerate(itertools.permutations(DAYS)):
        monkeypatch.setenv("PIPELINES_LAKE", str(home / f"lake-p{i}"))
        run_days([*order, order[0]], ["orders"])
        pd.testing.assert_frame_equal(expected, data_columns(pipelines.read("orders")))


def test_duplicate_key_keeps_latest_incremental_field(home):
    run_days(["2024-01-01"], ["orders"])
    row = pipelines.read("orders").set_index("order_id").loc["1002"]
    # 09:30Z "placed" vs 11:00+01:00 (= 10:00Z) "paid": the later instant wins
    assert row["status"] == "paid"
    assert str(row["updated_at"]) == "2024-01-01 10:00:00+00:00"


def test_full_snapshot_losing_rows_loses_them_in_the_newest_only(home):
    run_days(DAYS, ["customers"])
    newest = pipelines.read("customers")
    assert set(newest["ds"]) == {"2024-01-03"}
    assert set(newest["customer_id"]) == {"c1", "c2", "c4", "c6"}  # c3, c5 are gone
    first = pipelines.read("customers", as_of="2024-01-01")
    assert set(first["customer_id"]) == {"c1", "c2", "c3", "c4", "c5"}
    # running an old day again does not replace today's state
    run_steps("customers", "2024-01-01")
    assert set(pipelines.read("customers")["ds"]) == {"2024-01-03"}
    by_country = pipelines.read("customers_by_country", "aggregated")
    assert by_country["customers"].sum() == 4


def test_raw_keeps_exactly_what_the_source_gave(home):
    run_days(DAYS, ["orders", "events"])
    raw = pipelines.read("orders", "raw", as_of="2024-01-02")
    assert len(raw) == 5 and set(raw["ds"]) == {"2024-01-02"}
    assert raw["updated_at"].tolist()[-1] == "not-a-time"  # text as delivered
    events = pipelines.read("events", "raw")
    # one JSON Lines file filtered per interval, in UTC: e2 (Jan 1 23:30-02:00) is Jan 2,
    # e3 (Jan 2 01:00+02:00) is Jan 1; e4 is naive, so UTC
    per_day = events.groupby("ds")["event_id"].apply(sorted).to_dict()
    assert per_day == {
        "2024-01-01": ["e1", "e3"],
        "2024-01-02": ["e2", "e4", "e4"],
        "2024-01-03": ["e5", "e6"],
    }


def test_empty_interval_is_a_success_with_zero_rows(home):
    (home / "include" / "sample" / "orders" / "orders_2024-01-05.csv").write_text(
        "order_id,customer_id,status,amount,updated_at,order_date\n"
    )
    result = run_steps("orders", "2024-01-05")
    assert result["extract"]["rows"] == 0
    assert result["merge"].touched == []


def test_unscheduled_namespace_runs_triggered_dates_with_full_intervals(
    home, airflow_db, monkeypatch
):
    from pipelines.runs.local import run_dag
    from pipelines.wiring.factory import build_dags

    monkeypatch.setenv("PIPELINES_SCHEDULES", "off")
    datasets = [d for d in build_dags().values() if "cookbook" not in d.dag_id]
    assert datasets and not any(d.timetable.can_be_scheduled for d in datasets)
    outcome = run_dag("local__customers", "2024-01-02")
    assert outcome.ok, outcome.error
    raw = pipelines.read("customers", "raw")
    assert set(raw["ds"]) == {"2024-01-02"} and len(raw) == 4
