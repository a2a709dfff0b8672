"""OpenLineage through Airflow's provider: a dataset (orders, customers) and a workflow
(customer_features) run for one day with the provider's file transport, and what their COMPLETE
events say: the lake tables each task read and wrote, named from the tables' asset URIs, the rows
it moved as the run reported them, and the schema of what it wrote.

The provider reads its transport once, when its plugin is loaded, so the runs happen in a fresh
interpreter (the local runner, whose tasks go through the Task SDK's task runner and its
listeners). With no transport, the provider is off and registers no listener.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO

DAY = "2024-01-01"
DAGS = ("local__orders", "local__customers", "local__workflow__customer_features")
# runs the day given (and the datasets the workflow reads) and prints, as JSON, each run's
# outputs and the lake tables (asset URIs) each task of its DAG declares
RUN = """
import json, sys
from pipelines.runs.local import configure, load_dag
configure(database=False)
from pipelines.client import Client
from pipelines.project.config import Kind
from pipelines.runs.outputs import outputs_of
result = Client().submit("customer_features", sys.argv[1], upstream=True)
assert result.ok, [(r.dag_id, r.error) for r in result.runs]
kinds = {r.dag_id: Kind.WORKFLOW if "__workflow__" in r.dag_id else Kind.DATASET
         for r in result.runs}
assets = {
    f"{dag_id}.{task.task_id}": sorted(
        a.uri for a in [*task.inlets, *task.outlets] if "table" in a.extra
    )
    for dag_id in kinds for task in load_dag(dag_id).tasks
}
outputs = {r.dag_id: outputs_of(kinds[r.dag_id], r.results) for r in result.runs}
print(json.dumps({"outputs": outputs, "assets": assets}))
"""


@pytest.fixture(scope="module")
def lineage(tmp_path_factory):
    """The day run once with the file transport: (events by job and type, outputs, assets, lake)."""
    home = tmp_path_factory.mktemp("lineage")
    shutil.copytree(REPO / "include", home / "include")
    events_file = home / "events.jsonl"
    env = {
        **os.environ,
        "PIPELINES_HOME": str(home),
        "PIPELINES_LAKE": str(home / "lake"),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "pipelines-test",
    }
    env.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
    ran = subprocess.run(
        [sys.executable, "-c", RUN, DAY], env=env, capture_output=True, text=True, timeout=180
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    events: dict[tuple[str, str], dict] = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        events[event["job"]["name"], event["eventType"]] = event
    return events, report["outputs"], report["assets"], home / "lake" / "local"


def complete(lineage, job: str) -> dict:
    return lineage[0][job, "COMPLETE"]


def tables(datasets: list[dict]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def table(lake: Path, layer: str, name: str) -> tuple[str, str]:
    return ("file", f"{lake}/{layer}/{name}")  # the provider's name of file://{lake}/...


def rows(dataset: dict) -> int | None:
    facets = dataset.get("inputFacets") or dataset.get("outputFacets") or {}
    stats = facets.get("inputStatistics") or facets.get("outputStatistics") or {}
    return stats.get("rowCount")


def schema(dataset: dict) -> list[str]:
    return [f["name"] for f in dataset["facets"]["schema"]["fields"]]


def columns(lake: Path, layer: str, name: str) -> list[str]:
    """The columns of the table's newest data file, read with pyarrow (not through lineage)."""
    newest = max((lake / layer / name).glob("*=*/*.parquet"), key=lambda p: p.stat().st_mtime)
    return pq.read_schema(newest).names


def test_every_task_reports_start_and_complete_with_the_job_namespace(lineage):
    events = lineage[0]
    jobs = {job for job, _ in events}
    steps = ("ingest.extract", "clean.merge", "check.check_keys", "aggregate.aggregate")
    assert jobs == {f"{d}.{s}" for d in DAGS[:2] for s in steps} | {f"{DAGS[2]}.workflow.run"}
    assert {kind for _, kind in events} == {"START", "COMPLETE"}
    assert {e["job"]["namespace"] for e in events.values()} == {"pipelines-test"}


def test_the_dataset_s_tasks_name_source_raw_cleaned_and_aggregated(lineage):
    lake = lineage[3]
    extract = complete(lineage, "local__orders.ingest.extract")
    source = lake.parents[1] / "include" / "sample" / "orders" / f"orders_{DAY}.csv"
    assert tables(extract["inputs"]) == [("file", str(source))] and source.exists()
    assert tables(extract["outputs"]) == [table(lake, "raw", "orders")]
    merge = complete(lineage, "local__orders.clean.merge")
    assert tables(merge["inputs"]) == [table(lake, "raw", "orders")]
    assert tables(merge["outputs"]) == [
        table(lake, "cleaned", "orders"),
        table(lake, "quarantine", "orders"),
    ]
    check = complete(lineage, "local__orders.check.check_keys")
    assert tables(check["inputs"]) == [table(lake, "cleaned", "orders")] and not check["outputs"]
    aggregate = complete(lineage, "local__orders.aggregate.aggregate")
    assert tables(aggregate["inputs"]) == [table(lake, "cleaned", "orders")]
    assert tables(aggregate["outputs"]) == [table(lake, "aggregated", "daily_revenue")]


def test_the_workflow_names_its_input_tables_and_its_output(lineage):
    lake = lineage[3]
    run = complete(lineage, "local__workflow__customer_features.workflow.run")
    assert tables(run["inputs"]) == [
        table(lake, "cleaned", "orders"),
        table(lake, "cleaned", "customers"),
    ]
    assert tables(run["outputs"]) == [table(lake, "workflows", "customer_features")]


def test_the_tables_named_are_the_asset_uris_the_dags_declare(lineage):
    """A catalogue joins lineage and assets: each lake table of an event is an asset a task of
    the DAGs declares, and a task's tables are its own declared assets."""
    events, _, assets, _ = lineage
    declared = {uri for uris in assets.values() for uri in uris}
    for (job, _), event in events.items():
        for namespace, name in tables(event["inputs"] + event["outputs"]):
            if "/include/" not in name:  # the source of an extract is no asset
                assert namespace == "file" and f"file://{name}" in declared, (job, name)
    for job in ("local__orders.clean.merge", "local__workflow__customer_features.workflow.run"):
        event = complete(lineage, job)
        named = {f"file://{name}" for _, name in tables(event["inputs"] + event["outputs"])}
        assert named == set(assets[job]), job


def test_the_row_counts_are_what_the_runs_reported(lineage):
    outputs = lineage[1]
    orders, features = outputs["local__orders"], outputs[DAGS[2]]
    extract = complete(lineage, "local__orders.ingest.extract")
    assert rows(extract["outputs"][0]) == orders["rows_raw"] == 6
    merge = complete(lineage, "local__orders.clean.merge")
    assert rows(merge["inputs"][0]) == orders["rows_raw"]
    assert (
        [rows(o) for o in merge["outputs"]]
        == [
            orders["rows_cleaned"],
            orders["rows_quarantined"],
        ]
        == [4, 2]
    )
    check = complete(lineage, "local__orders.check.check_keys")
    assert rows(check["inputs"][0]) == orders["rows_checked"]
    aggregate = complete(lineage, "local__orders.aggregate.aggregate")
    assert rows(aggregate["outputs"][0]) == orders["rows_daily_revenue"] == 2
    run = complete(lineage, "local__workflow__customer_features.workflow.run")
    assert rows(run["outputs"][0]) == features["rows_written"] == 5
    # the workflow read the day's cleaned orders (3-day window: one day here) and customers
    cleaned = [
        outputs["local__orders"]["rows_cleaned"],
        outputs["local__customers"]["rows_cleaned"],
    ]
    assert [rows(i) for i in run["inputs"]] == cleaned


def test_a_start_event_names_the_tables_and_counts_nothing(lineage):
    start = lineage[0]["local__orders.clean.merge", "START"]
    assert tables(start["outputs"]) == tables(
        complete(lineage, "local__orders.clean.merge")["outputs"]
    )
    assert [rows(d) for d in start["inputs"] + start["outputs"]] == [None, None, None]


def test_the_schema_of_each_table_written_is_its_columns(lineage):
    lake = lineage[3]
    header = (lake.parents[1] / "include" / "sample" / "orders" / f"orders_{DAY}.csv").open()
    raw = complete(lineage, "local__orders.ingest.extract")["outputs"][0]
    assert schema(raw) == [*header.readline().strip().split(","), "_row"]
    assert schema(raw) == columns(lake, "raw", "orders")
    cleaned, quarantine = complete(lineage, "local__orders.clean.merge")["outputs"]
    # the cleaned manifest declares the registry's columns (the files add the merge's _row, _ds)
    assert schema(cleaned) == [c for c in columns(lake, "cleaned", "orders") if c[0] != "_"]
    types = {f["name"]: f["type"] for f in cleaned["facets"]["schema"]["fields"]}
    assert (types["order_id"], types["amount"]) == ("string", "float")  # a CSV key stays text
    assert schema(quarantine) == columns(lake, "quarantine", "orders")
    aggregated = complete(lineage, "local__orders.aggregate.aggregate")["outputs"][0]
    assert schema(aggregated) == columns(lake, "aggregated", "daily_revenue")
    features = complete(lineage, "local__workflow__customer_features.workflow.run")["outputs"][0]
    assert schema(features) == columns(lake, "workflows", "customer_features")
    assert "customer_id" in schema(features)


def test_without_a_transport_the_provider_is_off_and_listens_to_nothing():
    from airflow.providers.openlineage import conf
    from airflow.sdk.listener import get_listener_manager

    set_here = {k for k in os.environ if k.startswith(("OPENLINEAGE", "AIRFLOW__OPENLINEAGE__"))}
    # a local run in this process sets how events would be sent (local.configure), not whether
    assert set_here <= {"AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"}, set_here
    assert conf.is_disabled()
    listeners = get_listener_manager().pm.get_plugins()
    assert not [p for p in listeners if "openlineage" in type(p).__module__]
