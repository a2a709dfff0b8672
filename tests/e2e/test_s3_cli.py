"""An S3 lake from the command line, as a user sets it up: a real moto server on 127.0.0.1 and an
``aws`` connection made with ``airflow connections add`` (in the metadata database, not in an
``AIRFLOW_CONN_*`` variable). `run`, `read`, `show`, `list` and `vacuum` work through it and print
only their own lines; a missing bucket, a missing connection or an endpoint that does not answer
is one line, within seconds.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest

from tests.e2e.airflow_stack import BIN, REPO, airflow_env, migrated_sqlite
from tests.reliability.s3server import BUCKET, PASSWORD, S3Server
from tests.sample_database import without_database_sources

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory, s3, sqlite_template):
    """A project home whose lake is s3://BUCKET/cli, its connection in the metadata database
    (the sample without its database dataset: these tests are of the S3 lake, and `plan --apply`
    would backfill payments, which needs the shop's database)."""
    home = tmp_path_factory.mktemp("s3cli")
    shutil.copytree(REPO / "include", home / "include")
    without_database_sources(home / "include")
    env = airflow_env(home, PIPELINES_LAKE=f"s3://{BUCKET}/cli")
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    migrated_sqlite(env, sqlite_template)
    for conn_id, endpoint in (("pipelines_lake", s3.endpoint), ("deadend", _closed_port())):
        extra = json.dumps({"endpoint_url": endpoint, "region_name": "us-east-1"})
        login = ["--conn-login", "moto-access-key", "--conn-password", PASSWORD]
        _airflow(
            env, "connections", "add", conn_id, "--conn-type", "aws", *login, "--conn-extra", extra
        )
    return home, env


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed


def _airflow(env, *args: str) -> None:
    done = subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def pipelines(env, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in env.items() if k != "AIRFLOW__LOGGING__LOGGING_LEVEL"} | extra
    command = [str(BIN / "pipelines"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def test_every_command_works_through_a_connection_of_the_metadata_database(project):
    home, env = project
    done = pipelines(env, "run", "orders", "--date", "2024-01-01")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.splitlines()[1].startswith("ok   local__orders 2024-01-01 (")

    done = pipelines(env, "show")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"lake s3://{BUCKET}/cli namespace local"
    assert lines[1].split() == ["LAYER", "TABLE", "PARTITIONS", "ROWS", "NEWEST"]
    assert all(
        line.split()[0] in ("raw", "cleaned", "quarantine", "aggregated", "workflows")
        for line in lines[2:]
    )
    assert "raw         orders                1           6     ds=2024-01-01" in lines

    done = pipelines(env, "read", "orders", "--layer", "raw", "--format", "csv")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0].startswith("ds,order_id,")  # the table, nothing before
    assert len(done.stdout.splitlines()) == 7 and done.stderr.strip() == "(6 rows)"

    done = pipelines(env, "list")
    assert done.returncode == 0 and done.stdout.splitlines()[0].startswith("DAG ID"), done.stdout
    assert pipelines(env, "vacuum").stdout == "deleted 0 files no version of the last 168 h needs\n"
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"PIPELINES_LAKE": "s3://no-such-bucket/lake"},
            "(Airflow connection 'pipelines_lake'): the bucket 'no-such-bucket' does not exist",
        ),
        ({"PIPELINES_LAKE_CONN_ID": "nope"}, "error: no Airflow connection 'nope' (not in the"),
        ({"PIPELINES_LAKE_CONN_ID": "deadend"}, "the S3 endpoint does not answer"),
    ],
    ids=["missing-bucket", "no-connection", "endpoint-down"],
)
def test_what_cannot_be_reached_is_one_line_within_seconds(project, extra, message):
    home, env = project
    for command in (["show"], ["read", "orders", "--layer", "raw"]):
        started = time.monotonic()
        done = pipelines(env, *command, **extra)
        seconds = time.monotonic() - started
        assert done.returncode == 1, (command, done.stdout, done.stderr[-2000:])
        lines = done.stderr.splitlines()
        assert len(lines) <= 2 and message in lines[-1], (command, lines)
        assert lines[-1].startswith("error: ") and "Traceback" not in done.stdout + done.stderr
        assert "error: " not in done.stdout
        assert seconds < 30, (command, seconds)
        assert PASSWORD not in done.stdout + done.stderr


def test_a_run_into_a_missing_bucket_names_it_on_the_run_s_line(project):
    home, env = project
    done = pipelines(env, "run", "orders", "--date", "2024-01-02", PIPELINES_LAKE="s3://gone/x")
    assert done.returncode == 1
    line = done.stdout.splitlines()[1]
    assert line.startswith("FAIL local__orders 2024-01-02 (")
    assert "the bucket 'gone' does not exist" in line
    done = pipelines(env, "vacuum", PIPELINES_LAKE="s3://gone/x")
    assert done.returncode == 1 and "the bucket 'gone' does not exist" in done.stderr


def test_no_metadata_database_is_created_by_looking_for_the_connection(project, tmp_path):
    home, env = project
    fresh = tmp_path / "no-airflow-yet"
    done = pipelines(env, "show", AIRFLOW_HOME=str(fresh))
    assert done.returncode == 1
    assert done.stderr.startswith("error: no Airflow connection 'pipelines_lake' (there is no ")
    assert not (fresh / "airflow.db").exists()  # `pipelines init` would find none and make one


def test_status_reads_the_s3_lake_s_manifests(project):
    home, env = project
    assert pipelines(env, "run", "orders", "--date", "2024-01-02").returncode == 0
    done = pipelines(env, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    rows = {r["name"]: r for r in json.loads(done.stdout)["rows"]}
    orders = rows["orders"]
    assert (orders["newest_raw"], orders["checks"]) == ("2024-01-02", "passed")
    assert [d["ds"] for d in orders["days"]][-2:] == ["2024-01-01", "2024-01-02"]
    assert orders["freshness"]["late"] is True  # 1d allowed, years behind
    assert rows["customers"]["newest_raw"] is None  # never run here
    done = pipelines(env, "status")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0].startswith(f"lake s3://{BUCKET}/cli namespace local")
    assert PASSWORD not in done.stdout + done.stderr


def test_plan_and_apply_against_the_s3_lake(project):
    """`plan` reads the configs the S3 lake's manifests recorded; `--apply` runs what it
    implies there, after which nothing is left to do."""
    home, env = project
    assert pipelines(env, "run", "orders", "--date", "2024-01-01").returncode == 0
    done = pipelines(env, "plan", "--json")
    assert done.returncode == 2, done.stdout + done.stderr[-3000:]
    plan = json.loads(done.stdout)
    changes = {(c["kind"], c["name"]): c for c in plan["changes"]}
    assert ("dataset", "orders") not in changes  # written with the project's config
    assert changes[("dataset", "customers")]["action"] == "add"
    assert plan["namespace"] == "local" and not plan["nothing_to_do"]
    done = pipelines(env, "plan")
    assert done.returncode == 2
    assert done.stdout.splitlines()[0].startswith("plan for namespace local (s3://"), done.stdout

    done = pipelines(env, "plan", "--apply")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    done = pipelines(env, "plan")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert PASSWORD not in done.stdout + done.stderr
