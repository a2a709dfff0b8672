"""delta-rs reaches S3 through the same Airflow connection as s3fs: the storage options derived
from an ``aws`` connection given as ``AIRFLOW_CONN_<ID>``, and a secret that never shows."""

from __future__ import annotations

import json

import pytest

from pipelines.exceptions import LakeError
from pipelines.runtime.secrets import delta_storage_options

SECRET = "delta-secret-key-never-printed"
TOKEN = "delta-session-token-never-printed"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No AWS setting of this shell reaches botocore, and no cached options outlive a test."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    delta_storage_options.cache_clear()
    yield
    delta_storage_options.cache_clear()


def connection(monkeypatch, conn_id: str, extra: dict, login: str | None = "AKIDEXAMPLE") -> None:
    conn = {"conn_type": "aws", "login": login, "password": SECRET if login else None}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn | {"extra": extra}))


def test_a_plain_http_endpoint_is_allowed_and_read_path_style(monkeypatch):
    extra = {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"}
    connection(monkeypatch, "lake_http", extra)
    assert delta_storage_options("lake_http") == {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ALLOW_HTTP": "true",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        "connect_timeout": "5000ms",  # S3_CLIENT's limits, in object_store's terms
        "timeout": "60000ms",
        "max_retries": "1",
    }


def test_the_s3_service_endpoint_a_session_token_and_the_connections_limits_win(monkeypatch):
    extra = {
        "endpoint_url": "http://global.example:1",
        "service_config": {"s3": {"endpoint_url": "https://s3.example.com"}},
        "region_name": "us-west-2",
        "aws_session_token": TOKEN,
        "config_kwargs": {"connect_timeout": 2.5, "retries": {"max_attempts": 4}},
    }
    connection(monkeypatch, "lake_https", extra)
    options = delta_storage_options("lake_https")
    assert options["AWS_ENDPOINT_URL"] == "https://s3.example.com"
    assert options["AWS_ALLOW_HTTP"] == "false"
    assert options["AWS_SESSION_TOKEN"] == TOKEN
    assert (options["connect_timeout"], options["timeout"]) == ("2500ms", "60000ms")
    assert options["max_retries"] == "3"  # botocore counts the first attempt, object_store not


def test_on_aws_the_region_comes_from_botocore_and_virtual_addressing_carries_over(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    connection(monkeypatch, "lake_aws", {"config_kwargs": {"s3": {"addressing_style": "virtual"}}})
    options = delta_storage_options("lake_aws")
    assert options["AWS_REGION"] == "ap-south-1"
    assert options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "true"
    assert not {"AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP", "AWS_SESSION_TOKEN"} & set(options)


def test_a_connection_without_credentials_is_anonymous(monkeypatch):
    connection(monkeypatch, "lake_public", {"region_name": "us-east-1"}, login=None)
    options = delta_storage_options("lake_public")
    assert options["AWS_SKIP_SIGNATURE"] == "true"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(options)


def test_options_are_cached_per_connection(monkeypatch):
    connection(monkeypatch, "lake_cached", {"endpoint_url": "http://127.0.0.1:9000"})
    assert delta_storage_options("lake_cached") is delta_storage_options("lake_cached")
    assert delta_storage_options.cache_info().hits == 1


def test_a_missing_connection_is_one_lake_error_without_any_secret(monkeypatch, caplog, capfd):
    caplog.set_level("DEBUG")
    extra = {"endpoint_url": "http://127.0.0.1:9000", "aws_session_token": TOKEN}
    connection(monkeypatch, "lake_present", extra)
    delta_storage_options("lake_present")
    with pytest.raises(LakeError, match="no Airflow connection 'lake_absent'") as caught:
        delta_storage_options("lake_absent")
    chain, error = [], caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    shown = [repr(e) for e in chain] + [str(e) for e in chain] + [caplog.text, *capfd.readouterr()]
    assert not [text for text in shown if SECRET in text or TOKEN in text]
