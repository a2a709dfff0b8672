"""A typed delivery (a Parquet source) is extracted and merged in DuckDB (steps/typed_extract.py,
steps/typed_merge.py); the result is the pandas path's, row for row, in any order the days run,
and a key whose partition date changed still moves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pipelines
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project
from pipelines.steps import typed_extract
from pipelines.steps import typed_merge as engine
from pipelines.steps.dataset import run_steps
from tests.conftest import write_registry

REGISTRY = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date\n"
    "items,src/items_{ds}.parquet,parquet,id,ts,day,incremental,2024-01-01\n"
)
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


def deliveries(home) -> None:
    """Four days of 300 rows over 120 keys: duplicate keys within a delivery, ties on ts, keys
    whose ``day`` changes between deliveries, a few null ts (quarantined)."""
    rng = np.random.default_rng(7)
    (home / "include" / "src").mkdir(exist_ok=True)
    for d in DAYS:
        n = 300
        ids = rng.integers(0, 120, n)
        ts = pd.Timestamp(d, tz="UTC") + pd.to_timedelta(rng.integers(0, 6, n), unit="h")
        day = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 4, n), "D")
        frame = pd.DataFrame(
            {
                "id": ids,
                "ts": ts.where(rng.random(n) > 0.03),
                "day": day,
                "v": rng.random(n).round(3),
                "label": [f"x{k % 7}" for k in ids],
            }
        )
        frame.to_parquet(home / "include" / "src" / f"items_{d}.parquet")


def run_all(home, monkeypatch, lake: str, order: list[str], typed: bool) -> dict:
    monkeypatch.setenv("PIPELINES_LAKE", str(home / lake))
    calls = []
    real = engine.merge

    def spy(*args, **kwargs):
        calls.append(args[1].ds)
        return real(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(engine, "merge", spy)
        if not typed:
            patched.setattr(engine, "plan", lambda *args: None)
            patched.setattr(typed_extract, "source_of", lambda *args: None)
        results = {d: run_steps("items", d, steps=("extract", "merge"))["merge"] for d in order}
    assert calls == (order if typed else [])  # the path under test really ran
    lake, dataset = Lake.from_env(), load_project().dataset("items")
    for table in (lake.raw("items"), lake.cleaned(dataset), lake.quarantine("items")):
        log, name = table.runs  # what status reads of the table: recorded by this path too
        assert log.of(name).holdings == table.snapshot().holdings, name
    return {
        "cleaned": by_key(pipelines.read("items")),
        "quarantine": by_key(pipelines.read("items", "quarantine"), ["ds", "_row"]),
        "counts": {
            d: (r.raw_rows, r.delivered, r.quarantined, r.superseded) for d, r in results.items()
        },
    }


def by_key(frame: pd.DataFrame, key=("id",)) -> pd.DataFrame:
    return frame.sort_values(list(key), kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("order", [DAYS, DAYS[::-1], [DAYS[2], DAYS[0], DAYS[3], DAYS[1]]])
def test_the_duckdb_merge_equals_the_pandas_merge_in_any_order(home, monkeypatch, order):
    write_registry(home, REGISTRY)
    deliveries(home)
    reference = run_all(home, monkeypatch, "lake-pandas", DAYS, typed=False)
    typed = run_all(home, monkeypatch, "lake-typed", order, typed=True)
    pd.testing.assert_frame_equal(typed["cleaned"], reference["cleaned"])
    pd.testing.assert_frame_equal(typed["quarantine"], reference["quarantine"])
    assert typed["counts"] == reference["counts"]
    reasons = set(reference["quarantine"]["_reason"])
    assert reasons == {
        "duplicate key in this delivery: superseded by a later version",
        "ts: missing or not an ISO 8601 timestamp",
    }
    moved = reference["cleaned"].set_index("id")["dt"]
    assert moved.nunique() == 4  # keys landed in every day's partition, some after moving


def test_duckdb_and_the_delta_merge_share_one_memory_budget(home, monkeypatch):
    """While delta-rs merges the stream, DuckDB still holds its tables: the two are given halves
    of PIPELINES_MEMORY_LIMIT, not each the whole."""
    from pipelines.lake import delta

    write_registry(home, REGISTRY)
    deliveries(home)
    monkeypatch.setenv("PIPELINES_LAKE", str(home / "lake"))
    monkeypatch.setenv("PIPELINES_MEMORY_LIMIT", "512MiB")
    given: dict[str, list[int]] = {"duckdb": [], "delta": []}
    real_connect, real_merge = engine.connect, delta.merge

    def connect(limit=None):
        given["duckdb"].append(limit)
        return real_connect(limit)

    def merge(*args, memory, **kwargs):
        given["delta"].append(memory)
        return real_merge(*args, memory=memory, **kwargs)

    monkeypatch.setattr(engine, "connect", connect)
    monkeypatch.setattr(delta, "merge", merge)
    for d in DAYS[:2]:  # the first creates the table, the second merges into it
        run_steps("items", d, steps=("extract", "merge"))
    assert given["duckdb"] == [256 * 2**20] * 2
    assert given["delta"] == [256 * 2**20]


def test_a_large_typed_delivery_lands_in_raw_in_file_order(home, monkeypatch):
    """The extract streams the source without a sort (a sort held the whole delivery) into
    several files; every row lands once with its position, and a read gives the delivery's
    order, as the pandas path did."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_registry(home, REGISTRY)
    monkeypatch.setenv("PIPELINES_LAKE", str(home / "lake"))
    (home / "include" / "src").mkdir(exist_ok=True)
    n = 400_000
    rng = np.random.default_rng(3)
    ts = pd.Timestamp(DAYS[0], tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    frame = pd.DataFrame({"id": rng.permutation(n), "ts": ts, "day": ts, "v": rng.random(n)})
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False),
        home / "include" / "src" / f"items_{DAYS[0]}.parquet",
        row_group_size=4_000,
    )
    run_steps("items", DAYS[0], steps=("extract",))
    raw = pipelines.read("items", "raw", as_of=DAYS[0])
    assert raw["_row"].tolist() == list(range(n))
    assert raw["id"].tolist() == frame["id"].tolist()
