"""Partition paths and intervals: one function maps (dataset, interval) to a key and a path."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.common.partitions import (
    Ingestion,
    Interval,
    Layer,
    interval_for,
    intervals_between,
    latest_complete_interval,
    partition_key,
    partition_name,
    source_for,
    table_path,
)

UTC = dt.UTC


def at(*args):
    return dt.datetime(*args, tzinfo=UTC)


def test_daily_interval_is_full_width_and_starts_at_d():
    iv = interval_for("0 0 * * *", "2024-01-02")
    assert (iv.start, iv.end, iv.ds, iv.ds_nodash) == (
        at(2024, 1, 2),
        at(2024, 1, 3),
        "2024-01-02",
        "20240102",
    )


def test_weekly_and_offset_schedules():
    assert interval_for("0 0 * * 0", "2024-01-07") == Interval(at(2024, 1, 7), at(2024, 1, 14))
    assert interval_for("0 0 * * 0", "2024-01-09").start == at(2024, 1, 7)
    assert interval_for("0 6 * * *", at(2024, 1, 2, 6)) == Interval(
        at(2024, 1, 2, 6), at(2024, 1, 3, 6)
    )


def test_latest_complete_interval_for_runs_without_a_date():
    assert latest_complete_interval("0 0 * * *", at(2024, 1, 5, 13, 30)) == Interval(
        at(2024, 1, 4), at(2024, 1, 5)
    )


def test_intervals_between_is_inclusive_and_ordered():
    days = [i.ds for i in intervals_between("0 0 * * *", dt.date(2024, 1, 30), dt.date(2024, 2, 2))]
    assert days == ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]


def partition_path(lake, namespace, layer, table, key, date):
    """How a table (``table_path``) names a partition's folder (``partition_name``)."""
    return f"{table_path(lake, namespace, layer, table)}/{partition_name(key, date)}"


def test_paths_are_hive_style_and_only_here():
    assert partition_path("/lake", "local", Layer.RAW, "orders", "ds", "2024-01-02") == (
        "/lake/local/raw/orders/ds=2024-01-02"
    )
    assert partition_path("s3://b/p/", "e2e", "cleaned", "orders", "dt", dt.date(2024, 1, 2)) == (
        "s3://b/p/e2e/cleaned/orders/dt=2024-01-02"
    )


def test_the_partition_key_follows_the_layer_and_the_ingestion_kind():
    assert partition_key(Layer.RAW) == partition_key("quarantine") == "ds"
    assert partition_key(Layer.AGGREGATED) == "dt"
    assert partition_key(Layer.CLEANED, Ingestion.INCREMENTAL) == "dt"
    assert partition_key("cleaned", "full") == "ds"
    with pytest.raises(ValueError, match="depends on its ingestion kind"):
        partition_key(Layer.CLEANED)


def test_the_current_table_is_every_partition_or_the_newest_snapshot():
    parts = {"2024-01-03": {}, "2024-01-01": {}, "2024-01-02": {}}
    assert Ingestion.INCREMENTAL.current_partitions(parts) == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
    ]
    assert Ingestion.FULL.current_partitions(parts) == ["2024-01-03"]
    assert Ingestion.FULL.current_partitions([]) == []


def test_source_placeholders_are_plain_substitution():
    iv = interval_for("0 0 * * *", "2024-01-02")
    assert source_for("a/{ds}/b_{ds_nodash}.csv", iv) == "a/2024-01-02/b_20240102.csv"


def test_naive_or_empty_intervals_refused():
    with pytest.raises(ValueError):
        Interval(dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2))
    with pytest.raises(ValueError):
        Interval(at(2024, 1, 2), at(2024, 1, 2))
    with pytest.raises(ValueError):
        interval_for("0 0 * * *", "2024/01/02")
