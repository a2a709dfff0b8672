"""Secrets, as an attacker would try to get one printed (issue 26, cases 1 to 3), through the real
entry points: the command line (``main([...])``, stdout, stderr and logs captured) and the client
against a small HTTP server on 127.0.0.1 that answers with what it was sent.

Every case counts ``secret_cases``, and ``secrets_printed`` when a secret reached any output (the
test then fails). Each secret holds a core of plain letters that survives any encoding (URL, JSON,
``repr``): the core is what is looked for.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest

from tests.reliability.s3server import BUCKET, Fault
from tests.reliability.workload import DAYS, Env

CORE = "Kx7Qz9NeverShown"  # in every secret below; never in any output
SECRET = f"tok{CORE}ab/+=="
PASSWORD = f"p@ss\"wo'rd/+ {CORE} &%"
USERNAME = f"ops-{CORE}-user"
TOKEN = f"eyJhbGciOi.{CORE}.sig"
DAY = DAYS[1]


def judge(figures, printed: str) -> None:
    """Count one case; a secret in ``printed`` counts as printed and fails the test."""
    figures["secret_cases"] += 1
    if CORE in printed:
        figures["secrets_printed"] += 1
    assert CORE not in printed, printed[-3000:]


def printed(capfd, caplog, *more: object) -> str:
    return "".join(capfd.readouterr()) + caplog.text + "".join(map(str, more))


def registry(home, source: str) -> None:
    data = home / "include" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (home / "include" / "registry.csv").write_text(
        "dataset,source,format,primary_key,ingestion,start_date\n"
        f"leak,{source},csv,id,full,2024-01-01\n"
    )


# -- 1. a credential in a source URI -----------------------------------------------------------
SOURCES = {  # (source, the keys its refusal names)
    "aws-session-token": (
        f"s3://{BUCKET}/in/x_{{ds}}.csv?aws_session_token={SECRET}",
        "key 'aws_session_token'",
    ),
    "presigned": (
        f"s3://{BUCKET}/in/x.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={SECRET}"
        f"&X-Amz-Signature={SECRET}",
        "keys 'X-Amz-Credential', 'X-Amz-Signature'",
    ),
    "security-token": (
        f"s3://{BUCKET}/in/x.csv?X-Amz-Security-Token={SECRET}",
        "key 'X-Amz-Security-Token'",
    ),
    "upper-case": (f"s3://{BUCKET}/in/x.csv?AWS_SESSION_TOKEN={SECRET}", "key 'AWS_SESSION_TOKEN'"),
    "sas-sig": (f"file:///data/x.csv?sv=2022-11-02&sig={SECRET}", "key 'sig'"),
    "access-token": (f"file:///data/x.csv?access_token={SECRET}", "key 'access_token'"),
    "key-url-encoded": (
        f"s3://{BUCKET}/in/x.csv?X%2DAmz%2DSignature={SECRET}",
        "key 'X-Amz-Signature'",
    ),
    "query-url-encoded": (
        f"s3://{BUCKET}/in/x.csv%3Faws_session_token%3D{SECRET}",
        "key 'aws_session_token'",
    ),
    "twice-encoded": (
        f"s3://{BUCKET}/in/x.csv%253FX-Amz-Security-Token%253D{SECRET}",
        "key 'X-Amz-Security-Token'",
    ),
    "path": (f"data/x_{{ds}}.csv?X-Amz-Signature={SECRET}", "key 'X-Amz-Signature'"),
    "fragment": (
        f"file:///tmp/nonexist/ev.jsonl#X-Amz-Signature={SECRET}",
        "key 'X-Amz-Signature'",
    ),
}


@pytest.mark.parametrize(("source", "named"), list(SOURCES.values()), ids=list(SOURCES))
def test_validate_refuses_a_source_carrying_a_credential_and_prints_none(
    figures, tmp_path, monkeypatch, capfd, caplog, source, named
):
    from pipelines import cli

    registry(tmp_path, source)
    monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
    code = cli.main(["validate"])
    out = printed(capfd, caplog)
    judge(figures, out)
    assert code == 1
    refused = [line for line in out.splitlines() if "registry.csv:2: source:" in line]
    assert refused == [
        "registry.csv:2: source: the URI query carries a secret; use an Airflow connection "
        f"instead ({named})"
    ], out


def _run_line(figures, capfd, caplog, monkeypatch) -> str:
    """``pipelines run leak`` with the registry's check of its source taken away (a row that
    slipped past it): the failed run's line and every log show the source redacted."""
    from pipelines import cli
    from pipelines.project import registry_values

    monkeypatch.setattr(registry_values, "secret_query_keys", lambda value: [])
    code = cli.main(["run", "leak", "--date", DAY])
    out = printed(capfd, caplog)
    judge(figures, out)
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL local__leak")]
    assert len(failed) == 1 and "***" in failed[0], out[-3000:]
    return failed[0]


@pytest.mark.parametrize(
    "source",
    [
        f"data/x_{{ds}}.csv?X-Amz-Security-Token={SECRET}&aws_session_token={SECRET}",
        f"data/x_{{ds}}.csv%3FX-Amz-Signature%3D{SECRET}%26X-Amz-Credential%3D{SECRET}",
    ],
    ids=["as-written", "url-encoded"],
)
def test_a_failed_runs_line_hides_the_credential_of_a_local_source(
    figures, airflow_db, tmp_path, monkeypatch, capfd, caplog, source
):
    registry(tmp_path, source)
    monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
    monkeypatch.setenv("PIPELINES_LAKE", str(tmp_path / "lake"))
    assert "not found" in _run_line(figures, capfd, caplog, monkeypatch)


@pytest.mark.parametrize("status", [None, 403], ids=["missing", "access-denied"])
def test_a_failed_runs_line_hides_the_credential_of_an_s3_source(
    figures, airflow_db, s3, tmp_path, monkeypatch, capfd, caplog, status
):
    source = f"s3://{BUCKET}/in/x_{{ds}}.csv?X-Amz-Signature={SECRET}&aws_session_token={SECRET}"
    registry(tmp_path, source)
    env = Env(str(tmp_path), f"s3://{BUCKET}/secrets", extra=s3.connection_env())
    for key, value in {"PIPELINES_HOME": env.home, "PIPELINES_LAKE": env.lake, **env.extra}.items():
        monkeypatch.setenv(key, value)
    if status:
        s3.inject(*(Fault(m, "/in/", status, "AccessDenied", 100) for m in ("GET", "HEAD")))
    try:
        line = _run_line(figures, capfd, caplog, monkeypatch)
    finally:
        s3.clear()
    assert ("access refused" if status else "not found") in line


# -- 2. a credential in the Airflow URL --------------------------------------------------------
URLS = {
    "user-info": f"http://admin:{SECRET}@127.0.0.1:9",
    "at-in-password": f"http://admin:p@{SECRET}@127.0.0.1:9/",
    "token-parameter": f"http://127.0.0.1:9/?token={SECRET}",
    "access-token-parameter": f"http://127.0.0.1:9?x=1&access_token={SECRET}",
    "other-scheme": f"ftp://admin:{SECRET}@127.0.0.1:9",
}
COMMANDS = {
    "status": ["status"],
    "submit": ["submit", "ledger", "--date", DAY],
    "backfill": ["backfill", "ledger", "--start", DAYS[0], "--end", DAY],
}


@pytest.fixture
def deployment(project, tmp_path, monkeypatch):
    """The generated project over an empty lake of its own."""
    monkeypatch.setenv("PIPELINES_HOME", str(project))
    monkeypatch.setenv("PIPELINES_LAKE", str(tmp_path / "lake"))
    for name in ("URL", "USERNAME", "PASSWORD", "TOKEN"):
        monkeypatch.delenv(f"PIPELINES_AIRFLOW_{name}", raising=False)
    return project


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("url", list(URLS.values()), ids=list(URLS))
def test_an_airflow_url_carrying_a_credential_is_refused_without_printing_it(
    figures, deployment, capfd, caplog, command, url
):
    from pipelines import cli

    code = cli.main([*COMMANDS[command], "--url", url])
    out = printed(capfd, caplog)
    judge(figures, out)
    assert code == 1
    assert "must not carry credentials" in out or "must be http:// or https://" in out, out


@pytest.mark.parametrize("url", list(URLS.values()), ids=list(URLS))
def test_the_environments_airflow_url_and_the_client_print_no_credential(
    figures, deployment, monkeypatch, capfd, caplog, url
):
    from pipelines import cli
    from pipelines.client import Client
    from pipelines.exceptions import AirflowError

    monkeypatch.setenv("PIPELINES_AIRFLOW_URL", url)
    code = cli.main(["status"])
    with pytest.raises(AirflowError) as raised:
        Client(url, username="admin", password=PASSWORD)
    judge(figures, printed(capfd, caplog, raised.value, repr(raised.value)))
    assert code == 1


# -- 3. a server that answers with what it was sent --------------------------------------------
class _Echo(BaseHTTPRequestHandler):
    """Answers every request with the status and page :attr:`server.mode` names, made of the
    request it got (body, headers), as a misconfigured proxy or a debugging server would."""

    server: _EchoServer

    def log_message(self, *args):  # quiet
        pass

    def _answer(self) -> None:
        sent = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        headers = "".join(f"{k}: {v}\n" for k, v in self.headers.items())
        status, page = self.server.page(self.server.mode, sent, headers)
        data = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if page[:1] == "{" else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    mode = "raw"

    @staticmethod
    def page(mode: str, sent: str, headers: str) -> tuple[int, str]:
        if mode == "raw":  # a 500 whose body is the request, as it came
            return 500, f"{headers}\n{sent}"
        request = {"input": json.loads(sent or "{}"), "headers": headers}
        if mode == "detail":  # a 400 with the request parsed back into its detail
            return 400, json.dumps({"detail": {"msg": "bad request", **request}})
        if mode == "repr":  # a 400 with the request as a Python dict, in the detail's text
            return 400, json.dumps({"detail": f"cannot serve {request!r}"})
        # a 500 page of many lines, the request form-encoded in it, and the headers
        form = urlencode(json.loads(sent)) if sent else ""
        lines = ["<html><body><h1>Internal Server Error</h1>", f"<pre>{form}", headers, "</pre>"]
        return 500, "\n".join(lines + ["x" * 80] * 200 + ["</body></html>"])


@pytest.fixture(scope="module")
def echo():
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


MODES = ["raw", "detail", "repr", "page"]
LOGINS = {
    "password": {"USERNAME": USERNAME, "PASSWORD": PASSWORD},
    "token": {"TOKEN": TOKEN},
}


def _one_line(out: str) -> str:
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out[-3000:]
    assert "Airflow at http://127.0.0.1:" in errors[0] and len(errors[0]) < 500, errors[0]
    return errors[0]


@pytest.mark.parametrize("login", list(LOGINS))
@pytest.mark.parametrize("command", ["status", "submit"])
@pytest.mark.parametrize("mode", MODES)
def test_a_failed_login_or_request_prints_no_credential_the_client_sent(
    figures, deployment, echo, monkeypatch, capfd, caplog, mode, command, login
):
    from pipelines import cli

    echo.mode = mode
    for name, value in LOGINS[login].items():
        monkeypatch.setenv(f"PIPELINES_AIRFLOW_{name}", value)
    url = f"http://127.0.0.1:{echo.server_address[1]}"
    code = cli.main([*COMMANDS[command], "--url", url])
    out = printed(capfd, caplog)
    judge(figures, out)
    assert code == 1
    line = _one_line(out)
    assert re.search(r"answered (400|500)|\((400|500)\)", line), line


@pytest.mark.parametrize("mode", MODES)
def test_the_clients_error_for_a_failed_login_holds_no_credential_and_one_line(
    figures, deployment, echo, capfd, caplog, mode
):
    from pipelines.client import Client
    from pipelines.exceptions import AirflowError

    echo.mode = mode
    client = Client(
        f"http://127.0.0.1:{echo.server_address[1]}", username=USERNAME, password=PASSWORD
    )
    with pytest.raises(AirflowError) as raised:
        client.submit("ledger", DAY)
    message = str(raised.value)
    judge(figures, printed(capfd, caplog, message, repr(raised.value)))
    assert "\n" not in message and len(message) < 500, message
