"""A lake table is a Delta table: one commit per change, computed from one version, with the
kinds a cleaned table declares kept in its schema and its runs in the namespace's runs table."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.exceptions import CommitConflict
from pipelines.lake.lake import Lake

DAY, NEXT = "2024-01-02", "2024-01-03"


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path), "local")


def test_key_ranges_of_dates_and_timestamps_compare_alike(lake):
    """A key widened from date to timestamp still prunes right: the files' statistics of both
    kinds read as the same UTC text (moved here from test_transforms with the table format)."""
    dates = lake.workflow("dates")
    days = pd.Series(pd.to_datetime(["2024-01-02", "2024-01-03"])).astype("datetime64[s]")
    snap = dates.commit(
        dates.snapshot(), {DAY: pd.DataFrame({"k": days})}, {"schema": [["k", "date"]]}
    )
    stamps = lake.workflow("stamps")
    times = pd.Series(pd.to_datetime(["2024-01-02T00:00:00Z"], utc=True))
    other = stamps.commit(stamps.snapshot(), {DAY: pd.DataFrame({"k": times})})
    lo, hi = snap.key_ranges("k")[DAY]
    assert (lo, hi) == ("2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00")
    assert other.key_ranges("k")[DAY][0] == lo


def test_a_commit_computed_from_an_older_version_conflicts(lake):
    table = lake.workflow("w")
    base = table.snapshot()
    table.commit(base, {DAY: pd.DataFrame({"a": [1]})})
    with pytest.raises(CommitConflict):
        table.commit(base, {NEXT: pd.DataFrame({"a": [2]})})
    assert sorted(table.snapshot().partitions) == [DAY]


def test_a_widened_column_rewrites_every_partition_in_one_schema(lake):
    table = lake.workflow("w")
    first = table.commit(table.snapshot(), {DAY: pd.DataFrame({"a": [1, 2]})})
    second = table.commit(first, {NEXT: pd.DataFrame({"a": [2.5]})})
    assert str(second.schema.field("a").type) == "double"
    rows = table.read()
    assert rows["a"].tolist() == [1.0, 2.0, 2.5]
    assert second.rows() == 3 and second.version == first.version + 1


def test_a_run_that_changes_no_row_is_still_recorded(lake):
    table = lake.workflow("w")
    snap = table.commit(table.snapshot(), {DAY: pd.DataFrame({"a": [1]})}, run=(DAY, {"n": 1}))
    again = table.commit(snap, {}, run=(DAY, {"n": 1, "checks": "passed"}))
    assert again.version == snap.version  # no data commit
    recorded = table.snapshot().run_metrics(DAY)
    # what the day's run rewrote is kept by the record that rewrote nothing
    assert recorded.pop("wrote") == {"version": snap.version, "partitions": [DAY]}
    assert recorded == {"n": 1, "checks": "passed"}
    assert table.snapshot().has_landed(DAY)


def test_an_emptied_table_takes_the_schema_of_its_next_write(lake):
    table = lake.workflow("w")
    table.commit(table.snapshot(), {DAY: pd.DataFrame({"a": [1], "old": ["x"]})}, run=(DAY, {}))
    table.clear()
    assert not table.snapshot().partitions and not table.snapshot().meta["runs"]
    table.commit(table.snapshot(), {DAY: pd.DataFrame({"a": ["text"]})})
    assert table.read(with_key=False).to_dict("list") == {"a": ["text"]}


def test_a_column_name_delta_refuses_is_stored_under_one_it_takes_and_read_back(lake):
    """delta-rs 1.6 cannot write column mapping: ``Umsatz (EUR)`` is stored as ``Umsatz__EUR_``
    (what other engines see), its name kept in the field's metadata for every later write."""
    table = lake.workflow("w")
    rows = pd.DataFrame({"Umsatz (EUR)": [1.5], "Umsatz__EUR_": [2.5]})
    snap = table.commit(table.snapshot(), {DAY: rows})
    snap = table.commit(snap, {NEXT: rows})
    assert snap.schema.names == ["Umsatz__EUR__", "Umsatz__EUR_", "ds"]
    back = table.read(with_key=False)
    assert back.columns.tolist() == ["Umsatz (EUR)", "Umsatz__EUR_"]
    assert back["Umsatz (EUR)"].tolist() == [1.5, 1.5]


def test_a_frame_of_another_dtype_of_the_same_type_writes_into_the_table(lake):
    """int64 then Int64 (both a Delta long): the table keeps its schema and its field metadata;
    delta-rs refused the second write while the incoming dtype metadata differed."""
    table = lake.workflow("w")
    first = table.commit(table.snapshot(), {DAY: pd.DataFrame({"a": [1]})})
    second = table.commit(first, {NEXT: pd.DataFrame({"a": pd.array([2], "Int64")})})
    assert second.schema == first.schema
    assert table.read(with_key=False)["a"].tolist() == [1, 2]
