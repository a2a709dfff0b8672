"""A vacuum beside commits when the clocks disagree (issue 26, case 8): nothing a commit in flight
is about to publish is deleted, and no version names a file that is gone.

The storage's clock is two hours behind this machine's (an object store's, or an NFS server's,
can be): every object it stores is stamped two hours ago. delta-rs judges a file's age by that
stamp against the local clock, so to a vacuum with a retention of one hour a file written a
second ago looks two hours old. A writer replaces day D over and over, each commit in flight for
a while (its Parquet files land, then its commit follows: what delta-rs does, with the pause a
slow store or a big write gives), while a vacuum runs over and over beside it and a reader reads
the newest version. Every read must succeed and hold one whole delivery; afterwards every file
the newest version names is there, and the table reads the last delivery. (Was: the vacuum
deleted in-flight files, and the commits published versions naming them: reads failed on the
missing files while the table's log said it was up to date.)

A second test deletes a commit's files while it is in flight (what a vacuum of another tool, or
one with a retention shorter than the commit, would do): the version that names them is undone
at once, the writer is told in one line, and the retried commit lands whole.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pandas as pd
import pytest

from pipelines.lake.lake import Lake
from pipelines.lake.storage import Storage
from pipelines.lake.tables import commit_with_retry

DAY = "2024-01-05"
BEHIND = 2 * 3600.0  # how far the storage's clock is behind this machine's, in seconds
IN_FLIGHT = 0.15  # seconds between a commit's files landing and its commit
SECONDS = 6.0  # of racing


def delivery(n: int) -> pd.DataFrame:
    """Delivery ``n`` of day D: 50 rows all marked ``n``."""
    return pd.DataFrame({"id": [f"K{i:03d}" for i in range(50)], "batch": [str(n)] * 50})


def stamped_behind(path: str) -> None:
    """What the storage does to every object it stores: stamp it with its (late) time."""
    then = time.time() - BEHIND
    os.utime(path, (then, then))


def in_flight(pause: float, on_landed=None, lost: list[str] | None = None):
    """delta-rs's write (an overwrite of partitions, or an append), in its two steps with a
    pause between: the Parquet files land (stamped by the storage), then the commit that names
    them follows (an append's commit is retried past other commits, as delta-rs does).

    :param on_landed: called with the files once they landed
    :param lost: where the files gone when the commit comes are listed
    """
    import deltalake

    whole = deltalake.write_deltalake

    def write(target, data, *, mode, predicate=None, commit_properties=None, **kwargs):
        if isinstance(target, str):  # the first write creates the table: as it is
            return whole(target, data, mode=mode, commit_properties=commit_properties, **kwargs)
        key = (kwargs.get("partition_by") or [None])[0] if mode == "overwrite" else None
        root = target.table_uri.removeprefix("file://").rstrip("/")
        actions = _land(root, data, key)
        if on_landed is not None:
            on_landed([f"{root}/{a.path}" for a in actions])
        time.sleep(pause)  # in flight: the files are there, no version names them yet
        if lost is not None:
            lost.extend(
                f"{root}/{a.path}" for a in actions if not os.path.exists(f"{root}/{a.path}")
            )
        values = sorted({a.partition_values[key] for a in actions}) if key else None
        target.create_write_transaction(
            actions,
            mode=mode,
            schema=data.schema,
            partition_by=[key] if key else None,
            partition_filters=[(key, "in", values)] if key else None,
            commit_properties=commit_properties,
        )

    return write


def _land(root: str, data, key: str | None) -> list:
    """Write ``data`` as Parquet files under the table ``root`` (one per value of the partition
    column ``key``), stamped by the storage; their add actions."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    parts = {None: data} if key is None else {}
    for value in sorted(set(data[key].to_pylist())) if key else ():
        parts[value] = data.filter(pc.equal(data[key], value)).drop_columns([key])
    actions = []
    for value, rows in parts.items():
        folder = f"{key}={value}/" if key else ""
        name = f"{folder}part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        os.makedirs(os.path.dirname(f"{root}/{name}"), exist_ok=True)
        pq.write_table(rows, f"{root}/{name}")
        stamped_behind(f"{root}/{name}")
        stats = json.dumps({"numRecords": rows.num_rows})
        size, now = os.path.getsize(f"{root}/{name}"), int(time.time() * 1000)
        values = {key: value} if key else {}
        actions.append(AddAction(name, size, values, now, True, stats))
    return actions


@pytest.fixture
def feed(fast_dir, monkeypatch):
    """A raw table of one day, written in the lake of namespace ``serving`` with the record of
    its run, every object of them stamped by a storage whose clock is two hours behind."""
    lake = Lake(str(fast_dir / "lake"), "serving")
    table = lake.raw("feed")
    table.commit(table.snapshot(), {DAY: delivery(0)}, run=(DAY, {"batch": 0}))
    for folder, _, names in os.walk(lake.prefix):
        for name in names:
            stamped_behind(os.path.join(folder, name))
    orphan = f"{table.path}/ds={DAY}/part-00000-orphan-c000.snappy.parquet"
    with open(orphan, "wb") as out:  # left by a writer killed two hours (storage time) ago
        out.write(b"PAR1")
    then = time.time() - BEHIND - 2 * 3600
    os.utime(orphan, (then, then))
    original = getattr(Storage, "touch", None)

    def touch(self, path):  # the vacuum's probe, stamped by the same storage
        original(self, path)
        stamped_behind(path)

    monkeypatch.setattr(Storage, "touch", touch, raising=False)
    return table


def replace_day(table, n: int) -> None:
    """Delivery ``n`` in place of day D, and its run recorded (an append to the runs table)."""
    commit_with_retry(
        table, lambda base: table.commit(base, {DAY: delivery(n)}, run=(DAY, {"batch": n}))
    )


class Race:
    """A writer replacing day D, a vacuum and a reader, each in a thread, until stopped; what
    failed (a commit, a vacuum or a read: any is a failure), and how many of each ran."""

    def __init__(self, table):
        self.table = table
        self.runs, self.name = table.runs
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.counts = {"commits": 0, "vacuums": 0, "deleted": 0, "reads": 0}

    def _loop(self, what: str, step) -> None:
        while not self.stop.is_set():
            try:
                step()
            except Exception as exc:  # a commit, a vacuum or a read that failed
                self.failures.append(f"{what}: {type(exc).__name__}: {str(exc)[:300]}")
                if what != "read":
                    return

    def _commit(self) -> None:
        replace_day(self.table, self.counts["commits"] + 1)
        self.counts["commits"] += 1

    def _vacuum(self) -> None:  # the table, then the runs table (as `pipelines vacuum` does)
        self.counts["deleted"] += len(self.table.vacuum(1)) + len(self.runs.vacuum(1))
        self.counts["vacuums"] += 1

    def _read(self) -> None:
        self.counts["reads"] += 1
        rows = self.table.read()
        assert len(rows) == 50 and rows["batch"].nunique() == 1, rows
        recorded = self.runs.of(self.name).runs.get(DAY, {})
        assert int(recorded.get("batch", -1)) >= 0, recorded

    def run(self, seconds: float) -> None:
        steps = {"commit": self._commit, "vacuum": self._vacuum, "read": self._read}
        threads = [
            threading.Thread(target=self._loop, args=item, daemon=True) for item in steps.items()
        ]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)


def test_a_vacuum_beside_commits_deletes_nothing_they_publish(feed, monkeypatch, figures):
    import deltalake

    lost: list[str] = []  # files deleted while their commit was in flight
    monkeypatch.setattr(deltalake, "write_deltalake", in_flight(IN_FLIGHT, lost=lost))
    race = Race(feed)
    race.run(SECONDS)
    print(
        f"vacuum beside commits: {race.counts}, {len(lost)} in-flight files deleted, "
        f"failures: {race.failures[:3]}"
    )
    figures["checked_reads"] += race.counts["reads"]
    figures["corrupt_reads"] += sum(f.startswith("read") for f in race.failures)

    assert not lost, f"the vacuum deleted {len(lost)} files of commits in flight: {lost[:3]}"
    assert not race.failures, race.failures[:3]
    assert race.counts["commits"] >= 3 and race.counts["vacuums"] >= 3, race.counts
    day_folder = f"{feed.path}/ds={DAY}"
    assert race.counts["deleted"] >= 1  # the old orphan: the vacuum did delete what it should
    assert not any("orphan" in name for name in os.listdir(day_folder))
    from deltalake import DeltaTable

    for path in (feed.path, race.runs.path):  # what the newest versions name is there
        gone = [uri for uri in DeltaTable(path).file_uris() if not os.path.exists(uri)]
        assert not gone, f"the newest version of {path} names files that are gone: {gone}"
    assert feed.read()["batch"].tolist() == [str(race.counts["commits"])] * 50


def test_a_commit_whose_files_vanish_in_flight_is_undone_and_retried(feed, monkeypatch):
    import deltalake

    from pipelines.lake.delta import FilesVanished

    before = feed.snapshot()
    deleted: list[str] = []

    def delete_first(paths):  # a vacuum that does not know the commit is coming
        if not deleted:
            for path in paths:
                os.remove(path)
            deleted.extend(paths)

    monkeypatch.setattr(deltalake, "write_deltalake", in_flight(0.0, delete_first))
    with pytest.raises(FilesVanished) as told:
        feed.commit(feed.snapshot(), {DAY: delivery(1)})
    said = str(told.value)
    assert "\n" not in said and f"version {before.version + 1} named 1 file(s)" in said
    assert f"restored version {before.version} as version {before.version + 2}" in said
    assert feed.read()["batch"].tolist() == ["0"] * 50  # as before the commit, readable
    replace_day(feed, 2)  # the rerun lands whole
    assert feed.read()["batch"].tolist() == ["2"] * 50
