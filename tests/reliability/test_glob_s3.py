"""A glob source on S3 (``s3://bucket/orders/{ds}/*.parquet``) against moto on 127.0.0.1, listed
through the lake's Airflow connection: a day's part files are one delivery in key order, each
listing is fresh (a part landed since the last run is read by the rerun), a transient error of
the listing is retried, and a day with no object is no delivery."""

from __future__ import annotations

import io
import itertools

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipelines
from pipelines.exceptions import SourceError
from pipelines.runtime.secrets import s3_filesystem
from pipelines.steps.dataset import run_steps
from tests.conftest import write_registry
from tests.reliability.s3server import BUCKET, PASSWORD, Fault

PREFIXES = itertools.count()


@pytest.fixture
def landing(s3, home, monkeypatch):
    """A registry whose one dataset reads ``s3://{BUCKET}/{prefix}/orders/{ds}/*.parquet``, and a
    function that lands a part file there."""
    s3.clear()
    for key, value in s3.connection_env().items():
        monkeypatch.setenv(key, value)
    s3_filesystem.cache_clear()
    prefix = f"glob-{next(PREFIXES)}"
    write_registry(
        home,
        "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date\n"
        f"orders,s3://{BUCKET}/{prefix}/orders/{{ds}}/*.parquet,id,ts,ts,incremental,2024-01-01\n",
    )
    client = boto3.client("s3", **s3.client_args())

    def land(key: str, ids: list[int], day: str) -> None:
        stamps = pa.array(
            [pd.Timestamp(f"{day}T0{i % 10}:00Z") for i in ids], pa.timestamp("us", "UTC")
        )
        table = pa.table({"id": pa.array(ids, pa.int64()), "ts": stamps})
        body = io.BytesIO()
        pq.write_table(table, body)
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/orders/{key}", Body=body.getvalue())

    yield land
    s3.clear()
    s3_filesystem.cache_clear()


def raw_ids(day: str) -> list[int]:
    raw = pipelines.read("orders", "raw", as_of=day).sort_values("_row")
    assert raw["_row"].tolist() == list(range(len(raw)))
    return raw["id"].tolist()


def test_part_files_on_s3_are_one_delivery_listed_afresh_and_a_day_without_is_none(
    s3, landing, capfd
):
    landing("2024-01-01/part-2.parquet", [3], "2024-01-01")
    landing("2024-01-01/part-10.parquet", [1, 2], "2024-01-01")
    landing("2024-01-01/.part-3.parquet", [9], "2024-01-01")  # hidden: an upload in progress
    landing("2024-01-01/sub/part-4.parquet", [8], "2024-01-01")  # one level down: not matched
    landing("2024-01-02/part-1.parquet", [4], "2024-01-02")

    s3.inject(Fault("GET", "list-type", 503, "SlowDown", 1))  # the first listing fails once
    run_steps("orders", "2024-01-01", ["extract"])
    assert s3.clear() == 1
    assert raw_ids("2024-01-01") == [1, 2, 3]  # part-10 sorts before part-2

    landing("2024-01-01/part-5.parquet", [5], "2024-01-01")  # landed late
    run_steps("orders", "2024-01-01", ["extract"])
    assert raw_ids("2024-01-01") == [1, 2, 3, 5]
    run_steps("orders", "2024-01-02", ["extract"])
    assert raw_ids("2024-01-02") == [4]

    with pytest.raises(SourceError) as raised:
        run_steps("orders", "2024-01-03", ["extract"])
    assert str(raised.value).startswith("orders: source for 2024-01-03 not found: s3://")
    assert str(raised.value).endswith("/orders/2024-01-03/*.parquet")
    assert PASSWORD not in str(raised.value) + "".join(capfd.readouterr())
