"""Maintenance steps without a lake: the retention floor, and a compaction a writer beat."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest

from pipelines.exceptions import CommitConflict, PipelinesError
from pipelines.lake.delta import MIN_RETENTION_HOURS, retention_problem
from pipelines.steps import maintenance


def test_the_retention_floor_says_why():
    assert retention_problem(MIN_RETENTION_HOURS) is None
    assert retention_problem(168) is None
    assert retention_problem(0.5) == (
        "0.5 is under 1: a commit in flight writes its files before it commits them, and a "
        "vacuum that young could delete them"
    )


@pytest.mark.parametrize("hours", ["0", "-1", "-0.5", "nan"])
def test_the_vacuum_command_refuses_no_or_negative_retention(hours, capsys):
    from pipelines.cli import main

    assert main(["vacuum", "--retention-hours", hours]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"error: --retention-hours {float(hours):g} ")
    assert said.count("\n") == 1


@pytest.mark.parametrize("command", ["vacuum", "optimize", "repair"])
def test_maintenance_of_a_namespace_with_nothing_in_the_lake_is_refused(command, home, capsys):
    """A mistyped ``--namespace`` is refused in one line, and nothing is written: no claim, no
    runs table (maintenance would otherwise create the namespace)."""
    from pipelines.cli import main

    assert main([command, "--namespace", "nosuch"]) == 1
    out, err = capsys.readouterr()
    where = home / "lake" / "nosuch"
    assert out + err == f"error: namespace 'nosuch' has nothing in the lake ({where})\n"
    assert not where.exists()


@pytest.mark.parametrize("hours", [0, -24, 0.99, float("nan")])
def test_every_vacuum_of_a_table_refuses_a_short_retention(hours, tmp_path):
    """The floor holds whoever calls the vacuum (a table's, the runs table's), before it opens
    or probes anything."""
    from pipelines.exceptions import LakeError
    from pipelines.lake import delta
    from pipelines.lake.storage import Storage

    with pytest.raises(LakeError, match=r"^retention_hours "):
        delta.vacuum(str(tmp_path / "t"), Storage(str(tmp_path)), hours)
    assert list(tmp_path.iterdir()) == []


def test_vacuum_refuses_a_short_retention_before_it_opens_a_table(monkeypatch):
    def never(*_):
        raise AssertionError("no table may be opened")

    monkeypatch.setattr(maintenance, "owned", never)
    with pytest.raises(PipelinesError, match=r"^retention_hours 0 is under 1: "):
        maintenance.vacuum(None, None, 0)


class FakeTable:
    def __init__(self, path: str, metrics: dict | None):
        self.path, self.metrics = path, metrics

    def batched(self):  # the runs table's: records appended together
        return contextlib.nullcontext()

    def optimize(self) -> dict:
        if self.metrics is None:
            raise CommitConflict(f"{self.path}: another writer committed first")
        return self.metrics


def test_a_table_a_writer_beats_is_left_and_the_others_compacted(monkeypatch):
    lake = SimpleNamespace(prefix="/lake/ns")
    tables = [
        FakeTable("/lake/ns/raw/orders", {"numFilesRemoved": 3, "numFilesAdded": 1}),
        FakeTable("/lake/ns/cleaned/orders", None),
        FakeTable("/lake/ns/_runs", {}),  # nothing to compact: delta-rs's empty metrics
    ]
    monkeypatch.setattr(maintenance, "owned", lambda project, lake: tables)
    done = maintenance.optimize(None, lake)
    assert done == maintenance.Compacted(3, 3, 1, ("cleaned/orders",))
    assert done.as_dict() == {"tables": 3, "removed": 3, "added": 1, "beaten": ["cleaned/orders"]}


def test_vacuum_deletes_the_half_written_file_a_killed_local_write_left(tmp_path):
    """object_store writes a local file as ``name#N`` and renames it once whole; a writer killed
    in between leaves ``name#N``, which delta-rs's vacuum never lists (the reliability suite's
    kills found one: it was never deleted). Past the retention it goes; a younger one and the
    log's files stay."""
    import os
    import time

    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from pipelines.lake import delta
    from pipelines.lake.storage import Storage

    path = tmp_path / "local" / "raw" / "t"
    write_deltalake(str(path), pa.table({"ds": ["2024-01-01"], "v": [1]}), partition_by=["ds"])
    old = time.time() - 3 * 3600
    files = {
        "ds=2024-01-01/part-0-a.parquet#1": old,  # cut short three hours ago
        "ds=2024-01-01/part-0-b.parquet#12": time.time(),  # a write in flight now
        "_delta_log/_commit_x.json#1": old,
    }
    for name, when in files.items():
        (path / name).write_bytes(b"PAR1 half")
        os.utime(path / name, (when, when))

    deleted = delta.vacuum(str(path), Storage(str(tmp_path)), 1)

    assert deleted == ["ds=2024-01-01/part-0-a.parquet#1"]
    assert [n for n in files if (path / n).exists()] == list(files)[1:]
    assert DeltaTable(str(path)).to_pyarrow_table()["v"].to_pylist() == [1]
