"""A text delivery (CSV) is typed, deduplicated and merged in DuckDB (steps/text_merge.py,
steps/typed_merge.py): the cleaned table, the quarantine and the counts are the pandas path's, row
for row, in any order the days run. The values stress the pandas rules: spaces around numbers,
``1e3``, 17-digit numbers, text a number would lose (``007``, ``+3``, ``-.5``), ``True``, empty
fields, epoch seconds, ``+02:00`` offsets, ``Z``, date-only fields, unparseable stamps and blank
keys (quarantined with their reasons); keys stay text. A delivery only pandas can type goes to the
pandas path, and the result is the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pipelines
from pipelines.steps import typed_extract
from pipelines.steps import typed_merge as engine
from pipelines.steps.dataset import run_steps
from tests.conftest import write_registry

REGISTRY = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date,"
    "options\nitems,src/items_{ds}.csv,csv,id,ts,day,incremental,2024-01-01,{options}\n"
)
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
DUCKDB, PANDAS = "duckdb", "pandas"


def stamp(rng, day: str, hour: int) -> str:
    """``day`` at ``hour`` UTC in one of the forms the pandas path reads, or no stamp at all."""
    at = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=hour, minutes=int(rng.integers(60)))
    form = rng.integers(8)
    if rng.random() < 0.04:
        return ["soon", "", " ", "2024-13-01"][form % 4]
    if form == 0:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 1:
        return (at + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    if form == 2:
        return str(int(at.timestamp()))  # epoch seconds
    if form == 3:
        return f"{at.timestamp():.1f}"
    if form == 4:
        return f" {at.strftime('%Y-%m-%d %H:%M:%S')} "  # naive: UTC
    if form == 5:
        return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    return at.isoformat()


def rows(rng, day: str, n: int = 300) -> list[list[str]]:
    """``n`` rows over 120 keys: duplicate keys, ties, keys whose ``day`` moves, blank keys."""
    out = []
    for _ in range(n):
        key = int(rng.integers(0, 120))
        moved = (pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(4)))).date()
        out.append(
            [
                "" if rng.random() < 0.02 else (" " if rng.random() < 0.01 else str(key)),
                stamp(rng, day, int(rng.integers(0, 6))),
                moved.isoformat(),
                ["7", " 7 ", "-3", "0", "12345678901234567", ""][int(rng.integers(6))],
                ["1e3", "2.5", " 7 ", "-0.5", "", "0.30000000000000004"][int(rng.integers(6))],
                ["True", " false ", "TRUE", "", "false"][int(rng.integers(5))],
                [f"x{key % 7}", " a ", "", "NA", "1,5"][int(rng.integers(5))],
                "",
                ["007", "+3", "-.5", "02134", "7", "", "inf", "-0"][int(rng.integers(8))],
            ]
        )
    return out


def deliveries(home, seed: int = 7, extra=None) -> None:
    rng = np.random.default_rng(seed)
    (home / "include" / "src").mkdir(exist_ok=True)
    header = ["id", "ts", "day", "n", "x", "flag", "label", "empty", "code"]
    for d in DAYS:
        frame = pd.DataFrame(rows(rng, d), columns=header)
        if extra is not None:
            extra(frame, d)
        frame.to_csv(home / "include" / "src" / f"items_{d}.csv", index=False)


def run_all(home, monkeypatch, lake: str, order: list[str], duckdb: bool) -> dict:
    monkeypatch.setenv("PIPELINES_LAKE", str(home / lake))
    paths = {}
    real = engine.merge

    def spy(*args, **kwargs):
        merged = real(*args, **kwargs)
        paths[args[1].ds] = PANDAS if merged is None else DUCKDB
        return merged

    with monkeypatch.context() as patched:
        patched.setattr(engine, "merge", spy)
        if not duckdb:
            patched.setattr(engine, "plan", lambda *args: None)
            patched.setattr(typed_extract, "source_of", lambda *args: None)
        results = {d: run_steps("items", d, steps=("extract", "merge"))["merge"] for d in order}
    return {
        "cleaned": by_key(pipelines.read("items")),
        "quarantine": by_key(pipelines.read("items", "quarantine"), ["ds", "_row"]),
        "counts": {
            d: (r.raw_rows, r.delivered, r.quarantined, r.superseded) for d, r in results.items()
        },
        "paths": [paths.get(d, PANDAS) for d in order],
    }


def by_key(frame: pd.DataFrame, key=("id",)) -> pd.DataFrame:
    return frame.sort_values(list(key), kind="stable").reset_index(drop=True)


def same(home, monkeypatch, order: list[str]) -> dict:
    """Assert the DuckDB run (in ``order``) equals the pandas run; the DuckDB run's outcome."""
    reference = run_all(home, monkeypatch, "lake-pandas", DAYS, duckdb=False)
    duck = run_all(home, monkeypatch, "lake-duckdb", order, duckdb=True)
    pd.testing.assert_frame_equal(duck["cleaned"], reference["cleaned"])
    pd.testing.assert_frame_equal(duck["quarantine"], reference["quarantine"])
    assert duck["counts"] == reference["counts"]
    return {**duck, "reference": reference}


@pytest.mark.parametrize("order", [DAYS, DAYS[::-1], [DAYS[2], DAYS[0], DAYS[3], DAYS[1]]])
def test_the_duckdb_merge_of_text_equals_the_pandas_merge_in_any_order(home, monkeypatch, order):
    write_registry(home, REGISTRY.replace("{options}", ""))
    deliveries(home)
    duck = same(home, monkeypatch, order)
    assert duck["paths"] == [DUCKDB] * 4
    cleaned = duck["cleaned"]
    columns = ("id", "ts", "day", "n", "x", "flag", "label", "code")
    kinds = {c: str(cleaned[c].dtype) for c in columns}
    assert kinds == {
        "id": "string",  # a key stays text (the keys were ints before issue 24)
        "ts": "datetime64[us, UTC]",
        "day": "datetime64[s]",  # delivered as dates: stays dates
        "n": "Int64",
        "x": "Float64",
        "flag": "boolean",
        "label": "string",
        "code": "string",  # 007, +3, -.5, 02134, inf: a number would lose them
    }
    assert set(cleaned["n"].dropna()) == {7, -3, 0, 12345678901234567}
    assert set(cleaned["x"].dropna()) == {1000.0, 2.5, 7.0, -0.5, 0.30000000000000004}
    assert set(cleaned["code"].dropna()) == {"007", "+3", "-.5", "02134", "7", "inf", "-0"}
    assert cleaned["empty"].isna().all()
    reasons = set(duck["reference"]["quarantine"]["_reason"])
    assert reasons == {
        "duplicate key in this delivery: superseded by a later version",
        "ts: missing or not an ISO 8601 timestamp",
        "id: primary key is null",
    }
    assert cleaned["dt"].nunique() == 4


def test_epoch_milliseconds(home, monkeypatch):
    write_registry(home, REGISTRY.replace("{options}", "epoch=ms"))

    def in_ms(frame, day):
        stamps = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(frame.index * 37, unit="s")
        frame["ts"] = [str(int(t.timestamp() * 1000)) for t in stamps]

    deliveries(home, extra=in_ms)
    assert same(home, monkeypatch, DAYS)["paths"] == [DUCKDB] * 4


def widen_on_the_third_day(frame, day):
    if day == DAYS[2]:
        frame["n"] = "1.5"  # int -> float: every partition is rewritten


def a_value_no_float_says(frame, day):
    # pandas reads it as a number, and the number is no float: the column is text in both paths
    frame.loc[frame.index % 20 == 0, "x"] = "inf"


def keys_equal_once_stripped(frame, day):
    frame.loc[0, "id"], frame.loc[1, "id"] = "7", " 7 "  # two texts, two keys


def times_on_the_second_day(frame, day):
    if day == DAYS[1]:  # dates widen to timestamps (on a row with a key of its own)
        frame.loc[0, ["id", "ts", "day"]] = ["t0", "2024-01-02T06:00:00Z", "2024-01-02T06:00:00Z"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (widen_on_the_third_day, [DUCKDB, DUCKDB, PANDAS, DUCKDB]),
        (times_on_the_second_day, [DUCKDB, PANDAS, DUCKDB, DUCKDB]),
        # pandas alone read these before issue 24 (inf as a number, keys typed as ints); the
        # lossless inference and text keys are DuckDB's too
        (a_value_no_float_says, [DUCKDB] * 4),
        (keys_equal_once_stripped, [DUCKDB] * 4),
    ],
)
def test_what_only_pandas_can_type_goes_to_the_pandas_path(home, monkeypatch, change, expected):
    write_registry(home, REGISTRY.replace("{options}", ""))
    deliveries(home, extra=change)
    duck = same(home, monkeypatch, DAYS)
    assert duck["paths"] == expected
    if change is a_value_no_float_says:
        assert str(duck["cleaned"]["x"].dtype) == "string"
        assert "inf" in set(duck["cleaned"]["x"])
    if change is keys_equal_once_stripped:
        assert {"7", " 7 "} <= set(duck["cleaned"]["id"])


def test_a_rerun_of_a_corrected_day_replaces_its_rows(home, monkeypatch):
    """A day delivered again with other values and the same stamps: its rows win their ties
    (same stamp, delivery and row), in DuckDB as in pandas."""
    write_registry(home, REGISTRY.replace("{options}", ""))
    deliveries(home)
    for lake, duckdb in (("lake-pandas", False), ("lake-duckdb", True)):
        run_all(home, monkeypatch, lake, DAYS, duckdb=duckdb)
    source = home / "include" / "src" / f"items_{DAYS[-1]}.csv"  # its rows win
    frame = pd.read_csv(source, dtype="string", keep_default_na=False)
    source.write_text(frame.assign(label="corrected").to_csv(index=False))
    reference = run_all(home, monkeypatch, "lake-pandas", DAYS[-1:], duckdb=False)
    duck = run_all(home, monkeypatch, "lake-duckdb", DAYS[-1:], duckdb=True)
    assert duck["paths"] == [DUCKDB]
    pd.testing.assert_frame_equal(duck["cleaned"], reference["cleaned"])
    pd.testing.assert_frame_equal(duck["quarantine"], reference["quarantine"])
    assert (reference["cleaned"]["label"] == "corrected").sum() > 50
