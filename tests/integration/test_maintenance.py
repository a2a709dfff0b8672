"""The maintenance DAG run locally over a lake of many small commits: afterwards every table has
no more files than before (the cleaned table and the runs table far fewer), reads return the
same rows, older versions still read (their files are younger than the retention), and the
vacuum deleted only files older than the retention."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

import pipelines
from pipelines.project.config import load_project
from pipelines.steps.dataset import run_steps
from tests.conftest import data_columns, write_registry

REGISTRY = (
    "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date\n"
    "items,src/items_{ds}.parquet,id,ts,day,incremental,2024-01-01\n"
)
SETTINGS = "serving: {maintenance: '0 3 * * 0', retention_hours: 1}\n"
DAYS = [f"2024-01-0{d}" for d in range(1, 7)]
HOUR = 3600


def deliver(home: Path, ds: str, n: int) -> None:
    """Day ``ds``'s delivery (typed: merged into the cleaned table by a Delta merge, which adds
    the inserted rows as new files): two new keys of its own day, and a late one for the first
    day, whose cleaned partition gets a small file per merge; then run the day's steps."""
    rows = [
        (n * 10 + 1, f"{ds}T01:00Z", ds, n),
        (n * 10 + 2, f"{ds}T02:00Z", ds, n),
        (n * 10 + 3, f"{ds}T03:00Z", DAYS[0], n),  # late for the first day
    ]
    frame = pd.DataFrame(rows, columns=["id", "ts", "day", "v"])
    frame[["ts", "day"]] = frame[["ts", "day"]].apply(pd.to_datetime, utc=True)
    (home / "include" / "src").mkdir(exist_ok=True)
    frame.to_parquet(home / "include" / "src" / f"items_{ds}.parquet")
    run_steps("items", ds)


def add_files(path: str) -> int:
    """The files the table's current version names (its add actions), read without pipelines."""
    from deltalake import DeltaTable

    return DeltaTable(path).get_add_actions().num_rows


@pytest.fixture
def lake(home):
    """Six days of small commits to ``items`` (raw, cleaned, quarantine) and the runs table."""
    write_registry(home, REGISTRY)
    (home / "include" / "namespaces.yaml").write_text(SETTINGS)
    for n, ds in enumerate(DAYS, 1):
        deliver(home, ds, n)
    project = load_project()
    return project, project.lake()


def tables_of(project, lake) -> dict[str, str]:
    return {
        "raw": lake.raw("items").path,
        "cleaned": lake.cleaned(project.dataset("items")).path,
        "runs": lake.run_log().path,
    }


def on_disk(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*.parquet")}


def test_the_maintenance_dag_compacts_keeps_the_rows_and_deletes_only_old_files(lake, home):
    from deltalake import DeltaTable

    from pipelines.runs.local import run_dag

    project, lake = lake
    paths = tables_of(project, lake)
    cleaned = project.lake().cleaned(project.dataset("items"))
    assert cleaned.snapshot().files.num_rows == add_files(paths["cleaned"])  # one way to count
    files = {name: add_files(path) for name, path in paths.items()}
    assert files["cleaned"] >= len(DAYS) + 1  # the first day's partition: a file per merge
    versions = {name: DeltaTable(path).version() for name, path in paths.items()}
    rows = {layer: data_columns(pipelines.read("items", layer)) for layer in ("raw", "cleaned")}
    old_rows = DeltaTable(paths["cleaned"]).to_pyarrow_table().to_pandas()
    # what a crashed writer left: one file two hours old, one a minute old (maybe in flight)
    partition = Path(paths["cleaned"]) / f"{cleaned.key}={DAYS[0]}"
    old_orphan, young_orphan = partition / "part-dead-old.parquet", partition / "part-dead.parquet"
    for path, age in ((old_orphan, 2 * HOUR), (young_orphan, 60)):
        path.write_bytes(b"left by a crashed writer")
        os.utime(path, (time.time() - age, time.time() - age))
    before = on_disk(home / "lake")

    outcome = run_dag("local__maintenance", "2024-01-07")

    assert outcome.ok, outcome.error
    compacted, vacuumed = outcome.results["optimize"], outcome.results["vacuum"]
    after = {name: add_files(path) for name, path in paths.items()}
    assert after["cleaned"] == len(DAYS) == cleaned.snapshot().files.num_rows  # one a partition
    assert after["runs"] == 1 < files["runs"]
    assert all(after[name] <= files[name] for name in files), (files, after)
    # the files it compacted: those there before, and the one append recording the tables'
    # compactions in the runs table (before the runs table's own)
    compacted_files = sum(files.values()) + 1 - sum(after.values())
    assert compacted["removed"] - compacted["added"] == compacted_files
    # raw, cleaned, quarantine (no bad row: never created, nothing to do) and the runs table
    assert compacted["tables"] == vacuumed["tables"] == 4
    assert (vacuumed["deleted"], vacuumed["retention_hours"]) == (1, 1.0)
    for layer, frame in rows.items():
        pd.testing.assert_frame_equal(data_columns(pipelines.read("items", layer)), frame)
    # the vacuum deleted the one file older than the retention, nothing younger: every file of
    # the versions before the compaction is still there, so they still read
    left = on_disk(home / "lake")
    assert set(before) - set(left) == {str(old_orphan)}
    assert young_orphan.exists()
    for name, path in paths.items():  # a compaction commit where there was something to do
        history = DeltaTable(path).history()
        since = [c["operation"] for c in history if c["version"] > versions[name]]
        if name == "runs":  # each step: one append of what its commits left (newest first)
            assert since == ["OPTIMIZE", "WRITE"] * 2, since
            continue
        assert set(since) <= {"OPTIMIZE", "VACUUM START", "VACUUM END"}, (name, since)
        assert since.count("OPTIMIZE") == (after[name] < files[name]), (name, since)
    # what those appends record of each table's maintenance commits: that no row changed
    records = lake.run_log().rows().to_pylist()
    by_table = {"raw/items": versions["raw"], "cleaned/items": versions["cleaned"]}
    made = [r for r in records if r["version"] > by_table.get(r["table"], r["version"])]
    said = [json.loads(r["partitions"]) for r in made]
    assert made and all((r["ds"], r["metrics"], r["config"]) == (None,) * 3 for r in made)
    assert all((s["rows"], s["gone"]) == ({}, []) for s in said), said
    assert after["raw"] == files["raw"] == len(DAYS)  # a file per day already: nothing to do
    older = DeltaTable(paths["cleaned"], version=versions["cleaned"]).to_pyarrow_table()
    pd.testing.assert_frame_equal(older.to_pandas(), old_rows)


def test_pipelines_vacuum_keeps_the_namespaces_retention(lake, capsys):
    from pipelines.cli import main

    assert main(["vacuum"]) == 0
    assert capsys.readouterr().out == "deleted 0 files no version of the last 1 h needs\n"
    assert main(["vacuum", "--retention-hours", "0.5"]) == 2
    assert capsys.readouterr().err == (
        "error: --retention-hours 0.5 is under 1: a commit in flight writes its files before it "
        "commits them, and a vacuum that young could delete them\n"
    )
    assert main(["optimize"]) == 0
    assert capsys.readouterr().out.startswith("compacted ")


def test_the_maintenance_dag_runs_through_dag_test_too(lake, airflow_db):
    from pipelines.runs.local import run_dag

    outcome = run_dag("local__maintenance", "2024-01-07", full_airflow=True)
    assert outcome.ok, outcome.error
    assert outcome.results["optimize"]["removed"] > outcome.results["optimize"]["added"] > 0
    assert outcome.results["vacuum"]["deleted"] == 0  # the replaced files are younger than 1 h


def test_a_data_file_with_a_byte_changed_is_healed_by_the_repair_of_its_table(lake, capsys):
    """Its size is unchanged (the sizes see nothing, nor does its footer): the read points to
    ``pipelines repair items``, which reads the table's files whole, sets the file aside and
    makes its days again from the raw table."""
    from deltalake import DeltaTable

    from pipelines.cli import main
    from pipelines.inspection.reader import read

    project, lk = lake
    path = lk.cleaned(project.dataset("items")).path
    before = data_columns(read("items"))
    files = [u.removeprefix("file://") for u in DeltaTable(path).file_uris()]
    newest = Path(max(files, key=os.path.getmtime))
    data = newest.read_bytes()
    newest.write_bytes(data[:4] + bytes([data[4] ^ 0xFF]) + data[5:])  # a page header's byte
    assert main(["read", "items"]) == 1
    said = capsys.readouterr().err
    assert said.startswith("error: ") and "a data file does not read (" in said
    assert "`pipelines repair items` reads each of its files" in said
    assert main(["repair", "items"]) == 0
    said = capsys.readouterr().out
    assert f"cleaned/items: damaged ({newest.name} does not read as Parquet" in said, said
    assert said.rstrip().endswith("repaired 1 table"), said
    assert not newest.exists()
    pd.testing.assert_frame_equal(data_columns(read("items")), before)
