"""`pipelines lake upgrade` of an ``s3://`` lake (the real moto server on 127.0.0.1): the lake
the release before Delta wrote (``tests/data/lake_before_delta.tar.gz``) is put in a bucket and
upgraded through the same code paths as a local one (the storage's list, read and delete; delta-rs
with the options of the lake's Airflow connection)."""

from __future__ import annotations

import itertools
import json
import tarfile
from pathlib import Path

import boto3
import pytest

from pipelines.lake.lake import Lake
from pipelines.lake.upgrade import old_tables, upgrade
from pipelines.runtime.secrets import delta_storage_options, s3_filesystem
from tests.reliability.s3server import BUCKET

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = json.loads((DATA / "lake_before_delta.expected.json").read_text())
LAKES = itertools.count()


@pytest.fixture
def s3_lake(s3, monkeypatch, tmp_path) -> Lake:
    s3.clear()
    for key, value in s3.connection_env().items():
        monkeypatch.setenv(key, value)
    s3_filesystem.cache_clear()
    delta_storage_options.cache_clear()
    with tarfile.open(DATA / "lake_before_delta.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    prefix = f"upgrade-{next(LAKES)}"
    client = boto3.client("s3", **s3.client_args())
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{path.relative_to(tmp_path)}",
                          Body=path.read_bytes())  # fmt: skip
    yield Lake(f"s3://{BUCKET}/{prefix}", "local")
    s3_filesystem.cache_clear()
    delta_storage_options.cache_clear()


def test_an_s3_lake_is_upgraded_like_a_local_one(s3_lake, s3):
    assert len(old_tables(s3_lake)) == 14
    done = upgrade(s3_lake)
    assert (len(done), sum(u.partitions for u in done), sum(u.rows for u in done)) == (14, 38, 107)
    assert old_tables(s3_lake) == [] and upgrade(s3_lake) == []
    client = boto3.client("s3", **s3.client_args())
    prefix = s3_lake.prefix.removeprefix(f"s3://{BUCKET}/")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert not [k for k in keys if "/_log/" in k or "/.tmp-" in k]
    raw = s3_lake.raw("orders")
    [expected] = [r for r in EXPECTED["reads"] if (r["name"], r["layer"], r["as_of"])
                  == ("orders", "raw", None)]  # fmt: skip
    rows = raw.read().to_json(orient="records", date_format="iso", date_unit="us")
    assert json.loads(rows) == expected["rows"]  # what the old release read, in its order
    assert s3_lake.run_log().of("raw/orders").runs.keys() == {
        "2024-01-01", "2024-01-02", "2024-01-03"
    }  # fmt: skip
