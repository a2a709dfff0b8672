"""The independent Delta reader (tests/delta_protocol.py) agrees with delta-rs.

Every table here is written by delta-rs (``deltalake``) the ways the lake writes its tables, then
read both by delta-rs and by the reader that follows the protocol with pyarrow alone; the two
must give the same schema (field metadata included) and the same rows, and each test also pins
the row count, so two empty reads cannot pass for agreement.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from tests import delta_protocol
from tests.delta_protocol import UnsupportedFeature, read_delta

UTC = dt.UTC


def _sorted(table: pa.Table) -> pa.Table:
    keys = [(name, "ascending", "at_end") for name in table.column_names]
    return table.sort_by(keys).combine_chunks()


def assert_agrees(path: Path, rows: int, version: int | None = None) -> pa.Table:
    """The protocol reader's table equals delta-rs's (schema with metadata, then rows)."""
    mine = read_delta(str(path), version=version)
    theirs = DeltaTable(str(path), version=version).to_pyarrow_table()
    assert mine.schema.equals(theirs.schema, check_metadata=True), (mine.schema, theirs.schema)
    assert mine.num_rows == theirs.num_rows == rows
    assert _sorted(mine).equals(_sorted(theirs))
    return mine


def _days(ds: list[str], v: list[int | None]) -> pa.Table:
    return pa.table({"ds": pa.array(ds), "v": pa.array(v, pa.int64())})


def test_partitioned_by_a_string_ds_with_characters_that_need_encoding(tmp_path):
    # delta-rs percent-encodes these in the folder name, and again in add.path
    days = ["2024-01-01", "2024-01-02", "a b/c%d=e&f?g#h", "ü:1", None]
    write_deltalake(tmp_path, _days(days, [1, 2, 3, 4, 5]), partition_by=["ds"])
    table = assert_agrees(tmp_path, 5)
    assert sorted(table.column("ds").to_pylist(), key=str) == sorted(days, key=str)
    assert any("%25" in add["path"] for add in delta_protocol.snapshot(tmp_path).files.values())


def test_every_primitive_type_with_nulls_in_columns_and_in_partition_values(tmp_path):
    ts = [
        dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        None,
        dt.datetime(1999, 12, 31, tzinfo=UTC),
    ]
    table = pa.table(
        {
            "ds": pa.array(["2024-01-01", "2024-01-01", None]),
            "p_long": pa.array([7, None, -3], pa.int64()),
            "p_date": pa.array([dt.date(2024, 1, 1), None, dt.date(2000, 2, 29)]),
            "p_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "p_bool": pa.array([True, None, False]),
            "p_double": pa.array([1.25, None, -0.5]),
            "s": pa.array(["x", None, ""]),
            "i": pa.array([1, None, 2**40], pa.int64()),
            "f": pa.array([0.5, None, -1e300]),
            "b": pa.array([False, None, True]),
            "d": pa.array([dt.date(1970, 1, 1), None, dt.date(2024, 12, 31)]),
            "t": pa.array(list(reversed(ts)), pa.timestamp("us", tz="UTC")),
            "n": pa.array([1, 2, None], pa.int32()),
        }
    )
    partitions = ["ds", "p_long", "p_date", "p_ts", "p_bool", "p_double"]
    write_deltalake(tmp_path, table, partition_by=partitions)
    mine = assert_agrees(tmp_path, 3)
    assert sorted(mine.column("p_ts").to_pylist(), key=str) == sorted(ts, key=str)
    assert mine.column("p_date").null_count == 1 and mine.column("s").null_count == 1


def test_overwrite_by_predicate_replaces_one_day_only(tmp_path):
    write_deltalake(tmp_path, _days(["d1", "d1", "d2"], [1, 2, 3]), partition_by=["ds"])
    write_deltalake(
        tmp_path,
        _days(["d1"], [10]),
        mode="overwrite",
        predicate="ds = 'd1'",
        partition_by=["ds"],
    )
    mine = assert_agrees(tmp_path, 2)
    assert sorted(mine.column("v").to_pylist()) == [3, 10]
    write_deltalake(  # zero rows remove the day
        tmp_path, _days([], []), mode="overwrite", predicate="ds = 'd2'", partition_by=["ds"]
    )
    assert assert_agrees(tmp_path, 1).column("v").to_pylist() == [10]


def test_merge_upserts_and_deletes(tmp_path):
    base = pa.table({"ds": ["d1", "d1", "d2"], "k": [1, 2, 3], "v": ["a", "b", "c"]})
    write_deltalake(tmp_path, base, partition_by=["ds"])
    source = pa.table({"ds": ["d2", "d3"], "k": [1, 4], "v": ["A", "D"]})  # k=1 moves to d2
    (
        DeltaTable(tmp_path)
        .merge(source, predicate="t.k = s.k", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    mine = assert_agrees(tmp_path, 4)
    assert dict(zip(mine.column("k").to_pylist(), mine.column("v").to_pylist(), strict=True)) == {
        1: "A",
        2: "b",
        3: "c",
        4: "D",
    }
    DeltaTable(tmp_path).delete("k = 2")  # rewrites d1's file without the row
    DeltaTable(tmp_path).delete("ds = 'd3'")  # drops a whole partition
    assert sorted(assert_agrees(tmp_path, 2).column("k").to_pylist()) == [1, 3]


def test_schema_evolution_gives_older_files_nulls_and_keeps_field_metadata(tmp_path):
    first = pa.schema([pa.field("ds", pa.string()), pa.field("v", pa.int64())])
    write_deltalake(tmp_path, pa.table({"ds": ["d1"], "v": [1]}, schema=first), partition_by="ds")
    kinds = {"pipelines.kind": "decimal-as-float"}
    second = first.append(pa.field("extra", pa.float64(), metadata=kinds))
    later = pa.table({"ds": ["d2", "d2"], "v": [2, 3], "extra": [0.5, None]}, schema=second)
    write_deltalake(tmp_path, later, mode="append", schema_mode="merge", partition_by="ds")
    mine = assert_agrees(tmp_path, 3)
    # delta-rs's merged schema puts the partition column after v: the log's order is the order
    assert mine.column_names == [f["name"] for f in delta_protocol.schema(tmp_path)]
    assert sorted(mine.column_names) == ["ds", "extra", "v"]
    assert mine.column("extra").null_count == 2
    assert delta_protocol.schema(tmp_path)[-1] == {
        "name": "extra",
        "type": "double",
        "nullable": True,
        "metadata": kinds,
    }
    assert [f["name"] for f in delta_protocol.schema(tmp_path, version=0)] == ["ds", "v"]
    assert_agrees(tmp_path, 1, version=0)


def test_more_than_100_commits_are_read_from_the_checkpoint(tmp_path):
    write_deltalake(tmp_path, _days(["d0"], [0]), partition_by=["ds"])
    table = DeltaTable(tmp_path)  # one handle: each write need not reload the log
    for i in range(1, 103):
        write_deltalake(table, _days([f"d{i % 4}"], [i]), mode="append")
        if i == 50:  # tombstones in the checkpoint: d0's files so far are removed
            write_deltalake(table, _days([], []), mode="overwrite", predicate="ds = 'd0'")
    log = tmp_path / "_delta_log"
    assert [p.name for p in log.glob("*.checkpoint.parquet")] == [
        "00000000000000000099.checkpoint.parquet"
    ]
    assert delta_protocol.version(tmp_path) == 103
    assert delta_protocol.snapshot(tmp_path).checkpoint == 99
    assert delta_protocol.snapshot(tmp_path, version=98).checkpoint is None  # before it: JSON
    rows = 103 - 13  # 103 rows appended (i = 0..102); the overwrite at 51 dropped d0's 13
    expected = assert_agrees(tmp_path, rows)
    assert_agrees(tmp_path, 41, version=40)
    assert_agrees(tmp_path, 60 - 13, version=60)  # JSON replay through the overwrite's removes
    for commit in log.glob("*.json"):  # metadata cleanup: only the checkpoint knows the past
        if int(commit.stem) <= 99:
            commit.unlink()
    assert _sorted(read_delta(str(tmp_path))).equals(_sorted(expected))
    with pytest.raises(ValueError, match="not in the log"):
        read_delta(str(tmp_path), version=98)


def test_compact_and_vacuum(tmp_path):
    for i in range(6):
        mode = "overwrite" if i == 0 else "append"
        write_deltalake(tmp_path, _days([f"d{i % 2}"], [i]), mode=mode, partition_by=["ds"])
    table = DeltaTable(tmp_path)
    assert table.optimize.compact()["numFilesRemoved"] == 6
    table.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    assert len(list(tmp_path.glob("ds=*/*.parquet"))) == 2  # the superseded files are gone
    assert len(delta_protocol.snapshot(tmp_path).files) == 2
    assert sorted(assert_agrees(tmp_path, 6).column("v").to_pylist()) == list(range(6))


def test_time_travel_reads_each_version(tmp_path):
    write_deltalake(tmp_path, _days(["d1", "d2"], [1, 2]), partition_by=["ds"])
    write_deltalake(tmp_path, _days(["d1"], [3]), mode="append")
    write_deltalake(tmp_path, _days(["d2"], [4]), mode="overwrite", predicate="ds = 'd2'")
    DeltaTable(tmp_path).delete("v = 1")
    for version, rows in enumerate([2, 3, 3, 2]):
        assert_agrees(tmp_path, rows, version=version)
    assert (
        read_delta(str(tmp_path), version=2).column("v").to_pylist()
        != read_delta(str(tmp_path)).column("v").to_pylist()
    )
    with pytest.raises(ValueError, match="not in the log"):
        read_delta(str(tmp_path), version=4)


# --- what it refuses ---------------------------------------------------------------------------


def _rewrite_first_commit(path: Path, change) -> None:
    commit = path / "_delta_log" / f"{0:020}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    commit.write_text("\n".join(json.dumps(change(a)) for a in actions) + "\n")


def _small_table(path: Path) -> None:
    write_deltalake(path, _days(["d1", "d2"], [1, 2]), partition_by=["ds"])
    assert read_delta(str(path)).num_rows == 2


def test_refuses_deletion_vectors(tmp_path):
    _small_table(tmp_path)
    vector = {
        "storageType": "i",
        "pathOrInlineDv": "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L",
    }
    vector |= {"sizeInBytes": 40, "cardinality": 1}

    def with_vector(action):
        if "add" in action and "d1" in action["add"]["path"]:
            action["add"]["deletionVector"] = vector
        return action

    _rewrite_first_commit(tmp_path, with_vector)
    with pytest.raises(UnsupportedFeature, match="deletion vectors"):
        read_delta(str(tmp_path))


def test_refuses_column_mapping(tmp_path):
    _small_table(tmp_path)

    def mapped(action):
        if "metaData" in action:
            action["metaData"]["configuration"]["delta.columnMapping.mode"] = "name"
        return action

    _rewrite_first_commit(tmp_path, mapped)
    with pytest.raises(UnsupportedFeature, match="column mapping"):
        read_delta(str(tmp_path))


def test_refuses_reader_features_it_does_not_implement(tmp_path):
    _small_table(tmp_path)

    def featured(action):
        if "protocol" in action:
            action["protocol"] = {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "readerFeatures": ["v2Checkpoint"],
                "writerFeatures": ["v2Checkpoint"],
            }
        return action

    _rewrite_first_commit(tmp_path, featured)
    with pytest.raises(UnsupportedFeature, match="v2Checkpoint"):
        read_delta(str(tmp_path))
