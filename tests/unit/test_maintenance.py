"""Maintenance steps without a lake: the retention floor, and a compaction a writer beat."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest

from pipelines.exceptions import CommitConflict, PipelinesError
from pipelines.lake.tables import MIN_RETENTION_HOURS, retention_problem
from pipelines.steps import maintenance


def test_the_retention_floor_says_why():
    assert retention_problem(MIN_RETENTION_HOURS) is None
    assert retention_problem(168) is None
    assert retention_problem(0.5) == (
        "0.5 is under 1: a commit in flight writes its files before it commits them, and a "
        "vacuum that young could delete them"
    )


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
