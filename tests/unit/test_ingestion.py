"""What an ingestion kind implies: its named capabilities, and one strategy per kind wherever a
step dispatches on it (a kind without one would fail at its first run, not here)."""

from __future__ import annotations

import pytest

from pipelines.common.partitions import Ingestion
from pipelines.steps import aggregate, merge


def test_a_full_dataset_keeps_snapshots_and_an_incremental_one_a_single_table():
    assert Ingestion.FULL.keeps_snapshots
    assert not Ingestion.INCREMENTAL.keeps_snapshots


def test_only_an_incremental_single_source_is_filtered_to_the_interval():
    assert Ingestion.INCREMENTAL.filters_by_interval
    assert not Ingestion.FULL.filters_by_interval


def test_only_an_incremental_dataset_needs_its_date_fields():
    assert Ingestion.INCREMENTAL.needs_date_fields
    assert not Ingestion.FULL.needs_date_fields


@pytest.mark.parametrize(("kind", "key"), [("incremental", "dt"), ("full", "ds")])
def test_the_cleaned_key_is_the_delivery_for_snapshots_else_the_row_date(kind, key):
    assert Ingestion(kind).cleaned_key == key


def test_the_current_partitions_follow_whether_the_kind_keeps_snapshots():
    parts = ["2024-01-02", "2024-01-01"]
    for kind in Ingestion:
        expected = ["2024-01-02"] if kind.keeps_snapshots else ["2024-01-01", "2024-01-02"]
        assert kind.current_partitions(parts) == expected


def test_every_kind_has_one_merge_strategy_and_one_aggregate_strategy():
    assert set(merge._WRITERS) == set(Ingestion)
    assert set(aggregate._RECOMPUTE) == set(Ingestion)
    assert merge._WRITERS[Ingestion.INCREMENTAL] is merge._upsert
    assert merge._WRITERS[Ingestion.FULL] is merge._snapshot
    assert aggregate._RECOMPUTE[Ingestion.INCREMENTAL] is aggregate._by_day
    assert aggregate._RECOMPUTE[Ingestion.FULL] is aggregate._from_snapshots
