"""Addressing a table has one owner: Lake's per-layer methods (and the generic one for a layer
held as a value) derive each table's path and partition key."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from pipelines.common.partitions import Ingestion, Layer
from pipelines.exceptions import UnknownNameError
from pipelines.lake.lake import Lake

FULL = SimpleNamespace(name="customers", ingestion=Ingestion.FULL)
INCREMENTAL = SimpleNamespace(name="orders", ingestion=Ingestion.INCREMENTAL)


class _Project:
    def dataset(self, name):
        return {d.name: d for d in (FULL, INCREMENTAL)}.get(name)


def test_each_layer_has_its_path_and_key(tmp_path):
    lake = Lake(str(tmp_path), "local", upstream="serving")
    found = {
        "raw": lake.raw("orders"),
        "cleaned": lake.cleaned(INCREMENTAL),
        "quarantine": lake.quarantine("orders"),
        "aggregated": lake.aggregated("daily"),
        "workflows": lake.workflow("features"),
    }
    assert {layer: t.key for layer, t in found.items()} == {
        "raw": "ds",
        "cleaned": "dt",
        "quarantine": "ds",
        "aggregated": "dt",
        "workflows": "ds",
    }
    assert found["raw"].path == f"{tmp_path}/serving/raw/orders"  # read in place
    assert found["cleaned"].path == f"{tmp_path}/local/cleaned/orders"
    assert lake.cleaned(FULL).key == "ds"


def test_the_generic_table_resolves_a_cleaned_kind_from_the_project(tmp_path):
    lake = Lake(str(tmp_path), "local")
    assert lake.table(Layer.CLEANED, "customers", _Project()).key == "ds"
    assert lake.table("cleaned", "orders", _Project()).key == "dt"
    assert lake.table("aggregated", "daily", _Project()).key == "dt"
    with pytest.raises(UnknownNameError, match="'nope' is no dataset"):
        lake.table(Layer.CLEANED, "nope", _Project())


def test_a_manifest_table_reads_and_empties_but_writes_no_partition(tmp_path):
    lake = Lake(str(tmp_path), "local")
    written = lake.cleaned(FULL).commit(
        lake.cleaned(FULL).snapshot(), {"2024-01-01": pd.DataFrame({"a": [1]})}
    )
    table = lake.manifest(Layer.CLEANED, "customers")
    assert table.snapshot() == written
    assert not table.commit(written, {"2024-01-01": None}).partitions
    with pytest.raises(ValueError, match="unknown partition key"):
        table.commit(table.snapshot(), {"2024-01-02": pd.DataFrame({"a": [1]})})
