"""What a table holds (its partitions' rows) is recorded in the namespace's runs table with each
commit, so that ``status`` reads it there instead of opening each table's Delta log: after every
kind of write the records say what the log says, and where they cannot (a version no record
covers) the table's own log answers, until its next commit records it whole again."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.lake import delta, frames, holdings
from pipelines.lake.holdings import Holdings, change, replay
from pipelines.lake.lake import Lake

DAYS = ("2024-01-01", "2024-01-02", "2024-01-03")


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path), "local")


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """The paths whose Delta log is opened from now on."""
    paths: list[str] = []
    real = delta.open_table

    def counting(path, storage, version=None):
        paths.append(path)
        return real(path, storage, version)

    monkeypatch.setattr(delta, "open_table", counting)
    return paths


def rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": list(range(n))})


def outlined(table) -> dict[str, int]:
    """What the records say the table holds (each partition's rows), and at which version."""
    out = table.outline()
    return {"version": out.version, **{p: out.rows(p) for p in out.partitions}}


def logged(table) -> dict[str, int]:
    """What the table's Delta log says, in the same form."""
    snap = table.snapshot()
    return {"version": snap.version, **{p: snap.rows(p) for p in snap.partitions}}


def answered_from_records(table, opened: list[str]) -> dict[str, int]:
    before = len(opened)
    said = outlined(table)
    assert table.path not in opened[before:], "the table's log was opened"
    return said


def test_every_commit_records_what_the_table_holds(lake, opened):
    table = lake.workflow("w")
    snap = table.commit(table.snapshot(), {DAYS[0]: rows(2), DAYS[1]: rows(3)}, run=(DAYS[1], {}))
    snap = table.commit(snap, {DAYS[1]: rows(1), DAYS[2]: rows(4)})  # no run, no config
    snap = table.commit(snap, {DAYS[0]: None}, run=(DAYS[2], {}))  # a partition dropped
    snap = table.commit(snap, {DAYS[2]: rows(0)})  # emptied: no partition left
    snap = table.commit(snap, {DAYS[0]: pd.DataFrame({"a": [0.5]})})  # widened: all rewritten
    said = answered_from_records(table, opened)
    assert said == logged(table) == {"version": 4, DAYS[0]: 1, DAYS[1]: 1}


def test_a_commit_that_changes_nothing_leaves_the_records_as_they_were(lake):
    table = lake.workflow("w")
    snap = table.commit(table.snapshot(), {DAYS[0]: rows(2)}, run=(DAYS[0], {}))
    table.commit(snap, {}, run=(DAYS[0], {"checks": "passed"}))
    records = lake.run_log().rows().sort_by("recorded_at").to_pylist()
    assert [r["partitions"] is not None for r in records] == [True, False]
    assert outlined(table) == {"version": 0, DAYS[0]: 2}


def test_maintenance_and_clearing_keep_the_records_right(lake, opened, monkeypatch):
    table = lake.workflow("w")
    snap = table.commit(table.snapshot(), {DAYS[0]: rows(2)}, run=(DAYS[0], {}))
    more = frames.to_arrow(rows(3).assign(ds=DAYS[0]), None, snap.schema)
    delta.append(table.path, table.storage, more)  # a second file in the partition
    snap = table.commit(table.snapshot(), {DAYS[1]: rows(3)}, run=(DAYS[1], {}))
    assert table.optimize()["numFilesRemoved"] == 2
    assert (
        answered_from_records(table, opened)
        == logged(table)
        == {"version": 3, DAYS[0]: 5, DAYS[1]: 3}
    )
    monkeypatch.setattr(delta, "retention_problem", lambda hours: None)
    assert table.vacuum(0)  # the compacted files go, in two commits (VACUUM START, END)
    assert answered_from_records(table, opened) == logged(table)
    assert logged(table)["version"] == 5
    table.clear()
    assert answered_from_records(table, opened) == logged(table) == {"version": 6}
    table.commit(table.snapshot(), {DAYS[2]: rows(1)})
    assert answered_from_records(table, opened) == logged(table) == {"version": 7, DAYS[2]: 1}


def test_a_write_the_records_miss_is_read_from_the_log_until_the_next_commit(lake, opened):
    table = lake.workflow("w")
    snap = table.commit(table.snapshot(), {DAYS[0]: rows(2)}, run=(DAYS[0], {}))
    unrecorded = lake.workflow("w")
    unrecorded.runs = None  # a writer that records nothing (one killed before it could)
    unrecorded.commit(snap, {DAYS[1]: rows(3)})
    assert lake.run_log().of("workflows/w").holdings == Holdings(0, {DAYS[0]: 2})  # behind the log
    assert outlined(table) == logged(table) == {"version": 1, DAYS[0]: 2, DAYS[1]: 3}
    table.commit(table.snapshot(), {DAYS[2]: rows(1)}, run=(DAYS[2], {}))  # recorded whole
    said = answered_from_records(table, opened)
    assert said == logged(table) == {"version": 2, DAYS[0]: 2, DAYS[1]: 3, DAYS[2]: 1}


def test_changes_that_do_not_follow_each_other_are_read_from_the_log(lake, opened):
    """Two writers' records in an order that leaves a version between them unrecorded."""
    table = lake.workflow("w")
    snap = table.commit(table.snapshot(), {DAYS[0]: rows(2)}, run=(DAYS[0], {}))
    log = lake.run_log()
    log.append("workflows/w", 2, partitions={"since": 1, "rows": {DAYS[1]: 3}, "gone": []})
    assert log.of("workflows/w").holdings is None
    assert outlined(table) == logged(table) == {"version": snap.version, DAYS[0]: 2}


def test_records_from_before_partitions_were_recorded_are_read_from_the_log(lake, opened):
    table = lake.workflow("w")
    table.commit(table.snapshot(), {DAYS[0]: rows(2)}, run=(DAYS[0], {}))
    log = lake.run_log()
    older = log.rows().drop_columns(["partitions"])  # a runs table as pipelines wrote it before
    from deltalake import write_deltalake

    write_deltalake(log.path, older, mode="overwrite", schema_mode="overwrite")
    fresh = Lake(lake.root, lake.namespace).workflow("w")
    assert outlined(fresh) == logged(fresh) == {"version": 0, DAYS[0]: 2}
    fresh.commit(fresh.snapshot(), {DAYS[1]: rows(1)}, run=(DAYS[1], {}))  # its column added
    assert answered_from_records(fresh, opened) == {"version": 1, DAYS[0]: 2, DAYS[1]: 1}
    older_run = fresh.outline().run_metrics(DAYS[0])  # the older records still read
    assert older_run.pop("wrote")["partitions"] == [DAYS[0]] and older_run == {}


def test_a_whole_record_every_few_changes_is_where_a_replay_starts(lake, opened, monkeypatch):
    monkeypatch.setattr(holdings, "WHOLE_EVERY", 3)
    table = lake.workflow("w")
    snap = table.snapshot()
    days = [f"2024-02-0{d}" for d in range(1, 8)]
    for n, day in enumerate(days, 1):
        snap = table.commit(snap, {day: rows(n)}, run=(day, {}))
    records = lake.run_log().rows().sort_by("version").to_pylist()
    said = [json.loads(r["partitions"]) for r in records]
    assert ["since" not in s for s in said] == [True, False, False] * 2 + [True]
    assert answered_from_records(table, opened) == logged(table)
    assert lake.run_log().of("workflows/w").holdings.changes == 0


def test_a_table_never_written_is_empty(lake):
    table = lake.aggregated("nothing")
    assert outlined(table) == {"version": -1} and not table.outline().exists


def _record(version: int, **said) -> tuple[int, dict]:
    return version, said


def test_replay_starts_at_the_newest_whole_record_and_follows_each_change():
    records = [
        _record(0, rows={"a": 1}),
        _record(1, since=0, rows={"b": 2}, gone=[]),
        _record(1, since=0, rows={"b": 2}, gone=[]),  # an append retried: counted once
        _record(3, since=1, rows={"a": 5}, gone=["b"]),
    ]
    assert replay(records) == Holdings(3, {"a": 5})
    assert replay(records[:1] + records[3:]) is None  # version 1 is not recorded
    assert replay([*records[:1], records[3], _record(4, rows={"c": 1})]) == Holdings(4, {"c": 1})
    assert replay([]) is None
    assert replay(records[1:]) is None  # no whole record to start from


def test_a_change_is_recorded_whole_when_the_records_do_not_hold_its_start():
    before, after = Holdings(2, {"a": 1, "b": 2}), Holdings(3, {"a": 1, "c": 4})
    changed = {"rows": {"c": 4}, "gone": ["b"]}
    assert change(before, before, after) == {"since": 2, **changed}
    # a commit between that changed no row (a compaction no record covers): the change follows
    assert change(Holdings(1, before.rows), before, after) == {"since": 1, **changed}
    whole = {"rows": {"a": 1, "c": 4}}
    assert change(Holdings(1, {"a": 1}), before, after) == whole  # rows changed unrecorded
    assert change(None, before, after) == whole
    assert change(before, before, before) is None  # nothing changed, nothing to say
    assert change(after, before, after) is None  # the records reach it already
    assert change(None, before, before) == {"rows": before.rows}
