"""Real command lines in subprocesses: ``airflow dags test`` and the ``pipelines`` console script.

Each runs in a fresh SQLite Airflow home (the database ``airflow db migrate`` writes, copied from
the session's template) over a temp copy of include/ and an empty temp lake, exactly as a user
would run them.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import subprocess

import pytest

from tests.e2e import sql_orders
from tests.e2e.airflow_stack import BIN, REPO, airflow_env, migrated_sqlite

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, sqlite_template):
    """A project home (include/ copy, empty lake) with a migrated Airflow home; its env."""
    home = tmp_path_factory.mktemp("cli")
    shutil.copytree(REPO / "include", home / "include")
    env = airflow_env(home, AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING")
    migrated_sqlite(env, sqlite_template)
    return home, env


def run(env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    if args[0] == "pipelines":  # as a user runs it: the CLI picks Airflow's log level itself
        env = {k: v for k, v in env.items() if k != "AIRFLOW__LOGGING__LOGGING_LEVEL"}
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_airflow_dags_test_writes_the_partition_of_its_date(project):
    home, env = project
    done = run(env, "airflow", "dags", "test", "local__orders", "2024-01-02")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        rows = db.execute(
            "SELECT state, logical_date, data_interval_start, data_interval_end FROM dag_run "
            "WHERE dag_id = 'local__orders'"
        ).fetchall()
    assert len(rows) == 1, rows
    state, logical, start, end = rows[0]
    assert state == "success"
    assert [v[:19] for v in (logical, start, end)] == [
        "2024-01-02 00:00:00",
        "2024-01-02 00:00:00",
        "2024-01-03 00:00:00",
    ]
    raw = home / "lake" / "local" / "raw" / "orders"
    assert sorted(p.name for p in raw.glob("ds=*")) == ["ds=2024-01-02"]

    import pandas as pd

    from pipelines.lake.lake import Lake

    frame = Lake(str(home / "lake"), "local").raw("orders").read(["2024-01-02"])
    source = pd.read_csv(REPO / "include" / "sample" / "orders" / "orders_2024-01-02.csv")
    assert len(frame) == len(source) == 5
    assert list(frame["order_id"].astype("Int64")) == list(source["order_id"].astype("Int64"))
    assert set(frame["ds"]) == {"2024-01-02"}


def test_airflow_dags_test_of_a_research_dag_records_the_interval_its_tasks_process(project):
    """A research namespace schedules nothing; ``airflow dags test exp__orders D`` still records
    ``[D, next D)`` in Airflow, as serving's does and as its tasks process (with schedule=None,
    Airflow recorded ``[D, D)``)."""
    home, env = project
    for namespace in ("serving", "exp"):  # exp reads serving's raw delivery in place
        argv = ("airflow", "dags", "test", f"{namespace}__orders", "2024-01-02")
        done = run(env | {"PIPELINES_NAMESPACE": namespace}, *argv)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        rows = db.execute(
            "SELECT dag_id, state, data_interval_start, data_interval_end FROM dag_run "
            "WHERE dag_id IN ('serving__orders', 'exp__orders')"
        ).fetchall()
    assert sorted((d, s, a[:19], b[:19]) for d, s, a, b in rows) == [
        ("exp__orders", "success", "2024-01-02 00:00:00", "2024-01-03 00:00:00"),
        ("serving__orders", "success", "2024-01-02 00:00:00", "2024-01-03 00:00:00"),
    ]
    cleaned = home / "lake" / "exp" / "cleaned" / "orders"
    assert sorted(p.name for p in cleaned.glob("dt=*")) == ["dt=2024-01-01", "dt=2024-01-02"]


def test_airflow_dags_test_reads_a_postgresql_table_through_a_connection(
    project, tmp_path, monkeypatch
):
    """A dataset over a PostgreSQL table, through a connection made with ``airflow connections
    add`` (in the SQLite metadata database: the task finds it through the Task SDK). Two days,
    the table updated in between: each day's raw is that day's SELECT, cleaned the latest version
    of each order (the late update wins), the day after untouched, the password in no output.
    Its project holds that dataset alone: each ``airflow dags test`` parses one DAG."""
    home, env = project
    include = tmp_path / "include"
    include.mkdir()
    for name in ("aggregates.yaml", "cookbooks.yaml", "workflows.yaml"):
        (include / name).write_text("[]\n")
    (include / "columns.yaml").write_text("{}\n")
    first, second = dt.date(2024, 1, 2), dt.date(2024, 1, 3)
    header = (REPO / "include" / "registry.csv").read_text().splitlines()[0]
    (include / "registry.csv").write_text(
        f"{header}\n{sql_orders.registry_row('orders_db', first)}"
    )
    database = sql_orders.create(first)
    env = env | {"PIPELINES_HOME": str(tmp_path), "PIPELINES_LAKE": str(tmp_path / "lake")}
    password = "e2e-" + "never-printed"
    uri = sql_orders.uri(database, password)
    done = run(env, "airflow", "connections", "add", sql_orders.CONN_ID, "--conn-uri", uri)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    want_first = sql_orders.source_rows(database, first, second)  # before the update
    outputs = []
    for day in (first, second):
        if day == second:
            sql_orders.update_late(database, first)
        done = run(env, "airflow", "dags", "test", "local__orders_db", str(day))
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        outputs.append(done.stdout + done.stderr)
    assert not [out for out in outputs if password in out]

    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        runs = db.execute(
            "SELECT state, data_interval_start, data_interval_end FROM dag_run "
            "WHERE dag_id = 'local__orders_db' ORDER BY logical_date"
        ).fetchall()
    assert [(s, a[:10], b[:10]) for s, a, b in runs] == [
        ("success", str(first), str(second)),
        ("success", str(second), str(second + sql_orders.DAY)),
    ]
    monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
    sql_orders.assert_read_incrementally(tmp_path, "orders_db", database, first, want_first)


def test_pipelines_run_then_read(project, tmp_path):
    home, env = project
    env = env | {"PIPELINES_LAKE": str(tmp_path / "lake")}  # its own, empty lake
    done = run(env, "pipelines", "run", "orders", "--date", "2024-01-01")
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "starting 1 run of orders: 2024-01-01", lines
    assert lines[1].startswith("ok   local__orders 2024-01-01 ("), lines
    assert lines[-1] == "1/1 runs succeeded"

    done = run(env, "pipelines", "read", "orders", "--layer", "cleaned", "--limit", "10")
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    header, *rows = (line.split() for line in done.stdout.splitlines())
    assert {"dt", "order_id", "customer_id", "status", "amount"} <= set(header), header
    ids = sorted(int(float(row[header.index("order_id")])) for row in rows)
    assert ids == [1001, 1002, 1003, 1004]  # the keyless row is quarantined, 1002 kept once
    assert done.stderr.strip().endswith("(4 rows)")

    done = run(env, "pipelines", "read", "orders", "--layer", "raw", "--as-of", "2024-01-01")
    assert done.returncode == 0 and done.stderr.strip().endswith("(6 rows)"), done.stderr


def test_pipelines_backfill_prints_its_own_lines_only(project, tmp_path):
    """Every line on stdout is the command's: what starts, each run with its counts, the failed
    day's reason, what was not run. No Airflow log line, no traceback."""
    home, env = project
    shutil.copytree(home / "include", tmp_path / "include")
    (tmp_path / "include" / "sample" / "orders" / "orders_2024-01-02.csv").unlink()
    env = env | {"PIPELINES_HOME": str(tmp_path), "PIPELINES_LAKE": str(tmp_path / "lake")}
    done = run(
        env, "pipelines", "backfill", "orders", "--start", "2024-01-01", "--end", "2024-01-03"
    )
    assert done.returncode == 1, done.stdout + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 5, lines
    assert lines[0] == "starting 3 runs of orders: 2024-01-01 .. 2024-01-03"
    assert lines[1].startswith("ok   local__orders 2024-01-01 (")
    assert lines[1].endswith("s): raw 6, cleaned 4, quarantined 2 (33%, 1 superseded), "
                             "daily_revenue 2 rows")  # fmt: skip
    assert lines[2].startswith("FAIL local__orders 2024-01-02 (")
    assert lines[2].endswith("s): ingest.extract failed: orders: source for 2024-01-02 not found: "
                             f"{tmp_path}/include/sample/orders/orders_2024-01-02.csv")  # fmt: skip
    assert lines[3:] == [
        "1/2 runs succeeded",
        "not run: 2024-01-03 (rerun them, or pass --keep-going)",
    ]
    assert "Traceback" not in done.stdout + done.stderr


def test_pipelines_validate_prints_one_line_per_bad_row(project, tmp_path):
    home, env = project
    include = tmp_path / "include"
    shutil.copytree(home / "include", include)
    (include / "aggregates.yaml").write_text("[]\n")
    (include / "cookbooks.yaml").write_text("[]\n")
    (include / "workflows.yaml").write_text("[]\n")  # they read orders, which this lacks
    (include / "columns.yaml").write_text("{}\n")  # it declares customers, which this lacks
    header = (REPO / "include" / "registry.csv").read_text().splitlines()[0]
    good = "{name},sample/orders/orders_{{ds}}.csv,csv,order_id,updated_at,order_date,incremental,"
    good += "@daily,2024-01-01,1,owner,,,1d"  # ... owner, description, tags, freshness
    rows = [good.format(name=f"ok_{n}") for n in range(3)]
    rows.insert(1, good.format(name="Bad-Name"))  # line 3
    rows.append(good.format(name="typo").replace(",incremental,", ",incremntal,"))  # line 6
    (include / "registry.csv").write_text("\n".join([header, *rows]) + "\n")

    done = run(env, "pipelines", "validate", str(include))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("registry.csv:3: dataset: "), lines
    assert lines[1].startswith("registry.csv:6: ingestion: "), lines
    assert "Traceback" not in done.stdout + done.stderr
    assert "3 datasets" in done.stderr

    (include / "registry.csv").write_text("\n".join([header, *rows[:1]]) + "\n")
    done = run(env, "pipelines", "validate", str(include))
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr
