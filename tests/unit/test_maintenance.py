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
