"""Delta tables written by delta-rs on ``s3://``: the real moto server on 127.0.0.1, reached only
through the storage options derived from the lake's Airflow connection.

A partitioned write reads back equal, an overwrite by predicate replaces one day and nothing
else, and a wrong endpoint fails within seconds without showing the secret.
"""

from __future__ import annotations

import itertools
import json
import time

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.runtime.secrets import delta_storage_options
from tests.reliability.s3server import BUCKET, PASSWORD

CONN_ID = "pipelines_lake"
TABLES = itertools.count()


@pytest.fixture
def lake_conn(s3, monkeypatch):
    """The connection env of the moto server, with no fault on before or after the test."""
    s3.clear()
    for key, value in s3.connection_env().items():
        monkeypatch.setenv(key, value)
    delta_storage_options.cache_clear()
    yield s3
    delta_storage_options.cache_clear()
    assert s3.clear() == 0  # nothing was injected while this test ran


def orders(days: list[str], start: int) -> pa.Table:
    """Three orders a day, numbered from ``start``."""
    ds = [day for day in days for _ in range(3)]
    ids = list(range(start, start + len(ds)))
    return pa.table({"ds": ds, "order_id": ids, "amount": [i / 4 for i in ids]})


def rows(table: pa.Table) -> list[dict]:
    return sorted(
        table.select(["ds", "order_id", "amount"]).to_pylist(), key=lambda r: r["order_id"]
    )


def keys_under(s3, prefix: str) -> list[str]:
    listed = boto3.client("s3", **s3.client_args()).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_partitioned_delta_table_round_trips_and_one_day_is_overwritten(lake_conn):
    options = delta_storage_options(CONN_ID)
    prefix = f"delta/orders-{next(TABLES)}"
    uri = f"s3://{BUCKET}/{prefix}"
    first = orders(["2026-01-01", "2026-01-02", "2026-01-03"], start=1)
    write_deltalake(uri, first, storage_options=options, partition_by=["ds"])
    assert rows(DeltaTable(uri, storage_options=options).to_pyarrow_table()) == rows(first)
    # in the one bucket, under the table's prefix: a folder per day and the log
    assert {k.split("/")[2] for k in keys_under(lake_conn, prefix)} == {
        "_delta_log",
        "ds=2026-01-01",
        "ds=2026-01-02",
        "ds=2026-01-03",
    }

    day = orders(["2026-01-02"], start=100)
    write_deltalake(
        uri,
        day,
        mode="overwrite",
        predicate="ds = '2026-01-02'",
        storage_options=options,
        partition_by=["ds"],
    )
    table = DeltaTable(uri, storage_options=options)
    kept = first.filter(pc.field("ds") != "2026-01-02")
    assert rows(table.to_pyarrow_table()) == rows(pa.concat_tables([kept, day]))
    assert table.version() == 1
    assert rows(DeltaTable(uri, version=0, storage_options=options).to_pyarrow_table()) == rows(
        first
    )


def test_a_wrong_endpoint_fails_within_seconds_without_the_secret(lake_conn, monkeypatch):
    conn = json.loads(lake_conn.connection_env()["AIRFLOW_CONN_PIPELINES_LAKE"])
    conn["extra"] = {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}
    monkeypatch.setenv("AIRFLOW_CONN_PIPELINES_LAKE_WRONG", json.dumps(conn))
    options = delta_storage_options("pipelines_lake_wrong")
    assert options["max_retries"] == "1" and options["connect_timeout"] == "5000ms"
    started = time.monotonic()
    with pytest.raises(OSError) as caught:
        write_deltalake(
            f"s3://{BUCKET}/delta/nowhere", orders(["2026-01-01"], 1), storage_options=options
        )
    assert time.monotonic() - started < 10
    assert "Connection refused" in str(caught.value)
    assert PASSWORD not in repr(caught.value) and PASSWORD not in str(caught.value)
