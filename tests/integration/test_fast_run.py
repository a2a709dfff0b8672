"""The local runner (the default in-process path) against ``dag.test()`` (``--airflow``): the same
lake, the same recorded metrics and asset events, the same outcome of a failure, the same context
in a task; and, on its own, no metadata database and none of Airflow's scheduler parts.

What legitimately differs between the two ways, and is ignored here: the run id
(``manual__{when the run started}``), ``run_after`` and the task instance ids (the moment and the
UUIDs of each run), ``triggering_user_name`` (``dag.test()`` writes ``dag_test``), the names of
the lake's data files (a UUID per written file) and the ``committed_at`` time of each manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.client import Client
from pipelines.runs.local import run_dag

DAYS = ("2024-01-01", "2024-01-02")
TABLE_LOG = "_delta_log"  # a folder holding one, under the lake, is a Delta table


def lake_tables(root: Path) -> dict[str, dict]:
    """Every table under a lake root, by path: its version, what its runs recorded (each day's
    run metrics, the config), each partition's row count, and its rows as a DataFrame. The
    namespace's runs table is read through the tables (its rows carry the time they were
    recorded at)."""
    from pipelines.lake.runs import FOLDER, RunLog
    from pipelines.lake.storage import Storage
    from pipelines.lake.tables import Table

    storage = Storage(str(root))
    found = {}
    for log in sorted(root.rglob(TABLE_LOG)):
        path = log.parent.relative_to(root).as_posix()
        namespace, _, name = path.partition("/")
        if name == FOLDER:
            continue
        runs = RunLog(storage, f"{root}/{namespace}/{FOLDER}")
        table = Table(storage, f"{root}/{path}", "", (runs, name))
        snap = table.snapshot()
        found[path] = {
            "version": snap.version,
            "meta": snap.meta,
            "partitions": snap.partitions,
            "rows": {key: table.read_partition(key, snap) for key in snap.partitions},
        }
    return found


def in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows sorted by every column: a Delta table's rows are a set, and delta-rs's parallel
    writer does not always keep the order it was given within a file (seen here under load, one
    run in three); the old format wrote each partition in key order."""
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def assert_same_lakes(a: Path, b: Path) -> None:
    ta, tb = lake_tables(a), lake_tables(b)
    assert sorted(ta) == sorted(tb)
    for path in ta:
        for part in ("version", "meta", "partitions"):
            assert ta[path][part] == tb[path][part], (path, part)
        for key, frame in ta[path]["rows"].items():
            other = tb[path]["rows"][key]
            pd.testing.assert_frame_equal(in_order(frame), in_order(other), obj=f"{path} {key}")
    claims = [p.relative_to(a) for p in a.rglob("*.json") if TABLE_LOG not in p.parts]
    assert claims == [p.relative_to(b) for p in b.rglob("*.json") if TABLE_LOG not in p.parts]
    for claim in claims:  # the namespace's claim of its prefix
        assert (a / claim).read_text() == (b / claim).read_text()


def events_of(outcome, lake: Path) -> list[tuple]:
    """The run's asset events, the lake root left out of their URIs, in a stable order (the
    database records one task's events in no particular order)."""
    root = f"file://{lake}"
    rows = []
    for event in outcome.events:
        uri, name = (v.replace(root, "<lake>") for v in (event.uri, event.name))
        extra = json.dumps(event.extra, sort_keys=True)
        rows.append((event.task_id, uri, name, extra, event.partition_key or ""))
    return sorted(rows)


def recorded(outcome, lake: Path) -> dict:
    """Everything a run's outcome records, but its run id and duration."""
    return {
        "dag": (outcome.dag_id, outcome.ds, outcome.state, outcome.failed_task, outcome.error),
        "results": outcome.results,
        "events": events_of(outcome, lake),
    }


def submit(monkeypatch, lake: Path, name: str, *, full_airflow: bool, days=DAYS):
    """Submit ``name`` into ``lake``; its outcomes and the metrics of the last day."""
    monkeypatch.setenv("PIPELINES_LAKE", str(lake))
    results = Client(full_airflow=full_airflow).submit(name, days[0], end=days[-1])
    return results, results.outputs.metrics  # metrics read now: from this lake


def test_the_sample_cookbook_writes_and_records_the_same_both_ways(home, airflow_db, monkeypatch):
    lakes = {way: home / f"lake_{way}" for way in ("airflow", "local")}
    full, full_metrics = submit(monkeypatch, lakes["airflow"], "e2e_test", full_airflow=True)
    fast, fast_metrics = submit(monkeypatch, lakes["local"], "e2e_test", full_airflow=False)
    assert full.ok and fast.ok, [(r.dag_id, r.ds, r.error) for r in (*full.runs, *fast.runs)]
    assert_same_lakes(lakes["airflow"], lakes["local"])
    assert len(lake_tables(lakes["local"])) == 14  # 3 datasets' 3 layers, 3 aggregates, 2 workflows
    assert fast_metrics == full_metrics and fast_metrics["accuracy"] >= 0.5
    assert len(fast.runs) == len(full.runs) == 12  # 5 children and the parent, each day
    for a, b in zip(full.runs, fast.runs, strict=True):
        assert recorded(b, lakes["local"]) == recorded(a, lakes["airflow"]), a.dag_id
        assert a.run_id.startswith("manual__") and b.run_id.startswith("manual__")
    orders = fast.runs[0]
    assert {e.task_id for e in orders.events} == {
        "ingest.extract",
        "clean.merge",
        "check.check_keys",
        "aggregate.aggregate",
    }
    published = [e for e in orders.events if e.task_id == "check.check_keys"]
    assert [(e.extra["rows_checked"], e.partition_key) for e in published] == [(4, DAYS[0])]
    assert fast.runs[5].results["verify"] == {"passed": 16, "failed": 0}


def break_source(home: Path) -> None:
    (home / "include" / "sample" / "orders" / "orders_2024-01-02.csv").unlink()


def break_quality(home: Path) -> None:
    """At most 20 % of raw rows may be quarantined: the check fails after extract and merge."""
    registry = home / "include" / "registry.csv"

    def with_column(line: str) -> str:
        if line.startswith("#"):
            return line
        if line.startswith("dataset,"):
            return f"{line},max_quarantine_pct"
        return f"{line},20" if line.startswith("orders,") else f"{line},"

    registry.write_text("\n".join(map(with_column, registry.read_text().splitlines())) + "\n")


@pytest.mark.parametrize(
    ("breakage", "task", "said"),
    [
        (break_source, "ingest.extract", "orders: source for 2024-01-02 not found"),
        (break_quality, "check.check_keys", "quarantined (40%), over max_quarantine_pct=20"),
    ],
)
def test_a_failed_task_gives_the_same_outcome_both_ways(
    home, airflow_db, monkeypatch, breakage, task, said
):
    breakage(home)
    outcomes = {}
    for way, full_airflow in (("airflow", True), ("local", False)):
        lake = home / f"lake_{way}"
        monkeypatch.setenv("PIPELINES_LAKE", str(lake))
        outcome = run_dag("local__orders", "2024-01-02", full_airflow=full_airflow)
        outcomes[way] = recorded(outcome, lake)
    assert outcomes["local"] == outcomes["airflow"]
    _, _, state, failed_task, error = outcomes["local"]["dag"]
    assert (state, failed_task) == ("failed", task)
    assert said in error and "Traceback" not in error
    assert_same_lakes(home / "lake_airflow", home / "lake_local")


def test_a_task_sees_the_same_context_both_ways(home, airflow_db, monkeypatch):
    """What the dataset steps and a workflow read from the context, compared key by key."""
    from airflow.sdk import get_current_context

    import pipelines.steps.dataset
    import pipelines.steps.workflow

    seen: list[dict] = []

    def spying(original):
        def step(*args):
            seen.append(context_summary(get_current_context()))
            return original(*args)

        return step

    monkeypatch.setattr(pipelines.steps.dataset, "extract", spying(pipelines.steps.dataset.extract))
    monkeypatch.setattr(pipelines.steps.workflow, "run", spying(pipelines.steps.workflow.run))
    for way, full_airflow in (("airflow", True), ("local", False)):
        monkeypatch.setenv("PIPELINES_LAKE", str(home / f"lake_{way}"))
        Client(full_airflow=full_airflow).submit("customer_features", "2024-01-02", upstream=True)
    # orders for 2024-01-01 and 2024-01-02 (its 3-day window: --upstream fills it), customers,
    # the workflow: each way
    assert len(seen) == 8
    for airflow_seen, local_seen in zip(seen[:4], seen[4:], strict=True):
        assert local_seen.pop("prev_success") == "None"
        airflow_seen.pop("prev_success")
        assert local_seen == airflow_seen
    workflow = seen[-1]
    assert workflow["data_interval"] == ("2024-01-02T00:00:00+00:00",) * 2  # on assets: [D, D]
    dataset = seen[1]  # orders for 2024-01-02
    assert dataset["data_interval"] == ("2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00")
    assert dataset["ti"] == ("ingest.extract", "local__orders", 1, -1, 0)


def context_summary(context) -> dict:
    """The context of a running task, without what differs between two runs of it."""
    dag_run, ti = context["dag_run"], context["ti"]
    differs = {"run_id", "run_after", "triggering_user_name"}
    return {
        "keys": sorted(context.keys()),
        "logical_date": context["logical_date"].isoformat(),
        "data_interval": (
            context["data_interval_start"].isoformat(),
            context["data_interval_end"].isoformat(),
        ),
        "ds": (context["ds"], context["ds_nodash"], context["ts"]),
        "dag_run": {k: v for k, v in dag_run.model_dump(mode="json").items() if k not in differs},
        "run_id": (context["run_id"] == dag_run.run_id == ti.run_id, ti.run_id[:8]),
        "ti": (ti.task_id, ti.dag_id, ti.try_number, ti.map_index, ti.max_tries),
        "ti_type": type(ti).__name__,
        "task": (context["task"].task_id, type(context["task"]).__name__),
        "dag": context["dag"].dag_id,
        "params": dict(context["params"]),
        "inlets": [in_lake(a.uri) for a in context["inlets"]],
        "outlets": [in_lake(a.uri) for a in context["outlets"]],
        "outlet_events": type(context["outlet_events"]).__name__,
        "partition": (context.get("partition_key"), context.get("partition_date")),
        # no database, no history: None (dag.test() finds the runs of earlier tests in its own)
        "prev_success": str(context["prev_start_date_success"]),
    }


def in_lake(uri: str) -> str:
    """A lake URI without the lake root (each way writes its own lake)."""
    return uri.replace(f"file://{os.environ['PIPELINES_LAKE']}", "<lake>")


def test_client_full_airflow_writes_the_run_to_the_database_and_the_default_does_not(
    home, airflow_db
):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    full = Client(full_airflow=True).submit("customers", "2024-01-03").runs[0]
    fast = Client().submit("customers", "2024-01-03").runs[0]
    with create_session() as session:
        stored = {r.run_id for r in session.query(DagRun).filter(DagRun.dag_id == full.dag_id)}
    assert full.run_id in stored and fast.run_id not in stored
    assert full.ok and fast.ok and full.results == fast.results


def test_templated_text_stays_literal_through_a_local_run(tmp_path, monkeypatch):
    """The local runner renders templates as a worker does: the registry's and the data's Jinja
    and shell text reach the lake byte for byte, nothing is executed (the dag.test() twin is in
    tests/reliability/test_bad_input.py)."""
    from tests.reliability import workload
    from tests.reliability.test_bad_input import ODD, odd_home

    project = odd_home(tmp_path)
    monkeypatch.setenv("PIPELINES_HOME", str(project))
    monkeypatch.setenv("PIPELINES_LAKE", str(tmp_path / "lake"))
    monkeypatch.chdir(tmp_path)
    outcome = run_dag("local__odd", "2024-01-01")
    assert outcome.ok, outcome.error
    cleaned = workload.read_table(
        workload.Env(str(project), str(tmp_path / "lake")), "odd", "cleaned"
    )
    assert set(workload.HOSTILE) <= set(cleaned["memo"].dropna())
    assert not any("pwned" in files for _, _, files in os.walk(tmp_path))
    from pipelines.runs import dag_folder

    dag = dag_folder.load("local__odd")  # as the local run parsed it
    assert {t.owner for t in dag.tasks} == {ODD["owner"]} and dag.description == ODD["description"]


PROBE = """
import json, sys
from pipelines.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
FLOOR = "import json, sys, airflow.sdk; print(json.dumps(sorted(sys.modules)))"
SCHEDULER_PARTS = (
    "airflow.jobs",
    "airflow.models.dagrun",
    "airflow.models.taskinstance",
    "airflow.models.dag",
    "airflow.dag_processing.dagbag",
    "airflow.dag_processing.manager",
    "airflow.dag_processing.processor",
    "airflow.utils.db",
    "airflow.api_fastapi.execution_api.app",
)


def probe(tmp_path: Path, code: str, *args: str) -> str:
    """Run ``code`` in a fresh process with a fresh Airflow home; its last line of output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATABASE__")}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_local_run_imports_no_scheduler_part_and_creates_no_database(home, tmp_path):
    ran = json.loads(probe(tmp_path, PROBE, "run", "orders", "--date", "2024-01-01"))
    assert ran["code"] == 0
    loaded = set(ran["modules"])
    parts = [m for m in loaded if any(m == p or m.startswith(f"{p}.") for p in SCHEDULER_PARTS)]
    assert parts == []
    assert "pandas" in loaded  # the steps ran in this process
    floor = set(json.loads(probe(tmp_path, FLOOR)))  # `import airflow.sdk` loads the bundles
    processing = {m for m in loaded if m.startswith(("airflow.dag_processing", "airflow.models"))}
    assert processing <= floor
    assert not (tmp_path / "airflow" / "airflow.db").exists()
    assert (home / "lake" / "local" / "cleaned" / "orders" / TABLE_LOG).is_dir()


def test_airflow_flag_runs_through_dag_test_and_its_database(home, tmp_path):
    ran = json.loads(probe(tmp_path, PROBE, "run", "orders", "--date", "2024-01-01", "--airflow"))
    assert ran["code"] == 0
    assert "airflow.models.dagrun" in ran["modules"]
    assert (tmp_path / "airflow" / "airflow.db").exists()


# -- the runner on its own, over DAGs made here --------------------------------------------------
LOGICAL = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)


def tiny_dag(dag_id: str, **tasks):
    """A DAG of ``task_id=callable(context)`` tasks chained in the given order."""
    from airflow.sdk import DAG, BaseOperator

    class Call(BaseOperator):
        def __init__(self, *, call, **kwargs):
            super().__init__(**kwargs)
            self.call = call

        def execute(self, context):
            return self.call(context)

    with DAG(dag_id, schedule=None, start_date=LOGICAL) as dag:
        made = [
            Call(task_id=name, call=call, retry_delay=dt.timedelta(0))
            for name, call in tasks.items()
        ]
        for upstream, downstream in zip(made, made[1:], strict=False):
            upstream >> downstream
    return dag


def test_tasks_run_upstream_first_and_pull_json_round_tripped_xcoms():
    from pipelines.runs import local_run

    def first(context):
        context["ti"].xcom_push(key="days", value=["2024-01-01"])
        return {"rows": 3, "when": LOGICAL.date()}

    def second(context):
        ti = context["ti"]
        pulled = ti.xcom_pull(task_ids="first")
        assert pulled == {"rows": 3, "when": LOGICAL.date()}  # through serde and JSON, as Airflow
        assert ti.xcom_pull(task_ids="first", key="days") == ["2024-01-01"]
        assert ti.xcom_pull(task_ids="nobody") is None
        return pulled["rows"] + 1

    record = local_run.run(tiny_dag("t_xcom", first=first, second=second), LOGICAL)
    assert (record.state, record.states) == ("success", {"first": "success", "second": "success"})
    assert record.run_id.startswith("manual__")


def test_a_failure_fails_the_run_and_what_follows_is_upstream_failed():
    from pipelines.runs import local_run

    def boom(context):
        raise ValueError("boom")

    record = local_run.run(tiny_dag("t_fail", a=lambda c: 1, b=boom, c=lambda c: 1), LOGICAL)
    assert record.states == {"a": "success", "b": "failed", "c": "upstream_failed"}
    assert (record.state, record.failed_task, str(record.error)) == ("failed", "b", "boom")


def test_a_skip_skips_what_follows_and_a_pattern_marks_success_without_running():
    from airflow.sdk.exceptions import AirflowSkipException

    from pipelines.runs import local_run

    ran = []

    def skip(context):
        raise AirflowSkipException("nothing to do")

    record = local_run.run(tiny_dag("t_skip", a=skip, b=ran.append), LOGICAL)
    assert (record.state, record.states) == ("success", {"a": "skipped", "b": "skipped"})
    record = local_run.run(tiny_dag("t_mark", a=ran.append, b=ran.append), LOGICAL, skip="a")
    assert record.states == {"a": "success", "b": "success"} and len(ran) == 1


def test_a_task_is_retried_as_its_retries_say():
    from pipelines.runs import local_run

    tries = []

    def flaky(context):
        tries.append(context["ti"].try_number)
        if len(tries) == 1:
            raise OSError("lost the storage")
        return "ok"

    dag = tiny_dag("t_retry", a=flaky)
    dag.get_task("a").retries = 1
    record = local_run.run(dag, LOGICAL)
    assert (record.state, tries) == ("success", [1, 2])


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("trigger_rule", "all_done", "trigger rule all_done"),
        ("depends_on_past", True, "a dependency on the previous run"),
    ],
)
def test_what_a_local_run_would_do_differently_is_refused(setting, value, said):
    from pipelines.exceptions import PipelinesError
    from pipelines.runs import local_run

    ran = []
    dag = tiny_dag("t_refused", a=ran.append, b=ran.append)
    setattr(dag.get_task("b"), setting, value)
    with pytest.raises(PipelinesError, match=f"task b has {said}.* run with --airflow"):
        local_run.run(dag, LOGICAL)
    assert ran == []  # refused before anything ran


def test_each_outlet_gets_the_events_the_api_server_would_record():
    from airflow.sdk import Asset

    from pipelines.runs import local_run

    keyed, plain, dropped = (Asset(f"file:///tmp/t_events/{n}") for n in ("k", "p", "d"))

    def emit(context):
        events = context["outlet_events"]
        events[keyed].extra.update(rows=2)
        events[keyed].add_partitions(["2024-01-01", "2024-01-02"])
        events[dropped].extra.update(rows=9)
        task = context["task"]
        task.outlets = [o for o in task.outlets if o is not dropped]  # as StepOperator.signal

    dag = tiny_dag("t_events", a=emit)
    dag.get_task("a").outlets = [keyed, plain, dropped]
    record = local_run.run(dag, LOGICAL)
    assert sorted((e.uri[-1], e.extra, e.partition_key or "") for e in record.events) == [
        ("k", {"rows": 2}, "2024-01-01"),
        ("k", {"rows": 2}, "2024-01-02"),
        ("p", {}, ""),  # an outlet the task said nothing about: one empty event
    ]
