"""A database source's faults, through the real entry points (``pipelines validate --sources`` and
``pipelines run``) against a real PostgreSQL on 127.0.0.1 (issue 27): each is one line, names the
connection and never its password, and ends the task as what it is: refused (a wrong password,
an unknown table, no such connection, a statement that cannot be sent: AirflowFailException, no
retry) or passing (nothing listening, a connection dropped mid-read: SourceError, retried).

The suite's server trusts every login; this module's role ``locked`` has a password that counts
(a ``scram-sha-256`` line put first in pg_hba.conf, taken out again after the module). Every
case that had a password to leak counts ``secret_cases``; one printed counts ``secrets_printed``
and fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.exceptions import SourceError, SourceRefused
from tests.e2e import postgres
from tests.reliability.test_secrets import printed

CORE = "Zq8Wv3PgNeverShown"  # in both passwords below; never in any output
PASSWORD = f"right-{CORE}"
WRONG = f"wrong-{CORE}"
ROLE = "locked"
DAY = "2024-01-01"
HEADER = "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date"


def judge(figures, said: str) -> None:
    """Count one case; a password in ``said`` counts as printed and fails the test."""
    figures["secret_cases"] += 1
    if CORE in said:
        figures["secrets_printed"] += 1
    assert CORE not in said, said[-3000:]


@pytest.fixture(scope="module")
def database():
    """The module's database (public.orders: 200 rows on DAY) and the role ``locked``, whose
    password the server checks; pg_hba.conf is restored after the module."""
    server = postgres.server()
    name = server.create_database()
    server.query(
        name,
        "CREATE TABLE public.orders (order_id integer PRIMARY KEY, updated_at timestamptz, "
        "note text);"
        "INSERT INTO public.orders SELECT g, timestamptz '2024-01-01 00:00+00' + g * interval "
        "'1 minute', 'n' || g FROM generate_series(1, 200) AS g;"
        f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}';"
        f"GRANT SELECT ON public.orders TO {ROLE}",
    )
    hba = server.data / "pg_hba.conf"
    before = hba.read_text()
    hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n{before}")
    server.query("postgres", "SELECT pg_reload_conf()")
    try:
        yield server, name
    finally:
        hba.write_text(before)
        server.query("postgres", "SELECT pg_reload_conf()")


@pytest.fixture
def project(home, airflow_db, database, monkeypatch):
    """A project of one dataset per connection below; the task's ending exceptions recorded."""
    from pipelines.wiring import operators
    from tests.conftest import write_registry

    server, name = database
    at = f"127.0.0.1:{server.port}/{name}"
    connections = {
        "right": f"postgresql://{ROLE}:{PASSWORD}@{at}",
        "wrong": f"postgresql://{ROLE}:{WRONG}@{at}",
        "trusted": f"postgresql://airflow:{PASSWORD}@{at}",  # trust: any password is let in
        "dead": f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{postgres.free_port()}/{name}",
    }
    for conn_id, uri in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)
    rows = [
        f"{conn_id},sql://{conn_id}/public.orders,order_id,updated_at,updated_at,incremental,{DAY}"
        for conn_id in connections
    ]
    rows += [
        f"nosuch,sql://trusted/public.nosuch,order_id,updated_at,updated_at,incremental,{DAY}",
        f"absent,sql://absent/public.orders,order_id,updated_at,updated_at,incremental,{DAY}",
        f"unbound,sql://trusted/q/unbound.sql,order_id,updated_at,updated_at,incremental,{DAY}",
    ]
    write_registry(home, "\n".join([HEADER, *rows]) + "\n")
    (home / "include" / "q").mkdir()
    (home / "include" / "q" / "unbound.sql").write_text(
        "SELECT * FROM public.orders WHERE updated_at >= :since"
    )
    ended: list[BaseException] = []
    real = operators.fail_clearly

    def recorded(operator, context, exc):
        ended.append(real(operator, context, exc))
        return ended[-1]

    monkeypatch.setattr(operators, "fail_clearly", recorded)
    operators.FAILURES.clear()
    return ended


def run(name: str) -> tuple[int, str]:
    """``pipelines run NAME --date DAY``: its exit code and its line about the run."""
    from pipelines.cli import main

    return main(["run", name, "--date", DAY]), f"local__{name} {DAY}"


def the_line(out: str, run_id: str) -> str:
    lines = [line for line in out.splitlines() if run_id in line and line.startswith("FAIL")]
    assert len(lines) == 1, out[-3000:]
    return lines[0]


def refused_ending(ended: list[BaseException]) -> str:
    """The one task that failed ended with no retry: its message."""
    from airflow.sdk.exceptions import AirflowFailException

    assert len(ended) == 1 and isinstance(ended[0], AirflowFailException), ended
    return str(ended[0])


def retried_ending(ended: list[BaseException]) -> str:
    from airflow.sdk.exceptions import AirflowFailException

    assert len(ended) == 1, ended
    assert isinstance(ended[0], SourceError) and not isinstance(ended[0], SourceRefused), ended
    assert not isinstance(ended[0], AirflowFailException)
    return str(ended[0])


def test_a_wrong_password_is_one_line_at_validate_naming_the_connection_not_the_password(
    figures, project, capfd, caplog
):
    from pipelines.cli import main

    code = main(["validate", "--sources"])
    out = printed(capfd, caplog)
    judge(figures, out)
    assert code == 1
    said = [line for line in out.splitlines() if line.startswith("registry.csv:3:")]
    assert said == [
        "registry.csv:3: source: wrong: connection 'wrong', probing public.orders: FATAL: "
        f'password authentication failed for user "{ROLE}"'
    ], out[-3000:]
    assert "right: opened sql://right/public.orders" in out.splitlines()  # the password counts


def test_a_wrong_password_fails_the_run_in_one_line_without_retry(figures, project, capfd, caplog):
    code, run_id = run("wrong")
    ending = refused_ending(project)
    from pipelines.wiring import operators

    out = printed(capfd, caplog, ending, *operators.FAILURES.values())
    judge(figures, out)
    assert code == 1
    line = the_line(out, run_id)
    assert line.endswith(
        f"ingest.extract failed: connection 'wrong', reading public.orders for {DAY}: FATAL: "
        f'password authentication failed for user "{ROLE}"'
    ), line
    assert ending == line.split("ingest.extract failed: ", 1)[1]


def test_the_right_password_reads_the_table_and_prints_it_nowhere(figures, project, capfd, caplog):
    code, run_id = run("right")
    out = printed(capfd, caplog)
    judge(figures, out)
    assert code == 0, out[-3000:]
    assert f"ok   {run_id}" in out and "raw 200, cleaned 200, quarantined 0" in out


@pytest.mark.parametrize(
    ("name", "said"),
    [
        (
            "nosuch",
            f"connection 'trusted', reading public.nosuch for {DAY}: relation "
            '"public.nosuch" does not exist (SQLSTATE 42P01)',
        ),
        ("absent", "no Airflow connection 'absent' (not in the environment"),
        (
            "unbound",
            f"connection 'trusted', reading q/unbound.sql for {DAY}: A value is required for "
            "bind parameter 'since'",
        ),
    ],
    ids=["unknown-table", "no-such-connection", "query-parameter-unbound"],
)
def test_what_cannot_pass_fails_the_run_in_one_line_without_retry(
    figures, project, capfd, caplog, name, said
):
    code, run_id = run(name)
    ending = refused_ending(project)
    out = printed(capfd, caplog, ending)
    judge(figures, out)
    assert code == 1
    line = the_line(out, run_id)
    assert f"ingest.extract failed: {said}" in line, line
    assert "\n" not in ending and ending in line
    assert "***" not in line  # nothing to redact: no hint reads as if a credential was cut


def test_a_server_not_listening_fails_the_run_in_one_line_and_is_retried(
    figures, project, capfd, caplog
):
    code, run_id = run("dead")
    ending = retried_ending(project)
    out = printed(capfd, caplog, ending)
    judge(figures, out)
    assert code == 1
    line = the_line(out, run_id)
    assert line.endswith("failed: Connection refused; retried: it may pass"), line
    assert "\n" not in ending and ending in line


def test_a_connection_dropped_mid_read_is_retried_and_commits_nothing(
    figures, project, database, capfd, caplog, monkeypatch
):
    """The backend is ended after the first chunk of 50 rows: the run fails in the database's one
    line (SQLSTATE 57P01), is retried, and the raw table got no partial day."""
    from pipelines.steps import sql_types

    server, name = database
    monkeypatch.setenv("PIPELINES_SQL_CHUNK_ROWS", "50")
    chunks = []
    real = sql_types.arrays

    def arrays(rows, columns):
        chunks.append(len(rows))
        if len(chunks) == 1:
            server.query(
                "postgres",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                name,
            )
        return real(rows, columns)

    monkeypatch.setattr(sql_types, "arrays", arrays)
    code, run_id = run("trusted")
    ending = retried_ending(project)
    out = printed(capfd, caplog, ending)
    judge(figures, out)
    assert code == 1
    assert chunks == [50], chunks  # the first chunk only: the rows came 50 at a time
    line = the_line(out, run_id)
    assert line.endswith(
        f"ingest.extract failed: connection 'trusted', reading public.orders for {DAY}: "
        "terminating connection due to administrator command (SQLSTATE 57P01); retried: it "
        "may pass"
    ), line
    assert "\n" not in ending and ending in line
    lake = Path(os.environ["PIPELINES_LAKE"])
    assert list(lake.rglob("_delta_log")) == []  # no table was committed to, raw included
    monkeypatch.setattr(sql_types, "arrays", real)
    code, _ = run("trusted")  # the retry
    out = printed(capfd, caplog)
    assert code == 0 and "raw 200, cleaned 200, quarantined 0" in out, out[-3000:]
