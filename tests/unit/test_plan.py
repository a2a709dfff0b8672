"""The plan's comparison on hand-made configs: each kind of change, its implications, no change."""

from __future__ import annotations

from dataclasses import replace

from pipelines.common.partitions import Layer
from pipelines.common.windows import Window
from pipelines.plan.compare import Action, Backfill, Code, Plan, Recorded, State, compare
from pipelines.project.aggregates import AggregateSpec
from pipelines.project.columns import Column, Declaration, NewColumns
from pipelines.project.columns import Test as ColumnTest
from pipelines.project.config import Kind
from pipelines.project.cookbooks import Child, CookbookSpec
from pipelines.project.registry import parse_registry
from pipelines.project.table_config import (
    RETIRED,
    of_aggregate,
    of_cookbook,
    of_dataset,
    of_workflow,
)
from pipelines.project.workflows import WorkflowInput, WorkflowSpec

HEADER = "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date\n"
ORDERS = "orders,s/orders_{ds}.csv,order_id,updated_at,order_date,incremental,2024-01-02\n"
DAYS = ("2024-01-02", "2024-01-03", "2024-01-04")


def dataset(row: str = ORDERS) -> dict:
    [found] = parse_registry(HEADER + row).datasets
    return of_dataset(found)


def revenue(**metrics: str) -> dict:
    declared = {"orders": "count", "revenue": "sum:amount", **metrics}
    spec = tuple((out, *(m.split(":") + [None])[:2]) for out, m in declared.items())
    return of_aggregate(AggregateSpec("daily_revenue", "orders", ("status",), spec))


def features(**params) -> dict:
    spec = WorkflowSpec(
        "features",
        "features:build",
        (WorkflowInput("orders", "orders", Layer.CLEANED, Window(3)),),
        params or {"min_orders": 0},
        ("customer_id",),
    )
    return of_workflow(spec)


def lake_of(config: dict, days=DAYS, **extra) -> Recorded:
    return Recorded(config, partitions=days, days=days, landed=days, **extra)


def written() -> State:
    """A namespace that ran orders, its aggregate and the workflow for three days."""
    return State(
        {
            (Kind.DATASET, "orders"): lake_of(dataset()),
            (Kind.AGGREGATE, "daily_revenue"): lake_of(revenue()),
            (Kind.WORKFLOW, "features"): lake_of(features()),
        }
    )


def project(**entries: dict) -> dict:
    want = {
        (Kind.DATASET, "orders"): dataset(),
        (Kind.AGGREGATE, "daily_revenue"): revenue(),
        (Kind.WORKFLOW, "features"): features(),
    }
    for name, config in entries.items():
        kind, _, name = name.partition("__")
        want[(Kind(kind), name)] = config
    return want


def only(plan: Plan):
    [change] = plan.changes
    return change


def test_the_same_config_is_nothing_to_do():
    plan = compare("local", project(), written())
    assert plan.empty and plan.as_dict()["nothing_to_do"] and plan.backfills == []


def test_start_date_moved_earlier_backfills_the_intervals_before_it():
    earlier = ORDERS.replace("2024-01-02", "2023-12-30")
    change = only(compare("local", project(dataset__orders=dataset(earlier)), written()))
    assert (change.action, [f.name for f in change.fields]) == (Action.CHANGE, ["start_date"])
    assert change.backfill.ranges == [("2023-12-30", "2024-01-01", 3)]
    assert change.implications == (
        "start_date moved earlier (2024-01-02 -> 2023-12-30): "
        "3 intervals (2023-12-30 .. 2024-01-01) will be backfilled",
    )


def test_start_date_moved_later_keeps_the_data_before_it():
    later = ORDERS.replace("2024-01-02", "2024-01-04")
    change = only(compare("local", project(dataset__orders=dataset(later)), written()))
    assert change.backfill is None and change.reset == ()
    assert compare("local", project(dataset__orders=dataset(later)), written()).rebuilds == {}
    assert "the data before it stays (2 cleaned partitions)" in change.implications[0]


def test_a_new_primary_key_rebuilds_cleaned_and_its_aggregates_from_every_delivery():
    keyed = ORDERS.replace("order_id,", "order_id|customer_id,")
    change = only(compare("local", project(dataset__orders=dataset(keyed)), written()))
    assert change.fields[0].as_dict() == {
        "field": "primary_key",
        "before": ["order_id"],
        "after": ["order_id", "customer_id"],
    }
    assert change.reset == ((Layer.CLEANED, "orders"), (Layer.AGGREGATED, "daily_revenue"))
    assert change.backfill.days == DAYS
    found = compare("local", project(dataset__orders=dataset(keyed)), written())
    assert found.rebuilds == {  # every table its runs write but raw; cleaned switched last
        "orders": (
            (Layer.QUARANTINE, "orders"),
            (Layer.AGGREGATED, "daily_revenue"),
            (Layer.CLEANED, "orders"),
        )
    }
    assert change.implications == (
        "primary_key changed: the cleaned table must be rebuilt: 3 partitions, re-merged from "
        "3 deliveries (2024-01-02 .. 2024-01-04); aggregates recomputed: daily_revenue",
    )


def test_a_partition_field_or_ingestion_change_rebuilds_too():
    moved = ORDERS.replace("order_date,incremental", "updated_at,incremental")
    full = "orders,s/orders_{ds}.csv,order_id,updated_at,order_date,full,2024-01-02\n"
    for row, field in ((moved, "partition_field"), (full, "ingestion")):
        change = only(compare("local", project(dataset__orders=dataset(row)), written()))
        assert change.reset[0] == (Layer.CLEANED, "orders")
        assert change.implications[0].startswith(f"{field} changed: the cleaned table must be")


def test_a_schedule_change_needs_no_backfill():
    row = HEADER.replace(",start_date", ",start_date,schedule") + ORDERS.strip() + ",@weekly\n"
    [weekly] = parse_registry(row).datasets
    change = only(compare("local", project(dataset__orders=of_dataset(weekly)), written()))
    assert [f.name for f in change.fields] == ["schedule", "cron"]
    assert change.backfill is None
    assert change.implications[0].startswith("schedule changes (@daily -> @weekly)")


def test_a_new_dataset_is_backfilled_up_to_the_namespace_s_newest_run():
    new = dataset(ORDERS.replace("orders,", "refunds,"))
    change = only(compare("local", project(dataset__refunds=new), written()))
    assert (change.kind, change.name, change.action) == (Kind.DATASET, "refunds", Action.ADD)
    assert change.backfill == Backfill("refunds", "0 0 * * *", DAYS)


def test_a_new_dataset_in_an_empty_namespace_has_nothing_to_backfill():
    plan = compare("fresh", {(Kind.DATASET, "orders"): dataset()}, State())
    change = only(plan)
    assert change.action is Action.ADD and change.backfill is None
    assert "no run on or after its start_date" in change.implications[1]


def test_a_dropped_dataset_keeps_its_data_and_a_retired_one_is_no_change():
    want = project()
    del want[(Kind.DATASET, "orders")]
    del want[(Kind.AGGREGATE, "daily_revenue")]
    del want[(Kind.WORKFLOW, "features")]
    plan = compare("local", want, written())
    assert [(c.kind, c.action) for c in plan.changes] == [
        (Kind.DATASET, Action.REMOVE),
        (Kind.AGGREGATE, Action.REMOVE),
        (Kind.WORKFLOW, Action.REMOVE),
    ]
    said = plan.changes[0].implications[0]
    assert said.startswith("dropped: its raw, cleaned and quarantine tables stay in the lake")
    assert "`pipelines namespace drop`" in said and plan.backfills == []
    retired = State({(Kind.DATASET, "orders"): lake_of({**dataset(), RETIRED: True})})
    assert compare("local", {}, retired).empty


def test_a_table_written_before_configs_were_recorded_is_not_guessed():
    state = State({(Kind.DATASET, "orders"): lake_of(None)})
    change = only(compare("local", {(Kind.DATASET, "orders"): dataset()}, state))
    assert change.action is Action.UNKNOWN and change.fields == () and change.backfill is None
    assert change.implications[0].startswith("config not recorded (written by an older version)")


def test_a_new_metric_is_a_new_column_and_recomputes_the_aggregate():
    plan = compare("local", project(aggregate__daily_revenue=revenue(top="max:amount")), written())
    change = only(plan)
    assert change.implications[0] == "new columns: top (max:amount)"
    assert change.backfill == Backfill("orders", "0 0 * * *", DAYS)  # its dataset, every day
    gone = revenue()
    del gone["metrics"]["revenue"]
    said = only(compare("local", project(aggregate__daily_revenue=gone), written())).implications
    assert said[0] == "columns no longer written: revenue"


def test_a_workflow_s_days_are_computed_again_when_its_params_change():
    change = only(compare("local", project(workflow__features=features(min_orders=2)), written()))
    assert change.backfill.days == DAYS and change.backfill.name == "features"
    assert change.implications[0] == "params changes: min_orders=0 -> min_orders=2"
    assert "not declared" in change.implications[2]  # its columns cannot be planned


def test_a_new_workflow_runs_the_days_its_inputs_landed():
    state = written()
    del state.tables[(Kind.WORKFLOW, "features")]
    change = only(compare("local", project(), state))
    assert change.action is Action.ADD and change.backfill.days == DAYS


def test_backfills_merge_per_name_datasets_first_in_consecutive_ranges():
    keyed = ORDERS.replace("order_id,", "order_id|customer_id,").replace("2024-01-02", "2024-01-01")
    gap = ("2024-01-02", "2024-01-04")
    state = written()
    state.tables[(Kind.DATASET, "orders")] = lake_of(dataset(), days=gap)
    want = project(dataset__orders=dataset(keyed), workflow__features=features(min_orders=1))
    plan = compare("local", want, state)
    assert [b.name for b in plan.backfills] == ["orders", "features"]
    assert plan.backfills[0].ranges == [("2024-01-01", "2024-01-02", 2), ("2024-01-04",) * 2 + (1,)]
    assert plan.counts() == {"add": 0, "change": 2, "remove": 0, "unknown": 0}


NOW = {"features": Code("new", "features.py")}


def hashed(*codes: str) -> Recorded:
    """The workflow's three days, each recorded with the code hash given ("": none recorded)."""
    return lake_of(features(), codes={d: c for d, c in zip(DAYS, codes, strict=True) if c})


def test_a_code_change_reruns_exactly_the_days_that_recorded_another_hash():
    state = written()
    state.tables[(Kind.WORKFLOW, "features")] = hashed("old", "old", "new")
    change = only(compare("local", project(), state, NOW))
    assert (change.action, change.fields, change.backfill.days) == (Action.CHANGE, (), DAYS[:2])
    assert change.implications[0] == (
        "code changed (features.py or params): rerun 2 days (2024-01-02 .. 2024-01-03)"
    )
    state.tables[(Kind.WORKFLOW, "features")] = hashed("new", "", "new")  # "": an older record
    assert compare("local", project(), state, NOW).empty
    assert compare("local", project(), state).empty  # no code given: not compared


def test_a_params_change_is_one_rerun_of_the_days_not_two():
    state = written()
    state.tables[(Kind.WORKFLOW, "features")] = hashed("old", "old", "old")
    change = only(compare("local", project(workflow__features=features(min_orders=2)), state, NOW))
    assert [f.name for f in change.fields] == ["params"] and change.backfill.days == DAYS
    reruns = [said for said in change.implications if "rerun" in said or "again" in said]
    assert reruns == [
        "code changed (features.py or params): rerun 3 days (2024-01-02 .. 2024-01-04)"
    ]


def reader(name: str, window: str) -> dict:
    """A workflow reading features' output over ``window``."""
    item = WorkflowInput("features", "features", Layer.WORKFLOWS, Window.parse(window))
    return of_workflow(WorkflowSpec(name, "model:train", (item,), {}, ("feature",)))


def test_the_workflows_reading_a_rerun_follow_it_over_the_days_their_windows_reach():
    want = {
        (Kind.WORKFLOW, "train"): reader("train", "2d"),  # declared before what it reads
        **project(),
        (Kind.WORKFLOW, "daily"): reader("daily", "1d"),
    }
    state = written()
    state.tables[(Kind.WORKFLOW, "features")] = hashed("old", "new", "new")
    state.tables[(Kind.WORKFLOW, "train")] = lake_of(reader("train", "2d"))
    state.tables[(Kind.WORKFLOW, "daily")] = lake_of(reader("daily", "1d"), days=DAYS[1:])
    plan = compare("local", want, state, NOW)
    assert [(b.name, b.days) for b in plan.backfills] == [
        ("features", DAYS[:1]),
        ("train", DAYS[:2]),  # 2024-01-03's window holds 2024-01-02
    ]
    first, train = plan.changes
    assert first.implications[-1] == "the workflows reading it follow: train"
    assert train.implications == (
        "reads features, rerun before it: the 2 days (2024-01-02 .. 2024-01-03) whose windows "
        "hold a rerun day are computed again after it",
    )
    state.tables[(Kind.WORKFLOW, "features")] = hashed("new", "new", "old")
    plan = compare("local", want, state, NOW)  # daily wrote 2024-01-04 only: reached too
    assert [(b.name, b.days) for b in plan.backfills] == [
        ("features", DAYS[2:]),
        ("train", DAYS[2:]),
        ("daily", DAYS[2:]),
    ]
    assert plan.counts()["change"] == 3


def test_cookbook_membership_changes():
    book = CookbookSpec("daily", None, (Child("orders", ()), Child("features", ("orders",))), {})
    grown = CookbookSpec("daily", None, (Child("orders", ()), Child("refunds", ())), {})
    state = State(written().tables, {"daily": of_cookbook(book), "old": of_cookbook(book)})
    plan = compare("local", project(cookbook__daily=of_cookbook(grown)), state)
    assert [(c.name, c.action) for c in plan.changes] == [
        ("daily", Action.CHANGE),
        ("old", Action.REMOVE),
    ]
    assert plan.changes[0].implications == ("now triggers refunds", "no longer triggers features")
    assert compare("local", project(cookbook__daily=of_cookbook(book)), state).changes[0].name == (
        "old"
    )


def test_recorded_configs_are_json_safe_small_and_stable():
    import json

    text = json.dumps(dataset(), separators=(",", ":"))
    assert json.loads(text) == dataset() and len(text) < 500
    [orders] = parse_registry(HEADER + ORDERS).datasets
    secret = of_dataset(replace(orders, source="s3://me:pw@bucket/o_{ds}.csv"))
    assert secret["source"] == "s3://***@bucket/o_{ds}.csv"


UNDECLARED = (
    '{"source":"s/orders_{ds}.csv","format":"csv","ingestion":"incremental",'
    '"primary_key":["order_id"],"incremental_field":"updated_at","partition_field":"order_date",'
    '"schedule":"@daily","cron":"0 0 * * *","start_date":"2024-01-02","options":{"delimiter":",",'
    '"encoding":"utf-8-sig","nulls":[],"epoch":"s"},"on_schema_change":"append",'
    '"max_drop_pct":50.0,"max_quarantine_pct":null}'
)


def declared(*columns: Column, **contracts) -> dict:
    """orders' config with a columns.yaml entry of ``columns`` (and contracts, table tests)."""
    [orders] = parse_registry(HEADER + ORDERS).datasets
    return of_dataset(replace(orders, declared=Declaration("orders", columns, **contracts)))


def test_an_undeclared_dataset_records_the_bytes_it_recorded_before_columns_yaml():
    import json

    assert json.dumps(dataset(), separators=(",", ":")) == UNDECLARED  # no plan change for lakes
    assert declared(Column("amount", "float"))["columns"]["columns"] == {
        "amount": {"type": "float", "format": None, "rename": None, "tests": []}
    }


def test_a_declared_type_format_rename_or_contract_change_rebuilds_cleaned():
    amount = Column("amount", "float")
    state = State({(Kind.DATASET, "orders"): lake_of(declared(amount))})
    for after, field in (
        (declared(Column("amount", "decimal(12,2)")), "columns.amount.type"),
        (declared(replace(amount, rename="total")), "columns.amount.rename"),
        (declared(amount, new_columns=NewColumns.FREEZE), "columns.new_columns"),
        (declared(amount, Column("paid", "boolean", (("ja",), ("nein",)))), "columns.paid.type"),
        (dataset(), "columns.amount.type"),  # the declaration removed: inferred again
    ):
        change = only(compare("local", {(Kind.DATASET, "orders"): after}, state))
        assert field in [f.name for f in change.fields]
        assert change.reset == ((Layer.CLEANED, "orders"),) and change.backfill.days == DAYS
        assert change.implications[0].startswith("columns changed: the cleaned table must be")


def test_a_test_change_rechecks_the_existing_days_without_emptying_anything():
    amount = Column("amount", "float")
    state = State({(Kind.DATASET, "orders"): lake_of(declared(amount))})
    tested = declared(replace(amount, tests=(ColumnTest("min", 0),)), min_rows=1)
    change = only(compare("local", {(Kind.DATASET, "orders"): tested}, state))
    assert [(f.name, f.before, f.after) for f in change.fields] == [
        ("columns.tests", None, {"min_rows": 1}),
        ("columns.amount.tests", None, ["min: 0"]),
    ]
    assert change.reset == () and change.backfill.days == DAYS
    assert change.implications == (
        "columns.tests, columns.amount.tests changed: recheck: the 3 days (2024-01-02 .. "
        "2024-01-04) the lake holds are run again against the tests (nothing is emptied)",
    )


def test_declaring_only_tests_on_an_undeclared_dataset_is_a_recheck():
    tested = declared(Column("order_id", tests=(ColumnTest("not_null"),)))
    change = only(compare("local", project(dataset__orders=tested), written()))
    assert [f.name for f in change.fields] == ["columns.order_id.tests"]
    assert change.reset == () and change.backfill.days == DAYS
