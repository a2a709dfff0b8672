"""`pipelines plan` over a lake the sample project wrote: what a registry edit implies, --json,
the exit codes, --against another namespace, --apply, and tables written before configs were
recorded."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

import pipelines
from pipelines.cli import main
from pipelines.common.partitions import Layer
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project
from pipelines.project.table_config import CONFIG
from pipelines.steps.dataset import run_steps
from pipelines.testing import run_workflow
from tests.conftest import REPO

HEADER = "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date"
ORDERS = "orders,sample/orders/orders_{ds}.csv,csv,order_id,updated_at,order_date,incremental,"
CUSTOMERS = (
    "customers,sample/customers/customers_{ds_nodash}.csv,csv,customer_id,updated_at,"
    "signup_date,full,2024-01-01"
)
EVENTS = "events,sample/events.jsonl,jsonl,event_id,event_time,event_time,incremental,2024-01-01"
REVENUE = (
    "- {name: daily_revenue, dataset: orders, group_by: [status], metrics: {orders: count%s}}\n"
)


def configure(home, *rows: str, metrics: str = "") -> None:
    include = home / "include"
    (include / "registry.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    (include / "aggregates.yaml").write_text(REVENUE % metrics)
    for name in ("workflows.yaml", "cookbooks.yaml"):
        (include / name).write_text("[]\n")


@pytest.fixture
def ran(home):
    """orders from 2024-01-02, customers and events from 2024-01-01, run up to 2024-01-03."""
    configure(home, ORDERS + "2024-01-02", CUSTOMERS, EVENTS)
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        for name in ("orders", "customers", "events"):
            if (name, day) != ("orders", "2024-01-01"):
                run_steps(name, day)
    return home


def edit(home) -> None:
    """Earlier start_date, a changed primary key, a new dataset, a dropped one, a new metric."""
    configure(
        home,
        ORDERS + "2024-01-01",
        CUSTOMERS.replace("customer_id,updated_at", "customer_id|country,updated_at"),
        ORDERS.replace("orders,", "orders_eu,") + "2024-01-02",
        metrics=", top: max:amount",
    )


def plan(capsys, *argv: str) -> tuple[int, str]:
    code = main(["plan", *argv])
    return code, capsys.readouterr().out


def test_nothing_to_do_right_after_the_runs(ran, capsys):
    code, out = plan(capsys)
    assert code == 0
    assert out.startswith("No changes: namespace local (") and "matches the project" in out


def test_a_registry_edit_prints_what_deploying_does(ran, capsys):
    edit(ran)
    code, out = plan(capsys)
    assert code == 2
    blocks = out.split("\n\n")
    datasets = blocks[1].splitlines()
    assert datasets[0] == "datasets"
    assert datasets[1:] == [
        "  ~ orders",
        "      start_date: 2024-01-02 -> 2024-01-01",
        "      => start_date moved earlier (2024-01-02 -> 2024-01-01): 1 interval "
        "(2024-01-01 .. 2024-01-01) will be backfilled",
        "  ~ customers",
        "      primary_key: customer_id -> customer_id, country",
        "      => primary_key changed: the cleaned table must be rebuilt: 3 partitions, "
        "re-merged from 3 deliveries (2024-01-01 .. 2024-01-03)",
        "  + orders_eu",
        "      => new dataset: runs from 2024-01-02 on @daily",
        "      => 2 intervals (2024-01-02 .. 2024-01-03) will be backfilled (up to the "
        "namespace's newest run)",
        "  - events",
        "      => dropped: its raw, cleaned and quarantine tables stay in the lake (3 "
        "partitions); no DAG writes them any more and no command deletes one table's data "
        "(`pipelines namespace drop` deletes a whole research namespace); --apply marks them "
        "retired",
    ]
    aggregates = blocks[2].splitlines()
    assert aggregates[:4] == [
        "aggregates",
        "  ~ daily_revenue",
        "      metrics: orders=count -> orders=count, top=max:amount",
        "      => new columns: top (max:amount)",
    ]
    assert blocks[3].splitlines() == [
        "Plan: 1 to add, 3 to change, 1 to remove.",
        "backfills: orders 2024-01-01 .. 2024-01-03 (3); customers 2024-01-01 .. 2024-01-03 (3); "
        "orders_eu 2024-01-02 .. 2024-01-03 (2)",
    ]


def test_json_is_the_same_plan_as_data(ran, capsys):
    edit(ran)
    code, out = plan(capsys, "--json")
    found = json.loads(out)
    assert code == 2 and found["nothing_to_do"] is False
    assert found["counts"] == {"add": 1, "change": 3, "remove": 1, "unknown": 0}
    changes = {(c["kind"], c["name"]): c for c in found["changes"]}
    assert changes[("dataset", "customers")]["reset"] == ["cleaned.customers"]
    assert changes[("dataset", "events")]["action"] == "remove"
    assert found["backfills"][0] == {"name": "orders", "ranges": [["2024-01-01", "2024-01-03", 3]]}


def test_errors_exit_1_on_one_line(ran, capsys):
    assert plan(capsys, "--against", "Not A Name")[0] == 1
    code = main(["plan", "--url", "http://127.0.0.1:9"])
    assert (code, *capsys.readouterr()) == (
        1,
        "",
        "error: --url is where --apply runs the backfills: give --apply too\n",
    )
    configure(ran, ORDERS + "2024-01-02", CUSTOMERS.replace("2024-01-01", "yesterday"))
    code = main(["plan"])  # a skipped entry would read as removed: no plan at all
    assert (code, *capsys.readouterr()) == (
        1,
        "",
        "registry.csv:3: start_date: 'yesterday' is not a date in the form YYYY-MM-DD\n",
    )


def test_against_another_namespace(ran, capsys, monkeypatch):
    code, out = plan(capsys, "--against", "prod")
    assert code == 2 and out.startswith("plan for namespace prod (")
    assert "  + orders\n" in out and "nothing to backfill: the namespace has no run" in out
    monkeypatch.setenv("PIPELINES_NAMESPACE", "prod")
    run_steps("customers", "2024-01-01")
    monkeypatch.setenv("PIPELINES_NAMESPACE", "local")
    found = json.loads(plan(capsys, "--against", "prod", "--json")[1])
    assert found["namespace"] == "prod"
    added = [c["name"] for c in found["changes"] if c["action"] == "add"]
    assert added == ["orders", "events", "daily_revenue"]  # customers is there already
    [events] = [c for c in found["changes"] if c["name"] == "events"]
    assert events["backfill"] == {"name": "events", "ranges": [["2024-01-01", "2024-01-01", 1]]}


def test_a_table_without_recorded_config_is_not_guessed(ran, capsys):
    from deltalake import DeltaTable

    runs = DeltaTable(Lake.from_env().run_log().path)
    for layer in (Layer.RAW, Layer.CLEANED):  # as an older version wrote them: no config
        runs.update(updates={"config": "NULL"}, predicate=f"\"table\" = '{layer}/events'")
    assert Lake.from_env().manifest(Layer.CLEANED, "events").snapshot().meta.get(CONFIG) is None
    code, out = plan(capsys)
    assert code == 2
    assert "  ? events\n      => config not recorded (written by an older version)" in out
    assert out.rstrip().endswith("Plan: 1 not recorded.")


def test_apply_runs_the_backfills_then_nothing_is_left(ran, capsys):
    edit(ran)
    code, out = plan(capsys, "--apply")
    assert code == 0, out
    assert "rebuilding quarantine.customers, cleaned.customers beside the current tables" in out
    assert "switched to their rebuilt versions: quarantine.customers, cleaned.customers" in out
    assert "starting 3 runs of orders: 2024-01-01 .. 2024-01-03" in out
    assert "starting 2 runs of orders_eu: 2024-01-02 .. 2024-01-03" in out
    assert out.rstrip().endswith("applied: nothing left to do")
    code, out = plan(capsys)
    assert (code, out.split(":")[0]) == (0, "No changes")
    lake = Lake.from_env()
    customers = lake.cleaned(load_project().dataset("customers")).snapshot()
    assert customers.meta[CONFIG]["primary_key"] == ["customer_id", "country"]
    assert sorted(customers.partitions) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    revenue = lake.aggregated("daily_revenue").read()
    assert revenue["top"].notna().all() and "2024-01-01" in set(revenue["dt"])
    events = lake.manifest(Layer.CLEANED, "events").snapshot()  # retired: no dataset now
    assert events.meta[CONFIG]["retired"] is True and events.rows() > 0  # data kept


def test_apply_with_json_prints_the_json_alone(ran, capsys):
    configure(ran, ORDERS + "2024-01-01", CUSTOMERS, EVENTS)  # orders starts a day earlier
    code = main(["plan", "--apply", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    body = json.loads(out)  # nothing but the JSON on standard output
    assert [b["name"] for b in body["applied"]["backfills"]] == ["orders"]
    assert body["after"]["nothing_to_do"] is True
    assert "starting 1 run of orders: 2024-01-01" in err  # the runs' lines went to stderr
    # no rebuild: the probe that the lake is writable leaves no staging folder in the namespace
    assert not os.path.exists(Lake.from_env().staging)


def test_a_rebuild_that_stopped_is_planned_again(ran, capsys):
    """A rebuild stopped before its switch (its days written beside the current table, as a
    killed ``--apply`` leaves them) changed nothing the next plan reads: it still names the key
    change, and the cleaned table is the version it was."""
    lake = Lake.from_env()
    before = lake.manifest(Layer.CLEANED, "customers").snapshot()
    edit(ran)
    beside = lake.beside([(Layer.CLEANED, "customers"), (Layer.QUARANTINE, "customers")])
    run_steps("customers", "2024-01-01", lake=beside)
    assert beside.manifest(Layer.CLEANED, "customers").snapshot().rows() > 0  # written beside
    after = Lake.from_env().manifest(Layer.CLEANED, "customers").snapshot()
    assert (after.version, after.partitions) == (before.version, before.partitions)
    code, out = plan(capsys)
    assert code == 2
    customers = out.split("  ~ customers\n", 1)[1].split("\n  ", 1)[0]
    assert "primary_key: customer_id -> customer_id, country" in customers, out


def test_a_namespace_that_wrote_nothing_is_noted(ran, capsys):
    assert main(["plan", "--against", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("note: namespace nosuch has written nothing in "), err


def declare(home, orders: str) -> None:
    """The sample's declarations, and orders' ``columns`` as given."""
    sample = (REPO / "include" / "columns.yaml").read_text()
    (home / "include" / "columns.yaml").write_text(f"{sample}orders:\n  columns:\n{orders}")


def test_a_changed_test_rechecks_the_days_and_a_changed_type_rebuilds(ran, capsys):
    declare(
        ran, "    status: {tests: [{accepted_values: [placed, shipped, delivered, refunded]}]}\n"
    )
    code, out = plan(capsys)
    assert code == 2
    assert out.split("\n\n")[1].splitlines() == [
        "datasets",
        "  ~ orders",
        "      columns.status.tests: none -> accepted_values: [placed, shipped, delivered, "
        "refunded]",
        "      => columns.status.tests changed: recheck: the 2 days (2024-01-02 .. 2024-01-03) "
        "the lake holds are run again against the tests (nothing is emptied)",
    ]
    code, out = plan(capsys, "--apply")
    assert code == 0, out
    assert "emptying" not in out and "starting 2 runs of orders: 2024-01-02 .. 2024-01-03" in out
    assert plan(capsys)[0] == 0  # the runs recorded the declaration

    declare(ran, "    amount: {type: 'decimal(12,2)'}\n")
    code, out = plan(capsys, "--json")
    [orders] = [c for c in json.loads(out)["changes"] if c["name"] == "orders"]
    assert orders["reset"] == ["cleaned.orders", "aggregated.daily_revenue"]
    assert [f["field"] for f in orders["fields"]] == ["columns.amount.type", "columns.status.tests"]
    assert orders["implications"][0].startswith("columns changed: the cleaned table must be")
    code, out = plan(capsys, "--apply")
    switched = "switched to their rebuilt versions: quarantine.orders, aggregated.daily_revenue, "
    assert code == 0 and switched + "cleaned.orders" in out, out
    cleaned = Lake.from_env().cleaned(load_project().dataset("orders"))
    assert str(cleaned.read()["amount"].dtype).startswith("decimal128(12, 2)")


# --- a workflow's code ------------------------------------------------------------------------

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


@pytest.fixture
def cooked(home, airflow_db):
    """The refund_model cookbook (orders, customers, customer_features, train_refund_model) run
    for three days, in a project of those alone: the plan has nothing else to say."""
    from pipelines.client import Client

    include = home / "include"
    rows = (include / "registry.csv").read_text().splitlines()
    alone = [r for r in rows if "events" not in r and not r.startswith("payments,")]
    (include / "registry.csv").write_text("\n".join(alone) + "\n")
    aggregates = (include / "aggregates.yaml").read_text().split("\n- name: events_by_type")[0]
    (include / "aggregates.yaml").write_text(aggregates + "\n")
    books = (include / "cookbooks.yaml").read_text().split("- name: refund_model")[1]
    (include / "cookbooks.yaml").write_text("- name: refund_model" + books)
    results = Client().submit("refund_model", DAYS[0], end=DAYS[-1])
    assert results.ok, [(r.dag_id, r.ds, r.error) for r in results.runs if not r.ok]
    return home


def features_of(day: str) -> pd.DataFrame:
    """customer_features for ``day`` with the spend a mean, in pandas: the cleaned orders of the
    3-day window as the lake holds them now, and the customers snapshot of the day."""
    orders = pipelines.read("orders", "cleaned")
    first = (pd.Timestamp(day) - pd.Timedelta(days=2)).strftime("%Y-%m-%d")
    orders = orders[(orders["dt"] >= first) & (orders["dt"] <= day)]
    customers = pipelines.read("customers", "cleaned", as_of=day)
    per = orders.groupby("customer_id").agg(
        orders=("order_id", "size"),
        spend=("amount", lambda a: a.astype("float64").mean()),
        refunded=("status", lambda s: (s == "refunded").any()),
    )
    out = customers[["customer_id", "country", "signup_date"]].join(per, on="customer_id")
    out["orders"] = out["orders"].fillna(0).astype("int64")
    out["spend"] = out["spend"].fillna(0.0)
    out["refunded"] = out["refunded"].fillna(False).astype(bool)
    out["tenure_days"] = (pd.Timestamp(day) - pd.to_datetime(out["signup_date"])).dt.days
    return out.drop(columns="signup_date").sort_values("customer_id").reset_index(drop=True)


def written(name: str, day: str) -> pd.DataFrame:
    frame = pipelines.read(name, "workflows", as_of=day)
    return frame.drop(columns=[c for c in frame if c.startswith("_") or c == "ds"])


WORKFLOWS_PLANNED = [
    "workflows",
    "  ~ customer_features",
    "      => code changed (features.py or params): rerun 3 days (2024-01-01 .. 2024-01-03)",
    "      => its columns are what the function returns (not declared): the plan cannot list them",
    "      => the workflows reading it follow: train_refund_model",
    "  ~ train_refund_model",
    "      => reads customer_features, rerun before it: the 3 days (2024-01-01 .. 2024-01-03) "
    "whose windows hold a rerun day are computed again after it",
]


def test_a_code_change_is_planned_and_apply_reruns_its_days_then_its_readers(cooked, capsys):
    assert plan(capsys)[0] == 0  # the runs recorded their code
    before = {day: written("customer_features", day) for day in DAYS}
    module = cooked / "include" / "workflows" / "features.py"
    module.write_text(module.read_text().replace('("amount", "sum")', '("amount", "mean")'))
    code, out = plan(capsys)
    assert code == 2
    assert out.split("\n\n")[1].splitlines() == WORKFLOWS_PLANNED
    assert out.split("\n\n")[2].splitlines() == [
        "Plan: 2 to change.",
        "backfills: customer_features 2024-01-01 .. 2024-01-03 (3); train_refund_model "
        "2024-01-01 .. 2024-01-03 (3)",
    ]
    code, out = plan(capsys, "--apply")
    assert code == 0, out
    features = out.index("starting 3 runs of customer_features: 2024-01-01 .. 2024-01-03")
    assert out.index("starting 3 runs of train_refund_model: 2024-01-01 .. 2024-01-03") > features
    assert out.rstrip().endswith("applied: nothing left to do")
    assert plan(capsys)[0] == 0
    for day in DAYS:
        now = written("customer_features", day)
        pd.testing.assert_frame_equal(now, features_of(day), check_dtype=False)
        assert not now.equals(before[day])  # c1 spent on two orders on each day
        model = run_workflow("train_refund_model", {"features": now}, day).table
        pd.testing.assert_frame_equal(written("train_refund_model", day), model)

    declared = cooked / "include" / "workflows.yaml"
    declared.write_text(declared.read_text().replace("{min_orders: 0}", "{min_orders: 1}"))
    code, out = plan(capsys)
    assert code == 2
    assert out.split("\n\n")[1].splitlines() == [
        *WORKFLOWS_PLANNED[:2],
        "      params: min_orders=0 -> min_orders=1",
        "      => params changes: min_orders=0 -> min_orders=1",
        *WORKFLOWS_PLANNED[2:],
    ]  # a params change is one rerun, not two
    assert plan(capsys, "--apply")[0] == 0 and plan(capsys)[0] == 0
    for day in DAYS:
        kept = features_of(day)
        kept = kept[kept["orders"] >= 1].reset_index(drop=True)
        now = written("customer_features", day)
        pd.testing.assert_frame_equal(now, kept, check_dtype=False)
        model = run_workflow("train_refund_model", {"features": now}, day).table
        pd.testing.assert_frame_equal(written("train_refund_model", day), model)
