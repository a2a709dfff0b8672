"""AirflowRest's reading of runs and what its errors print (never a credential), on the generated
client's answers (no server)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from types import SimpleNamespace

import pytest

from pipelines.exceptions import AirflowError
from pipelines.runs.airflow_rest import AirflowRest


def _latest(**run) -> str:
    """The day ``latest_runs`` gives a DAG whose newest run is ``run``."""
    fields = {"logical_date": None, "partition_key": None, "state": "failed", "duration": 1.0}
    answer = SimpleNamespace(dag_runs=[SimpleNamespace(dag_run_id="r1", **{**fields, **run})])
    airflow = AirflowRest("http://127.0.0.1:1", token="t")
    airflow._apis = lambda name: SimpleNamespace(get_dag_runs=lambda *a, **k: answer)
    return airflow.latest_runs(["d"])["d"].ds


def test_a_partitioned_runs_day_is_its_partition_key_not_when_it_ran():
    ran = dt.datetime(2024, 1, 7, 3, tzinfo=dt.UTC)  # a rewrite signal reran key 2024-01-04
    assert _latest(run_after=ran, partition_key="2024-01-04") == "2024-01-04"
    assert _latest(run_after=ran, logical_date=dt.datetime(2024, 1, 5, tzinfo=dt.UTC)) == (
        "2024-01-05"
    )
    assert _latest(run_after=ran) == "2024-01-07"  # a manual run without a date


SECRET = "Kx7Qz9NeverShown"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"http://admin:{SECRET}@127.0.0.1:8080", "'http://***@127.0.0.1:8080'"),
        (f"https://admin:a/b{SECRET}@airflow.example", "'https://***@airflow.example'"),
        (f"http://127.0.0.1:8080/?token={SECRET}", "'http://127.0.0.1:8080/?token=***'"),
        (f"http://127.0.0.1:8080?X-Amz-Signature={SECRET}", "X-Amz-Signature=***"),
    ],
)
def test_an_airflow_url_carrying_a_credential_is_refused_redacted(url, shown):
    with pytest.raises(AirflowError, match="must not carry credentials") as raised:
        AirflowRest(url, token="t")
    assert shown in str(raised.value) and SECRET not in str(raised.value)


def test_an_airflow_url_of_another_scheme_is_refused_redacted():
    with pytest.raises(AirflowError, match="must be http:// or https://") as raised:
        AirflowRest(f"ftp://admin:{SECRET}@host")
    assert "'ftp://***@host'" in str(raised.value)


PASSWORD = f'pa"ss {SECRET}'


def test_a_failed_login_names_the_status_not_the_password_and_fits_one_line():
    """The login answers 500 with a page repeating the request: the error keeps the status and
    the server's words, on one line, without the user name or the password."""
    echoed = json.dumps({"username": "ops-user", "password": PASSWORD})
    page = f"<h1>Internal Server Error</h1>\n<pre>{echoed}</pre>\n" + "x" * 2000
    answer = SimpleNamespace(status=500, data=page.encode())
    airflow = AirflowRest("http://127.0.0.1:1", username="ops-user", password=PASSWORD)
    airflow._calling = lambda *a, **k: contextlib.nullcontext()
    rest = SimpleNamespace(request=lambda *a, **k: answer)
    with pytest.raises(AirflowError) as raised:
        airflow._login_token(SimpleNamespace(rest_client=rest))
    message = str(raised.value)
    assert message.startswith("Airflow at http://127.0.0.1:1: login answered 500: <h1>Internal")
    assert '{"username": "***", "password": "***"}' in message
    assert SECRET not in message and "ops-user" not in message
    assert "\n" not in message and len(message) < 400


def test_a_refused_request_shows_the_servers_detail_without_the_token_it_sent():
    token = f"eyJ.{SECRET}.sig"
    detail = {"detail": f"bad header: Authorization: Bearer {token}\nsee logs"}
    exc = SimpleNamespace(status=400, body=json.dumps(detail).encode(), reason="Bad Request")
    message = str(AirflowRest("http://127.0.0.1:1", token=token)._refused(exc, "read DAG d", "d"))
    assert message == (
        "Airflow at http://127.0.0.1:1 could not read DAG d (400): "
        "bad header: Authorization: Bearer *** see logs"
    )
