"""An aggregate of a cleaned table on S3 (moto on 127.0.0.1): DuckDB reads it through delta-rs's
Arrow dataset and gives the pandas path's tables; a metric that needs the read's row order (a
float sum) falls back to pandas there, and still equals it."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from pipelines.lake.lake import Lake
from pipelines.project.aggregates import AggregateSpec
from pipelines.runtime.secrets import delta_storage_options, s3_filesystem
from pipelines.steps import aggregate, aggregate_sql
from tests.integration.test_aggregate_sql import REGISTRY, bits, cleaned, rows
from tests.reliability.s3server import BUCKET

LAKES = itertools.count()
UNORDERED = (
    ("n", "count", None),
    ("units", "sum", "qty"),
    ("first_day", "min", "day"),
    ("last_ts", "max", "ts"),
    ("buyers", "count_distinct", "status"),
    ("top", "max", "status"),
)


@pytest.fixture
def s3_lakes(s3, monkeypatch):
    s3.clear()
    for key, value in s3.connection_env().items():
        monkeypatch.setenv(key, value)
    s3_filesystem.cache_clear()
    delta_storage_options.cache_clear()
    prefix = f"aggregate-{next(LAKES)}"
    yield Lake(f"s3://{BUCKET}/{prefix}-duck", "local"), Lake(f"s3://{BUCKET}/{prefix}-pd", "local")
    s3_filesystem.cache_clear()
    delta_storage_options.cache_clear()


@pytest.mark.parametrize(
    ("metrics", "in_duckdb"),
    [(UNORDERED, True), ((*UNORDERED, ("revenue", "sum", "amount")), False)],
)
def test_an_aggregate_on_s3_is_the_pandas_one(s3_lakes, monkeypatch, metrics, in_duckdb):
    days = {"2024-01-01": rows(200, 1, "2024-01-01"), "2024-01-02": rows(50, 2, "2024-01-02")}
    spec = AggregateSpec("by_status", "orders", ("status", "shop"), metrics)
    stored = []
    for lake, engine in zip(s3_lakes, (True, False), strict=True):
        cleaned(lake, "orders", [days])
        computed = []
        real = aggregate_sql.changes

        def spy(*args, real=real, computed=computed):
            found = real(*args)
            computed.append(found is not None)
            return found

        with monkeypatch.context() as patched:
            patched.setattr(aggregate_sql, "changes", spy if engine else lambda *args: None)
            result = aggregate.build(spec, REGISTRY.get("orders"), lake, list(days), "2024-01-03")
        if engine:
            assert computed == [in_duckdb]
        table = lake.aggregated(spec.name)
        stored.append((result, table.snapshot().schema, table.read()))
    (duck, duck_schema, duck_rows), (reference, schema, frame) = stored
    assert duck == reference and duck_schema.equals(schema, check_metadata=True)
    pd.testing.assert_frame_equal(duck_rows, frame, check_exact=True)
    pd.testing.assert_frame_equal(bits(duck_rows), bits(frame))
