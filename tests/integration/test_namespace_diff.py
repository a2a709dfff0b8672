"""``diff_namespaces`` over two namespaces built by the real steps from the sample data, then made
to differ in known rows by committing changed partitions on one side."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pytest

from pipelines.exceptions import UnknownNameError
from pipelines.inspection.diff import PartitionCounts, diff_namespaces
from pipelines.lake.lake import Lake
from pipelines.lake.tables import EMPTY, Table
from pipelines.project.config import load_project
from pipelines.steps.dataset import run_steps
from tests.conftest import REPO

DAYS = ("2024-01-01", "2024-01-02")
NAMES = ("orders", "customers")
SAME = {  # rows of each table after the two sample days, in both namespaces
    "raw.orders": 11,
    "cleaned.orders": 6,
    "quarantine.orders": 4,
    "raw.customers": 9,
    "cleaned.customers": 4,  # the newest snapshot only
    "quarantine.customers": 0,
    "aggregated.daily_revenue": 4,
    "aggregated.customers_by_country": 4,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """serving and research, each with orders and customers run for both days (built once)."""
    base = tmp_path_factory.mktemp("namespace-diff")
    shutil.copytree(REPO / "include", base / "include")
    project = load_project(base / "include")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PIPELINES_HOME", str(base))
        env.setenv("PIPELINES_NAMESPACE", "serving")
        for namespace in ("serving", "research"):
            lake = Lake(str(base / "lake"), namespace)
            for day in DAYS:
                for name in NAMES:
                    run_steps(name, day, project=project, lake=lake)
    return base, project


@pytest.fixture
def lakes(built, tmp_path, monkeypatch):
    """(research, serving, project) in a copy of the built lake, for this test to change."""
    base, project = built
    monkeypatch.setenv("PIPELINES_HOME", str(base))
    monkeypatch.setenv("PIPELINES_NAMESPACE", "serving")
    shutil.copytree(base / "lake", tmp_path / "lake")
    root = str(tmp_path / "lake")
    return Lake(root, "research"), Lake(root, "serving"), project


def change(table: Table, edit):
    """Commit ``edit({partition: stored frame})`` (the partitions it returns) to one table."""
    base = table.snapshot()
    stored = {p: table.read_partition(p, base) for p in base.partitions}
    table.commit(base, edit(stored))


def by_label(diff):
    return {t.label: t for t in diff.tables}


def counts(table):
    return (table.only_left, table.only_right, table.changed, table.same)


def texts(table, category, left="research", right="serving"):
    return [e.describe(table.partition_key, left, right) for e in table.examples[category]]


def edit_orders(parts):
    """Delete 1003 (dt 01-01) and 1005 (dt 01-02), add 2001 (dt 01-02), change 1001's status,
    1002's amount (dt 01-01) and 1006's status (dt 01-02). The keys are the text delivered (a CSV
    key stays text)."""
    day1, day2 = parts["2024-01-01"].copy(), parts["2024-01-02"].copy()
    day1 = day1[day1["order_id"] != "1003"]
    day1.loc[day1["order_id"] == "1001", "status"] = "lost"
    day1.loc[day1["order_id"] == "1002", "amount"] = 99.5
    day2.loc[day2["order_id"] == "1006", "status"] = "cancelled"
    added = day2[day2["order_id"] == "1005"].assign(order_id=pd.array(["2001"], dtype="string"))
    day2 = pd.concat([day2[day2["order_id"] != "1005"], added], ignore_index=True)
    return {"2024-01-01": day1, "2024-01-02": day2}


def test_namespaces_built_alike_are_identical(lakes):
    research, serving, project = lakes
    diff = diff_namespaces(research, serving, project)
    assert diff.identical
    assert {t.label: counts(t) for t in diff.tables} == {
        label: (0, 0, 0, n) for label, n in SAME.items()
    }
    assert all(t.partitions == {} and not any(t.examples.values()) for t in diff.tables)
    assert (diff.only_in_left, diff.only_in_right, diff.notes) == ((), (), ())
    lines = diff.lines()
    assert lines[0] == "raw.orders: 0 only in research, 0 only in serving, 0 changed, 11 same"
    assert lines[-1] == "research and serving are identical (tables compared: 8)"
    assert json.loads(json.dumps(diff.as_dict()))["identical"] is True


def test_changed_cleaned_rows_by_key_and_partition(lakes):
    research, serving, project = lakes
    change(research.cleaned(project.dataset("orders")), edit_orders)
    diff = diff_namespaces(research, serving, project)
    tables = by_label(diff)
    orders = tables.pop("cleaned.orders")
    assert counts(orders) == (1, 2, 3, 1)  # only 1004 is untouched
    assert orders.key == ("order_id",)
    assert orders.partitions == {
        "2024-01-01": PartitionCounts(only_left=0, only_right=1, changed=2),
        "2024-01-02": PartitionCounts(only_left=1, only_right=1, changed=1),
    }
    assert texts(orders, "only_left") == ["order_id=2001"]
    assert texts(orders, "only_right") == ["order_id=1003", "order_id=1005"]
    assert texts(orders, "changed") == [
        "order_id=1001 (status)",
        "order_id=1002 (amount)",
        "order_id=1006 (status)",
    ]
    assert all(t.identical for t in tables.values())  # the aggregates were not rerun
    assert not diff.identical
    lines = diff.lines()
    start = lines.index("cleaned.orders: 1 only in research, 2 only in serving, 3 changed, 1 same")
    assert lines[start + 1 : start + 6] == [
        "  dt=2024-01-01: 0 only in research, 1 only in serving, 2 changed",
        "  dt=2024-01-02: 1 only in research, 1 only in serving, 1 changed",
        "  e.g. only in research: order_id=2001",
        "  e.g. only in serving: order_id=1003, order_id=1005",
        "  e.g. changed: order_id=1001 (status), order_id=1002 (amount), order_id=1006 (status)",
    ]
    assert lines[start + 6].startswith("quarantine.orders: ")
    assert (
        lines[-1]
        == "research vs serving: tables differing: 1 of 8; only in research: 0; only in serving: 0"
    )
    as_json = json.loads(json.dumps(diff.as_dict()))
    cleaned = next(t for t in as_json["tables"] if (t["layer"], t["name"]) == ("cleaned", "orders"))
    assert cleaned["partitions"]["2024-01-02"] == {"only_left": 1, "only_right": 1, "changed": 1}
    assert [e["key"] for e in cleaned["examples"]["only_right"]] == [
        {"order_id": "1003"},
        {"order_id": "1005"},
    ]
    assert cleaned["examples"]["changed"][1]["columns"] == ["amount"]


def test_the_other_way_round_swaps_the_sides_and_examples_are_capped(lakes):
    research, serving, project = lakes
    change(research.cleaned(project.dataset("orders")), edit_orders)
    orders = by_label(diff_namespaces(serving, research, project, examples=1))["cleaned.orders"]
    assert counts(orders) == (2, 1, 3, 1)
    assert orders.partitions["2024-01-02"] == PartitionCounts(1, 1, 1)
    assert texts(orders, "only_left", "serving", "research") == ["order_id=1003"]
    assert texts(orders, "changed", "serving", "research") == ["order_id=1001 (status)"]


def test_a_moved_row_counts_under_the_left_partition(lakes):
    research, serving, project = lakes

    def move_1004(parts):
        day1, day2 = parts["2024-01-01"], parts["2024-01-02"]
        row = day1[day1["order_id"] == "1004"]
        day1 = day1[day1["order_id"] != "1004"]
        return {"2024-01-01": day1, "2024-01-02": pd.concat([day2, row], ignore_index=True)}

    change(research.cleaned(project.dataset("orders")), move_1004)
    orders = by_label(diff_namespaces(research, serving, project))["cleaned.orders"]
    assert counts(orders) == (0, 0, 1, 5)
    assert orders.partitions == {"2024-01-02": PartitionCounts(changed=1)}
    assert orders.examples["changed"][0].moved == ("2024-01-02", "2024-01-01")
    assert texts(orders, "changed") == [
        "order_id=1004 (moved: dt=2024-01-02 in research, dt=2024-01-01 in serving)"
    ]


def test_a_column_added_on_one_side_compares_the_newest_snapshot_only(lakes):
    research, serving, project = lakes

    def add_segment(parts):
        newest = parts["2024-01-02"].copy()
        newest["segment"] = pd.array(["gold", "silver", None, None], dtype="string")
        older = parts["2024-01-01"].iloc[1:]  # an older snapshot is not the table: not compared
        return {"2024-01-01": older, "2024-01-02": newest}

    change(research.cleaned(project.dataset("customers")), add_segment)
    diff = diff_namespaces(research, serving, project, table="customers")
    customers = by_label(diff)["cleaned.customers"]
    assert counts(customers) == (0, 0, 2, 2)  # c1 and c2 have a segment
    assert (customers.added_columns, customers.removed_columns) == (("segment",), ())
    assert customers.snapshots == ("2024-01-02", "2024-01-02")
    assert customers.partitions == {"2024-01-02": PartitionCounts(changed=2)}
    assert texts(customers, "changed") == ["customer_id=c1 (segment)", "customer_id=c2 (segment)"]
    assert customers.lines("research", "serving") == [
        "cleaned.customers: 0 only in research, 0 only in serving, 2 changed, 2 same",
        "  newest snapshots compared: ds=2024-01-02 in research, ds=2024-01-02 in serving",
        "  columns only in research: segment",
        "  ds=2024-01-02: 0 only in research, 0 only in serving, 2 changed",
        "  e.g. changed: customer_id=c1 (segment), customer_id=c2 (segment)",
    ]
    back = by_label(diff_namespaces(serving, research, project, table="customers"))
    assert back["cleaned.customers"].removed_columns == ("segment",)
    assert back["cleaned.customers"].added_columns == ()


def test_raw_duplicates_and_quarantine_rows_compare_as_multisets(lakes):
    research, serving, project = lakes

    def drop_second_1006(parts):
        day2 = parts["2024-01-02"].copy()
        day2.loc[day2["order_id"] == "1005", "amount"] = "12.00"
        return {"2024-01-02": day2[day2["_row"] != 3]}  # _row 2 and 3 are both 1006

    def retype_1007(parts):
        day2 = parts["2024-01-02"].copy()
        day2.loc[day2["order_id"] == "1007", "amount"] = "6.00"
        return {"2024-01-02": day2}

    change(research.raw("orders"), drop_second_1006)
    change(research.quarantine("orders"), retype_1007)
    tables = by_label(diff_namespaces(research, serving, project, table="orders"))
    raw = tables["raw.orders"]
    assert raw.key == ("ds", "order_id")
    assert counts(raw) == (0, 1, 1, 9)
    assert raw.partitions == {"2024-01-02": PartitionCounts(only_right=1, changed=1)}
    assert texts(raw, "only_right") == ["ds=2024-01-02 order_id=1006 #2"]
    assert texts(raw, "changed") == ["ds=2024-01-02 order_id=1005 (amount)"]
    quarantine = tables["quarantine.orders"]
    assert quarantine.key == ()
    assert counts(quarantine) == (1, 1, 0, 3)
    assert quarantine.partitions == {"2024-01-02": PartitionCounts(1, 1, 0)}
    row = "ds=2024-01-02 order_id=1007 customer_id=c5 status=placed amount={} "
    row += "updated_at=not-a-time order_date=2024-01-02"
    assert texts(quarantine, "only_left") == [row.format("6.00")]
    assert texts(quarantine, "only_right") == [row.format("5.00")]
    assert counts(tables["cleaned.orders"]) == (0, 0, 0, 6)


def test_table_selects_the_tables_of_one_name(lakes):
    research, serving, project = lakes
    labels = [t.label for t in diff_namespaces(research, serving, project, table="orders").tables]
    assert labels == ["raw.orders", "cleaned.orders", "quarantine.orders"]
    one = diff_namespaces(research, serving, project, table="daily_revenue")
    assert [t.label for t in one.tables] == ["aggregated.daily_revenue"]
    assert one.lines()[-1] == "research and serving are identical (tables compared: 1)"
    with pytest.raises(UnknownNameError, match="no dataset, aggregate or workflow named 'nope'"):
        diff_namespaces(research, serving, project, table="nope")
    with pytest.raises(UnknownNameError, match="'e2e_test' is a cookbook"):
        diff_namespaces(research, serving, project, table="e2e_test")


def features(ids, orders):
    return pd.DataFrame({"customer_id": ids, "orders": pd.array(orders, dtype="Int64")})


def test_a_table_on_one_side_only_is_listed_not_compared(lakes):
    research, serving, project = lakes
    table = research.workflow("customer_features")
    table.commit(EMPTY, {"2024-01-02": features(["c1"], [1])})
    diff = diff_namespaces(research, serving, project)
    assert diff.only_in_left == ("workflows.customer_features",)
    assert diff.only_in_right == ()
    assert "workflows.customer_features" not in by_label(diff)
    assert not diff.identical
    assert diff.lines()[-2:] == [
        "workflows.customer_features: only in research (not compared)",
        "research vs serving: tables differing: 0 of 8; only in research: 1; only in serving: 0",
    ]
    assert diff.as_dict()["only_in_left"] == ["workflows.customer_features"]


def test_workflow_outputs_by_key_and_without_one(lakes):
    research, serving, project = lakes
    for lake, orders in ((serving, [1, 2, None]), (research, [1, 3, None])):  # nulls equal
        table = lake.workflow("customer_features")
        table.commit(EMPTY, {"2024-01-02": features(["c1", "c2", "c3"], orders)})
    keyed = by_label(diff_namespaces(research, serving, project, table="customer_features"))
    output = keyed["workflows.customer_features"]
    assert output.key == ("ds", "customer_id")
    assert counts(output) == (0, 0, 1, 2)
    assert texts(output, "changed") == ["ds=2024-01-02 customer_id=c2 (orders)"]

    spec = dataclasses.replace(project.workflow("customer_features"), primary_key=())
    keyless = dataclasses.replace(project, workflows=(spec,))
    diff = diff_namespaces(research, serving, keyless, table="customer_features")
    output = by_label(diff)["workflows.customer_features"]
    assert output.key == ()
    assert counts(output) == (1, 1, 0, 2)
    assert texts(output, "only_left") == ["ds=2024-01-02 customer_id=c2 orders=3"]
    assert texts(output, "only_right") == ["ds=2024-01-02 customer_id=c2 orders=2"]


def test_a_research_namespace_reading_serving_raw_does_not_compare_raw(lakes):
    _, serving, project = lakes
    reader = Lake(serving.root, "reader", upstream="serving")
    for day in DAYS:
        for name in NAMES:
            run_steps(name, day, ("merge", "check_keys", "aggregate"), project=project, lake=reader)
    diff = diff_namespaces(reader, serving, project)
    assert [t.label for t in diff.tables] == [label for label in SAME if "raw." not in label]
    assert diff.identical
    assert diff.notes == ("raw not compared: reader reads serving's raw layer in place",)
    assert diff.lines()[-2:] == [
        "raw not compared: reader reads serving's raw layer in place",
        "reader and serving are identical (tables compared: 6)",
    ]
