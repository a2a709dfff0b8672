"""Every table of the lake, read by an independent reader of the Delta protocol, is exactly what
``pipelines.read`` returns.

The independent reader (``tests/delta_protocol.py``) replays the ``_delta_log`` JSON commits and
checkpoints with pyarrow and reads the live data files; it imports nothing from delta-rs, which
writes the lake. What it finds is what any Delta engine (DuckDB's ``delta_scan``, Spark, Trino,
Polars) reads. The lake is the sample's ``e2e_test`` cookbook over two days, its database source
``payments`` (numeric, date and timestamptz columns, read from the seeded PostgreSQL of
tests/sample_database.py), plus a dataset whose column names Delta refuses (stored under another
name, the name kept in ``pipelines.name``) and which gains a column on its second day.

Rows are compared as multisets of Python values tagged with their type: a Delta table's rows are
unordered, and the tag keeps ``1`` apart from ``1.0`` and ``True``. A date must come back from
``pipelines.read`` as a naive midnight timestamp, a UTC timestamp as an aware one; NaN in a float
column counts as null (numpy's ``float64`` has no other null).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import pipelines
from pipelines.client import Client
from pipelines.common.partitions import Layer
from pipelines.exceptions import LakeError
from pipelines.project.config import load_project
from tests import sample_database
from tests.conftest import REPO
from tests.delta_protocol import read_delta, snapshot, version

DAYS = ("2024-01-01", "2024-01-02")
NAMESPACE = "local"
RUNS = "_runs"
EMPTY = "quarantine/customers"  # created with its columns, no rows: customers quarantined none
NAME = b"pipelines.name"
# a dataset whose column names Delta refuses (a space, parentheses), one of them clashing with
# the name another is stored under; it gains a column on the second day
KUNDEN_ROW = (
    "kunden,kunden/k_{ds}.csv,csv,Kunde Nr.,Geändert am,Geändert am,incremental,@daily,"
    "2024-01-01,1,,,,\n"
)
KUNDEN = {
    "2024-01-01": "Kunde Nr.,Name,Umsatz (EUR),Umsatz__EUR_,Geändert am\n"
    "1,Müller,12.5,a,2024-01-01T10:00:00Z\n"
    "2,,,b,2024-01-01T11:00:00Z\n"
    ",Nobody,1,c,2024-01-01T12:00:00Z\n",
    "2024-01-02": "Kunde Nr.,Name,Umsatz (EUR),Umsatz__EUR_,Geändert am,Rabatt (%)\n"
    "1,Müller,20,,2024-01-02T09:00:00Z,5\n"
    "3,Schmidt,7.25,d,2024-01-02T10:00:00+02:00,\n",
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """The namespace's folder after the cookbook, ``payments`` and ``kunden`` ran for
    :data:`DAYS`."""
    import shutil

    home = tmp_path_factory.mktemp("interop")
    shutil.copytree(REPO / "include", home / "include")
    with (home / "include" / "registry.csv").open("a") as registry:
        registry.write(KUNDEN_ROW)
    (home / "include" / "kunden").mkdir()
    for day, text in KUNDEN.items():
        (home / "include" / "kunden" / f"k_{day}.csv").write_text(text)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PIPELINES_HOME", str(home))
        env.setenv("PIPELINES_LAKE", str(home / "lake"))
        env.setenv("PIPELINES_NAMESPACE", NAMESPACE)
        env.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
        env.setenv(sample_database.CONN_ENV, sample_database.seeded())
        client = Client()
        for name in ("e2e_test", "payments", "kunden"):
            results = client.submit(name, DAYS[0], end=DAYS[-1])
            assert results.ok, [(r.dag_id, r.ds, r.error) for r in results.runs]
        yield home / "lake" / NAMESPACE


@pytest.fixture
def project(lake):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PIPELINES_HOME", str(lake.parents[1]))
        env.setenv("PIPELINES_LAKE", str(lake.parent))
        env.setenv("PIPELINES_NAMESPACE", NAMESPACE)
        yield load_project()


def delta_tables(lake: Path) -> dict[str, Path]:
    """Every Delta table under the namespace's folder, by its path there (``raw/orders``)."""
    return {log.parent.relative_to(lake).as_posix(): log.parent for log in lake.rglob("_delta_log")}


def expected_tables(project) -> set[str]:
    """The tables the project writes: three layers per dataset, its aggregates and workflows,
    and the runs table."""
    names = {RUNS}
    for dataset in project.datasets:
        names |= {f"{layer}/{dataset.name}" for layer in ("raw", "cleaned", "quarantine")}
    names |= {f"aggregated/{a.name}" for a in project.aggregates}
    names |= {f"workflows/{w.name}" for w in project.workflows}
    return names


# --- values ------------------------------------------------------------------------------------


def cell(value):
    """A value as (type, value), nulls and NaN as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return type(value).__name__, value


def from_pandas(value, type_: pa.DataType):
    """A value of a frame ``pipelines.read`` returned, as the Python value Arrow gives for a
    column of ``type_`` (the column's type in the Delta schema)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if pa.types.is_date(type_):  # a date reads as a naive timestamp at midnight
        assert isinstance(value, pd.Timestamp) and value.tz is None, value
        assert value == value.normalize(), value
        return value.date()
    if pa.types.is_timestamp(type_):
        assert isinstance(value, pd.Timestamp) and value.nanosecond == 0, value
        assert str(value.tz) == str(type_.tz) if type_.tz else value.tz is None, (value, type_)
        return value.to_pydatetime()
    return value


def arrow_rows(table: pa.Table) -> Counter:
    return Counter(zip(*(map(cell, c.to_pylist()) for c in table.columns), strict=True))


def frame_rows(frame: pd.DataFrame, types: dict[str, pa.DataType]) -> Counter:
    columns = [[cell(from_pandas(v, types[c])) for v in frame[c]] for c in frame.columns]
    return Counter(zip(*columns, strict=True))


def partition_key(path: Path) -> str:
    [key] = snapshot(path).metadata["partitionColumns"]
    return key


def assert_same(frame: pd.DataFrame, independent: pa.Table, key: str, what: str) -> None:
    """``frame`` (from pipelines) holds exactly the rows of ``independent`` (read from the Delta
    log), under the names ``pipelines.name`` gives back, the partition column first (a table
    without rows too: its columns)."""
    fields = independent.schema
    names = {f.name: (f.metadata or {}).get(NAME, f.name.encode()).decode() for f in fields}
    expected = [key, *(names[n] for n in independent.column_names if n != key)]
    assert list(frame.columns) == expected, what
    assert len(frame) == independent.num_rows, what
    named = independent.rename_columns([names[n] for n in independent.column_names])
    types = {f.name: f.type for f in named.schema}
    assert frame_rows(frame, types) == arrow_rows(named.select(expected)), what


def rows_of(table: pa.Table, column: str, value: str) -> pa.Table:
    return table.filter(pc.equal(table[column], value))


# --- the tests ---------------------------------------------------------------------------------


def test_the_lake_holds_a_delta_table_for_every_table_the_project_writes(lake, project):
    found = delta_tables(lake)
    assert set(found) == expected_tables(project)
    assert {name.split("/")[0] for name in found} == {*(layer.value for layer in Layer), RUNS}
    assert len(found) == 5 * 3 + 3 + 2 + 1  # 5 datasets' 3 layers, 3 aggregates, 2 workflows
    assert all(version(path) >= len(DAYS) - 1 for path in found.values())


def assert_reads_the_same(name: str, path: Path, project) -> int:
    """``pipelines.read`` of the table at ``path`` (``raw/orders``: ``name``) is what the
    independent reader reads there (a full dataset's cleaned layer: its newest snapshot); the
    rows read."""
    layer, table = name.split("/")
    independent, key = read_delta(path), partition_key(path)
    dataset = project.dataset(table) if layer == "cleaned" else None
    if dataset is not None and dataset.ingestion.keeps_snapshots:
        independent = rows_of(independent, key, max(independent[key].to_pylist()))
    assert_same(pipelines.read(table, layer), independent, key, name)
    return independent.num_rows


def assert_runs_read_the_same(lake: Path) -> pa.Table:
    """The runs table as the independent reader reads it, which is what the lake reads."""
    from pipelines.lake.runs import RunLog
    from pipelines.lake.storage import Storage

    records = read_delta(lake / RUNS)
    assert records.column_names == [
        *("table", "ds", "version", "metrics", "config", "recorded_at", "partitions")
    ]
    through_the_lake = RunLog(Storage(str(lake.parent)), str(lake / RUNS)).rows()
    assert arrow_rows(records) == arrow_rows(through_the_lake.select(records.column_names))
    return records


def test_every_layer_reads_the_same_independently_and_through_pipelines(lake, project):
    tables = {n: p for n, p in delta_tables(lake).items() if n != RUNS}
    empty = {n for n, p in sorted(tables.items()) if not assert_reads_the_same(n, p, project)}
    assert len(tables) == len(expected_tables(project)) - 1
    assert empty == {EMPTY, "quarantine/payments"}  # none quarantined on these days


def test_a_table_without_rows_reads_with_its_columns(lake):
    independent = read_delta(lake / EMPTY)
    assert independent.num_rows == 0 and len(independent.column_names) == 9
    frame = pipelines.read("customers", "quarantine")
    assert list(frame.columns) == ["ds", *independent.column_names[:-1]]


def test_names_delta_refuses_are_stored_under_names_it_takes(lake):
    fields = {f.name: f for f in read_delta(lake / "cleaned" / "kunden").schema}
    given = {name: (f.metadata or {}).get(NAME, b"").decode() for name, f in fields.items()}
    assert given == {
        "Kunde_Nr.": "Kunde Nr.",
        "Name": "",
        "Umsatz__EUR__": "Umsatz (EUR)",  # Umsatz__EUR_ is the name of another column
        "Umsatz__EUR_": "",
        "Geändert_am": "Geändert am",
        "Rabatt__%_": "Rabatt (%)",
        "_row": "",
        "_ds": "",
        "dt": "",
    }
    cleaned = pipelines.read("kunden").set_index("Kunde Nr.")  # a CSV key: text as delivered
    assert cleaned.loc["1", "Umsatz (EUR)"] == 20 and pd.isna(cleaned.loc["2", "Umsatz (EUR)"])
    assert cleaned.loc["1", "Rabatt (%)"] == 5 and pd.isna(cleaned.loc["2", "Rabatt (%)"])


def test_each_delivery_and_snapshot_reads_the_same_as_of_its_day(lake, project):
    compared = 0
    for name, path in sorted(delta_tables(lake).items()):
        layer, _, table = name.partition("/")
        dataset = project.dataset(table) if layer == "cleaned" else None
        by_day = layer in ("raw", "quarantine", "workflows") or (
            dataset is not None and dataset.ingestion.keeps_snapshots
        )
        if not by_day:
            continue
        independent, key = read_delta(path), partition_key(path)
        for day in DAYS:
            expected = rows_of(independent, key, day)
            if expected.num_rows == 0:  # a day that left no rows has no partition
                with pytest.raises(LakeError, match=f"no {layer} partition {key}={day}"):
                    pipelines.read(table, layer, as_of=day)
                continue
            assert_same(pipelines.read(table, layer, as_of=day), expected, key, f"{name} {day}")
            compared += 1
    assert compared >= 3 * 4 + 2 * 2


def test_every_version_reads_the_same_independently_and_through_the_table(lake, project):
    """Time travel: each Delta version of each table, through the table's read (what
    ``pipelines.read`` reads the newest version with) and through the independent reader."""
    lake_ = project.lake(NAMESPACE)
    compared = 0
    for name, path in sorted(delta_tables(lake).items()):
        if name == RUNS:
            continue
        layer, table = name.split("/")
        tab, key = lake_.table(layer, table, project), partition_key(path)
        for v in range(version(path) + 1):
            snap = tab.snapshot(v)
            independent = read_delta(path, v)
            frame = snap.as_stored(tab.read(None, snap))
            assert_same(frame, independent, key, f"{name} version {v}")
            compared += 1
    assert compared >= 17 * len(DAYS)


def test_the_runs_table_records_each_run_of_each_table_and_day(lake, project):
    records = assert_runs_read_the_same(lake)
    tables = expected_tables(project) - {RUNS}
    recorded = Counter(zip(records["table"].to_pylist(), records["ds"].to_pylist(), strict=True))
    for day in DAYS:
        for name in tables:
            assert recorded[(name, day)] >= 1, (name, day)
    assert {t for t, _ in recorded} == tables
    for row in records.to_pylist():  # each count is that of the version the record names
        assert isinstance(row["recorded_at"], dt.datetime) and row["recorded_at"].tzinfo
        layer, table = row["table"].split("/")
        metrics = json.loads(row["metrics"])
        at = read_delta(lake / row["table"], row["version"])
        if layer in ("raw", "quarantine", "workflows"):
            assert rows_of(at, "ds", row["ds"]).num_rows == metrics["rows"], row
        elif layer == "cleaned" and project.dataset(table).ingestion.keeps_snapshots:
            assert rows_of(at, "ds", row["ds"]).num_rows == metrics["cleaned"], row


def test_what_the_runs_table_says_each_table_holds_is_what_it_holds(lake, project):
    """Each table's partitions and their rows, as its records say them (what ``status``
    reads), are what the independent reader counts in its newest version."""
    from pipelines.lake.runs import RunLog
    from pipelines.lake.storage import Storage

    recorded = RunLog(Storage(str(lake.parent)), str(lake / RUNS)).all()
    for name, path in sorted(delta_tables(lake).items()):
        if name == RUNS:
            continue
        holds, rows, key = recorded[name].holdings, read_delta(path), partition_key(path)
        assert holds is not None and holds.version == version(path), name
        counted = Counter(rows[key].to_pylist())
        assert holds.rows == dict(sorted(counted.items())), name


def test_a_checkpoint_reads_the_same(lake, project):
    """delta-rs checkpoints a table every 100 commits, which these runs do not reach: one made
    now is where the independent reader starts, and both still read the same. (Last: it adds a
    checkpoint file, no version.)"""
    from deltalake import DeltaTable

    for name in ("cleaned/orders", "cleaned/customers", "cleaned/kunden", RUNS):
        before = version(lake / name)
        DeltaTable(str(lake / name)).create_checkpoint()
        assert snapshot(lake / name).checkpoint == before == version(lake / name)
        if name == RUNS:
            assert_runs_read_the_same(lake)
        else:
            assert_reads_the_same(name, lake / name, project)
