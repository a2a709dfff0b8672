"""Issue 24's cases 1 and 2 through the real steps (extract, merge) of a CSV dataset, merged in
DuckDB and by the pandas path, which give the same tables: nothing guessed loses a value, a key
is compared as the text delivered (a timestamp key as an instant), and two raw rows that meet on
a key are a superseded row, never a silent loss. A lake whose key was typed as an int before
keeps it."""

from __future__ import annotations

import pandas as pd
import pytest

import pipelines
from pipelines.common import inference
from pipelines.exceptions import SchemaDriftError
from pipelines.steps import typed_extract
from pipelines.steps import typed_merge as engine
from pipelines.steps.dataset import run_steps
from tests.conftest import write_registry

HEADER = "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date"
DUCKDB, PANDAS = "duckdb", "pandas"
SUPERSEDED = "duplicate key in this delivery: superseded by a later version"


def deliver(home, name: str, day: str, text: str) -> None:
    (home / "include" / "src").mkdir(exist_ok=True)
    (home / "include" / "src" / f"{name}_{day}.csv").write_text(text)


def run(home, monkeypatch, name: str, days: list[str], path: str, lake: str = "") -> dict:
    """Run extract and merge of ``days`` into the lake ``lake-{path}`` (or ``lake``), merged by
    ``path`` (DuckDB: asserted to have merged every day); the tables and each day's counts."""
    monkeypatch.setenv("PIPELINES_LAKE", str(home / (lake or f"lake-{path}")))
    merged = []
    real = engine.merge

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        merged.append(result is not None)
        return result

    with monkeypatch.context() as patched:
        patched.setattr(engine, "merge", spy)
        if path == PANDAS:
            patched.setattr(engine, "plan", lambda *args: None)
            patched.setattr(typed_extract, "source_of", lambda *args: None)
        results = {d: run_steps(name, d, steps=("extract", "merge"))["merge"] for d in days}
    if path == DUCKDB:
        assert merged == [True] * len(days)
    quarantine = pipelines.read(name, "quarantine")
    return {
        "cleaned": pipelines.read(name).sort_values(["_ds", "_row"], ignore_index=True),
        "quarantine": quarantine.sort_values(["ds", "_row"], ignore_index=True),
        "counts": {
            d: (r.raw_rows, r.delivered, r.quarantined, r.superseded) for d, r in results.items()
        },
    }


def both(home, monkeypatch, name: str, days: list[str]) -> dict:
    """The DuckDB run, asserted equal to the pandas run."""
    reference = run(home, monkeypatch, name, days, PANDAS)
    duck = run(home, monkeypatch, name, days, DUCKDB)
    pd.testing.assert_frame_equal(duck["cleaned"], reference["cleaned"])
    # the quarantine's _ds and _reason: in the order and string dtypes of the first kind of row
    # the pandas path quarantined (lakes written before hold both), always one in DuckDB
    pd.testing.assert_frame_equal(
        duck["quarantine"], reference["quarantine"], check_like=True, check_dtype=False
    )
    assert duck["counts"] == reference["counts"]
    return duck


def test_case_1_leading_zeros_are_kept_and_no_row_vanishes(home, monkeypatch):
    """``007``, ``7`` and ``0042`` are three keys (the cleaned table held two: ``007`` and ``7``
    became one int and the upsert collapsed them), and zip codes keep their zeros."""
    write_registry(
        home, f"{HEADER}\npeople,src/people_{{ds}}.csv,csv,id,ts,ts,incremental,2024-03-01\n"
    )
    deliver(
        home,
        "people",
        "2024-03-01",
        "id,zip,ts\n"
        "007,02134,2024-03-01T08:00:00Z\n"
        "7,2134,2024-03-01T09:00:00Z\n"
        "0042,00501,2024-03-01T10:00:00Z\n",
    )
    duck = both(home, monkeypatch, "people", ["2024-03-01"])
    cleaned = duck["cleaned"]
    assert duck["counts"] == {"2024-03-01": (3, 3, 0, 0)}
    assert len(cleaned) == 3
    assert cleaned["id"].tolist() == ["007", "7", "0042"]
    assert cleaned["zip"].tolist() == ["02134", "2134", "00501"]
    assert str(cleaned["id"].dtype) == str(cleaned["zip"].dtype) == "string"
    assert duck["quarantine"].empty


def test_case_1_in_a_full_snapshot(home, monkeypatch):
    """The same delivery as a full snapshot (merged by the pandas path only)."""
    write_registry(home, f"{HEADER}\npeople,src/people_{{ds}}.csv,csv,id,,,full,2024-03-01\n")
    deliver(home, "people", "2024-03-01", "id,zip\n007,02134\n7,2134\n0042,00501\n")
    result = run_steps("people", "2024-03-01", steps=("extract", "merge"))["merge"]
    assert (result.raw_rows, result.delivered, result.quarantined) == (3, 3, 0)
    cleaned = pipelines.read("people")
    assert sorted(zip(cleaned["id"], cleaned["zip"], strict=True)) == [
        ("0042", "00501"),
        ("007", "02134"),
        ("7", "2134"),
    ]


def hours(first: int, last: int, offset: int) -> list[str]:
    """The hours ``first`` .. ``last`` of 2024-03-01 UTC, written at UTC offset ``offset``."""
    stamps = pd.date_range("2024-03-01", periods=48, freq="h", tz="UTC")[first : last + 1]
    if offset == 0:
        return [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in stamps]
    return [(t + pd.Timedelta(hours=offset)).strftime(f"%Y-%m-%dT%H:%M:%S+{offset:02d}:00")
            for t in stamps]  # fmt: skip


def test_case_2_a_timestamp_key_is_one_instant_whatever_its_offset(home, monkeypatch):
    """An hourly series keyed by its hour (neither the incremental nor the partition field):
    re-delivered with another offset, the same hours are the same keys (the issue saw 73 rows
    for 71 instants), across deliveries and within one."""
    write_registry(
        home,
        f"{HEADER}\nreadings,src/readings_{{ds}}.csv,csv,hour,received,received,incremental,"
        "2024-03-01\n",
    )
    first = hours(0, 23, 2)  # +02:00
    deliver(
        home,
        "readings",
        "2024-03-01",
        "hour,value,received\n"
        + "".join(f"{h},{i},2024-03-01T23:00:00Z\n" for i, h in enumerate(first)),
    )
    # the next day: hours 20..30 again in UTC, and hour 30 twice (as Z, then as +02:00)
    again = hours(20, 30, 0) + hours(30, 30, 2)
    deliver(
        home,
        "readings",
        "2024-03-02",
        "hour,value,received\n"
        + "".join(f"{h},{100 + i},2024-03-02T12:00:00Z\n" for i, h in enumerate(again)),
    )
    duck = both(home, monkeypatch, "readings", ["2024-03-01", "2024-03-02"])
    cleaned = duck["cleaned"]
    assert duck["counts"] == {"2024-03-01": (24, 24, 0, 0), "2024-03-02": (12, 11, 1, 1)}
    assert len(cleaned) == 31  # hours 0 .. 30, once each
    assert str(cleaned["hour"].dtype) == "datetime64[us, UTC]"
    instants = pd.date_range("2024-03-01", periods=31, freq="h", tz="UTC")
    assert sorted(cleaned["hour"]) == list(instants)
    by_hour = dict(zip(cleaned["hour"], cleaned["value"], strict=True))
    assert by_hour[instants[19]] == 19  # delivered once
    assert by_hour[instants[20]] == 100  # re-delivered: the later delivery wins
    assert by_hour[instants[30]] == 111  # twice in one delivery: the later row wins
    assert duck["quarantine"][["hour", "_reason"]].values.tolist() == [
        ["2024-03-02T06:00:00Z", SUPERSEDED]  # as delivered
    ]


REGISTRY = f"{HEADER}\nitems,src/items_{{ds}}.csv,csv,id,ts,ts,incremental,2024-03-01\n"


def as_before_issue_24(monkeypatch) -> None:
    """Keys guessed as ints, as they were: the first day writes a table with an int key."""
    monkeypatch.setattr(inference, "key_kind", lambda values, stored=None: "int")


@pytest.mark.parametrize("path", [DUCKDB, PANDAS])
def test_a_table_with_an_int_key_keeps_it(home, monkeypatch, path):
    write_registry(home, REGISTRY)
    deliver(
        home, "items", "2024-03-01", "id,v,ts\n7,a,2024-03-01T08:00:00Z\n8,b,2024-03-01T08:00:00Z\n"
    )
    deliver(
        home,
        "items",
        "2024-03-02",
        "id,v,ts\n7,c,2024-03-02T08:00:00Z\n 9 ,d,2024-03-02T08:00:00Z\n9,e,2024-03-02T09:00:00Z\n",
    )
    with monkeypatch.context() as before:
        as_before_issue_24(before)
        run(home, monkeypatch, "items", ["2024-03-01"], PANDAS, lake="lake")
    after = run(home, monkeypatch, "items", ["2024-03-02"], path, lake="lake")
    cleaned = after["cleaned"].sort_values("id", ignore_index=True)
    assert str(cleaned["id"].dtype) == "Int64"
    assert list(zip(cleaned["id"], cleaned["v"], strict=True)) == [(7, "c"), (8, "b"), (9, "e")]
    assert after["counts"] == {"2024-03-02": (3, 2, 1, 1)}  # " 9 " and 9: one int key


def test_a_key_an_int_table_cannot_hold_stops_the_run(home, monkeypatch):
    write_registry(home, REGISTRY)
    deliver(home, "items", "2024-03-01", "id,v,ts\n7,a,2024-03-01T08:00:00Z\n")
    deliver(home, "items", "2024-03-02", "id,v,ts\n007,b,2024-03-02T08:00:00Z\n")
    with monkeypatch.context() as before:
        as_before_issue_24(before)
        run(home, monkeypatch, "items", ["2024-03-01"], PANDAS)
    with pytest.raises(SchemaDriftError, match="column 'id' changed type from int to string"):
        run_steps("items", "2024-03-02", steps=("extract", "merge"))
    assert pipelines.read("items")["id"].tolist() == [7]
