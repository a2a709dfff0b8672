"""The merge reads only partitions whose key range can hold the delivery's keys, and still moves a
key whose partition date changed, whatever the key's type."""

from __future__ import annotations

import pandas as pd
import pytest

import pipelines
from pipelines.lake.engine import register
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project
from pipelines.steps import typed_merge
from pipelines.steps.dataset import run_steps
from tests.conftest import write_registry

REGISTRY = (
    "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date\n"
    "items,src/items_{ds}.parquet,{pk},ts,day,incremental,2024-01-01\n"
)


def deliver(home, ds, rows, typed=False):
    """Write the day's Parquet source and run extract and merge. ``typed``: ``ts`` and ``day`` as
    timestamps (merged in DuckDB, steps/typed_merge.py), else as text (the pandas path)."""
    frame = pd.DataFrame(rows, columns=["region", "id", "ts", "day", "v"])
    if typed:
        frame[["ts", "day"]] = frame[["ts", "day"]].apply(pd.to_datetime, utc=True)
    (home / "include" / "src").mkdir(exist_ok=True)
    frame.to_parquet(home / "include" / "src" / f"items_{ds}.parquet")
    run_steps("items", ds, steps=("extract", "merge"))


def typed_too(test):
    return pytest.mark.parametrize("typed", [False, True], ids=["text", "typed"])(test)


@typed_too
@pytest.mark.parametrize(
    ("pk", "ids"),
    [("id", [1, 2, 3]), ("region|id", ["a-1", "b-2", "c-3"]), ("id", ["u9", "u1", "u5"])],
    ids=["int", "composite-text", "unordered-text"],
)
def test_moved_key_leaves_its_old_partition(home, pk, ids, typed):
    write_registry(home, REGISTRY.replace("{pk}", pk))
    deliver(
        home,
        "2024-01-01",
        [
            ("eu", ids[0], "2024-01-01T01:00Z", "2024-01-01", 1),
            ("eu", ids[1], "2024-01-01T02:00Z", "2024-01-01", 2),
        ],
        typed,
    )
    deliver(
        home,
        "2024-01-02",
        [
            ("eu", ids[2], "2024-01-02T01:00Z", "2024-01-02", 3),
            ("eu", ids[0], "2024-01-02T02:00Z", "2024-01-02", 10),
        ],
        typed,
    )
    cleaned = pipelines.read("items").set_index("id")
    assert len(cleaned) == 3
    assert cleaned.loc[ids[0], "dt"] == "2024-01-02" and cleaned.loc[ids[0], "v"] == 10


@typed_too
def test_files_record_key_ranges_and_new_keys_skip_old_partitions(home, monkeypatch, typed):
    """Each file's key range is in the Delta log's statistics (the manifest's lo/hi before)."""
    write_registry(home, REGISTRY.replace("{pk}", "id"))
    deliver(home, "2024-01-01", [("eu", 1, "2024-01-01T01:00Z", "2024-01-01", 1)], typed)
    deliver(home, "2024-01-02", [("eu", 2, "2024-01-02T01:00Z", "2024-01-02", 2)], typed)
    table = Lake.from_env().cleaned(load_project().dataset("items"))
    assert table.snapshot().key_ranges("id")["2024-01-01"] == (1, 1)
    reads = []
    original = type(table).read_partition

    def spy(self, partition, snapshot=None, columns=None):
        reads.append((self.key, partition))
        return original(self, partition, snapshot, columns)

    def spy_view(con, view, table, snapshot, partitions, columns=None):
        reads.extend(("dt", p) for p in partitions if view == "target")  # the typed merge's
        return register(con, view, table, snapshot, partitions, columns)

    monkeypatch.setattr(type(table), "read_partition", spy)
    monkeypatch.setattr(typed_merge, "register", spy_view)
    deliver(home, "2024-01-03", [("eu", 3, "2024-01-03T01:00Z", "2024-01-03", 3)], typed)
    assert [p for key, p in reads if key == "dt"] == []
    deliver(home, "2024-01-04", [("eu", 1, "2024-01-04T01:00Z", "2024-01-04", 4)], typed)
    assert [p for key, p in reads if key == "dt"] == ["2024-01-01"]  # the range holding key 1
    assert pipelines.read("items").set_index("id").loc[1, "dt"] == "2024-01-04"


def test_vacuum_deletes_only_old_leftovers(home, capsys):
    import os
    import time

    from pipelines.cli import main

    write_registry(home, REGISTRY.replace("{pk}", "id"))
    deliver(home, "2024-01-01", [("eu", 1, "2024-01-01T01:00Z", "2024-01-01", 1)])
    table = Lake.from_env().cleaned(load_project().dataset("items"))
    folder = os.path.join(table.path, "dt=2024-01-01")
    orphan, temp, fresh = (
        os.path.join(folder, n)
        for n in ("part-00000009-dead.parquet", ".tmp-abc", "part-00000010-new.parquet")
    )
    for path in (orphan, temp, fresh):
        with open(path, "wb") as fh:
            fh.write(b"half a file")
    old = time.time() - 3 * 3600
    os.utime(orphan, (old, old))
    os.utime(temp, (old, old))
    before = pipelines.read("items")
    assert main(["vacuum", "--retention-hours", "2"]) == 0
    assert capsys.readouterr().out.strip() == "deleted 2 files no version of the last 2 h needs"
    assert not os.path.exists(orphan) and not os.path.exists(temp)
    assert os.path.exists(fresh)  # may belong to a commit in flight
    pd.testing.assert_frame_equal(before, pipelines.read("items"))
