"""Every raw row is accounted for: the property over random deliveries.

Each case is one delivery of one day, made at random from a seed: columns of random kinds
(numbers with leading zeros and signs, decimals, booleans, dates, text, values that fit no
kind), keys that repeat, are null or meet once typed (``7`` and ``007``), incremental fields
that do not parse. It runs through the DuckDB path (CSV, Parquet), the pandas path (CSV forced
there), a full dataset and a declared one (columns.yaml: each column's type, the key an integer
in half the cases, a not_null test), each into its own dataset, and the merge must say, and the
lake must show, that

- raw = cleaned + quarantined, and superseded is a part of quarantined;
- every raw ``_row`` is in exactly one of the cleaned table (its rows of ``_ds`` = the day) and
  the day's quarantine partition;
- superseded = the rows quarantined as an earlier version of a key in the same delivery;
- the cleaned table's record of the run holds the same four counts, and the check stage finds
  nothing wrong with them.

Seeds, not hypothesis (not a dependency): the cases are the same on every run, and a failure
names its seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pipelines
from pipelines.cli import main
from pipelines.exceptions import QualityCheckFailed
from pipelines.project.config import Kind, load_project
from pipelines.steps import check, typed_extract
from pipelines.steps import merge as merging
from pipelines.steps import typed_merge as engine
from pipelines.steps.dataset import run_steps
from tests import sample_database
from tests.conftest import write_registry

DAY = "2024-01-01"
CASES = 24  # per mode
MODES = ("csv", "csv-pandas", "parquet", "full", "declared")
DECLARED = {  # a generated column's kind -> the type a declaration gives it (bad: integer)
    "int": "integer",
    "zeros": "text",
    "decimal": "float",
    "bool": "boolean",
    "date": "date",
    "text": "text",
    "bad": "integer",
}
HEADER = "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date"
SUPERSEDED = "duplicate key in this delivery: superseded by a later version"
KEYS = ["1", "2", "3", "7", "007", "0042", "42", "+3", "a", "b7", " 2 ", "", None]
VALUES = {  # a column's kind -> the text a delivery gives for it (None: null)
    "int": ["1", "-4", "70", "0", "12345678901", None],
    "zeros": ["007", "7", "0042", "02134", "2134", None],
    "decimal": ["1.5", "2", "-0.25", "1e3", "3.14159", None],
    "bool": ["true", "False", "TRUE", "false", None],
    "date": ["2024-01-01", "2023-12-31", "2024-02-29", None],
    "text": ["x", "hello world", "Müller", "a,b", "  padded ", None],
    "bad": ["1", "2.5", "n/a", "1,5", "02/12/2013", "true", None],
}


def stamp(rng: np.random.Generator) -> str | None:
    """An incremental field on the day, in one of the forms that parse, or one that does not."""
    if rng.random() < 0.15:
        return [None, "", "soon", "02/12/2013", "2024-13-01"][int(rng.integers(5))]
    at = pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(minutes=int(rng.integers(0, 24 * 60)))
    if rng.random() < 0.3:
        return (at + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def delivery(seed: int) -> pd.DataFrame:
    """A random delivery as text: ``id``, ``ts`` and up to four columns of random kinds."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([0, 1, 2, 5, 12, 30]))
    keys = KEYS[: int(rng.integers(3, len(KEYS) + 1))]  # few keys: many duplicates
    frame = pd.DataFrame(
        {
            "id": [keys[int(rng.integers(len(keys)))] for _ in range(n)],
            "ts": [stamp(rng) for _ in range(n)],
        },
        dtype="string",
    )
    frame.attrs["kinds"] = {}
    for at in range(int(rng.integers(0, 5))):
        kind = str(rng.choice(list(VALUES)))
        values = VALUES[kind]
        frame[f"c{at}"] = pd.array(
            [values[int(rng.integers(len(values)))] for _ in range(n)], dtype="string"
        )
        frame.attrs["kinds"][f"c{at}"] = kind
    return frame


def declaration(name: str, seed: int) -> str:
    """The case's columns.yaml entry: its columns' types (the key an integer in odd cases:
    ``7`` and ``007`` are one key then), a not_null test on the first column."""
    frame = delivery(seed)
    columns = {"id": "{type: integer}" if seed % 2 else "{type: text}"}
    for at, (col, kind) in enumerate(frame.attrs["kinds"].items()):
        tests = ", tests: [not_null]" if at == 0 else ""
        columns[col] = f"{{type: {DECLARED[kind]}{tests}}}"
    lines = [f"{name}:", "  columns:", *(f"    {c}: {t}" for c, t in columns.items())]
    return "\n".join(lines) + "\n"


def as_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """The delivery as a Parquet source types it: keys as text (null when blank), the stamp a
    timestamp (null where it does not parse), dates as timestamps, the other columns as pandas
    reads their text."""
    out = pd.DataFrame({"id": frame["id"].str.strip().replace("", None)})
    out["ts"] = pd.to_datetime(frame["ts"], utc=True, errors="coerce", format="ISO8601")
    for col in frame.columns[2:]:
        if frame.attrs["kinds"][col] == "date":  # a timestamp column with nulls
            out[col] = pd.to_datetime(frame[col], utc=True, errors="coerce")
            continue
        numbers = pd.to_numeric(frame[col], errors="coerce")
        out[col] = numbers if numbers.notna().sum() == frame[col].notna().sum() else frame[col]
    return out


def write(home, mode: str, seed: int) -> str:
    """The case's delivery, in its dataset's source; the dataset's name."""
    name = f"{mode.replace('-', '_')}_{seed}"
    frame = delivery(seed)
    src = home / "include" / "src"
    src.mkdir(exist_ok=True)
    if mode == "parquet":
        as_parquet(frame).to_parquet(src / f"{name}_{DAY}.parquet", index=False)
    else:
        frame.to_csv(src / f"{name}_{DAY}.csv", index=False)
    return name


def registry(home) -> None:
    lines = [HEADER]
    for mode in MODES:
        fmt = "parquet" if mode == "parquet" else "csv"
        kind = "full" if mode == "full" else "incremental"
        for seed in range(CASES):
            name = f"{mode.replace('-', '_')}_{seed}"
            lines.append(f"{name},src/{name}_{{ds}}.{fmt},{fmt},id,ts,ts,{kind},{DAY}")
    write_registry(home, "\n".join(lines) + "\n")
    declared = [declaration(f"declared_{seed}", seed) for seed in range(CASES)]
    (home / "include" / "columns.yaml").write_text("".join(declared))


def assert_accounted(name: str, merged) -> None:
    """The identity, the rows in the lake, the superseded rows and the record of the run."""
    counts = (merged.raw_rows, merged.delivered, merged.quarantined, merged.superseded)
    assert merged.raw_rows == merged.delivered + merged.quarantined, counts
    assert 0 <= merged.superseded <= merged.quarantined, counts
    raw = pipelines.read(name, "raw", as_of=DAY) if merged.raw_rows else pd.DataFrame({"_row": []})
    assert len(raw) == merged.raw_rows and raw["_row"].is_unique
    cleaned = pipelines.read(name) if merged.delivered else pd.DataFrame({"_row": [], "_ds": []})
    cleaned = cleaned[cleaned["_ds"] == DAY]
    quarantine = pipelines.read(name, "quarantine") if merged.quarantined else None
    quarantined = quarantine["_row"].tolist() if quarantine is not None else []
    seen = sorted([*cleaned["_row"].tolist(), *quarantined])
    assert seen == sorted(raw["_row"].tolist()), counts  # each raw row once, none invented
    assert len(cleaned) == merged.delivered and len(quarantined) == merged.quarantined
    reasons = quarantine["_reason"] if quarantine is not None else pd.Series([], dtype=str)
    assert int(reasons.eq(SUPERSEDED).sum()) == merged.superseded
    project = load_project(strict=False)
    dataset = project.require(name, Kind.DATASET).spec
    recorded = project.lake().cleaned(dataset).snapshot().run_metrics(DAY)
    assert [recorded.get(k) for k in ("raw", "cleaned", "quarantined", "superseded")] == list(
        counts
    )
    assert check.accounting_faults(merged) == []


@pytest.mark.parametrize("mode", MODES)
def test_every_raw_row_is_cleaned_or_quarantined_once(home, monkeypatch, mode):
    registry(home)
    names = [write(home, mode, seed) for seed in range(CASES)]
    paths = []
    real = engine.merge

    def spy(*args, **kwargs):
        merged = real(*args, **kwargs)
        paths.append("pandas" if merged is None else "duckdb")
        return merged

    monkeypatch.setattr(engine, "merge", spy)
    if mode == "csv-pandas":
        monkeypatch.setattr(engine, "plan", lambda *args: None)
        monkeypatch.setattr(typed_extract, "source_of", lambda *args: None)
    for seed, name in enumerate(names):
        merged = run_steps(name, DAY, steps=("extract", "merge"))["merge"]
        try:
            assert_accounted(name, merged)
        except AssertionError as exc:
            raise AssertionError(f"{mode} seed {seed}: {exc}") from exc
    if mode == "declared":  # the declarations were read (a bad one would be skipped)
        assert all(load_project(strict=False).dataset(n).declared for n in names)
    if mode in ("csv", "parquet"):  # the property held where DuckDB merged, too
        assert paths.count("duckdb") >= CASES // 4, paths
    else:
        assert "duckdb" not in paths


def test_the_cases_hold_what_the_property_is_about(home):
    """The random deliveries do hold duplicate, null and colliding keys, unparseable stamps,
    empty deliveries and bad values (else the property would hold vacuously)."""
    frames = [delivery(seed) for seed in range(CASES)]
    rows = pd.concat(frames, ignore_index=True)
    keys = rows["id"].dropna()
    assert any(f.empty for f in frames) and any(f["id"].duplicated().any() for f in frames)
    assert rows["id"].isna().any() and (keys == "").any()
    assert {"7", "007"} <= set(keys) and {"42", "0042"} <= set(keys)
    assert rows["ts"].isin(["soon", "02/12/2013"]).any() and rows["ts"].isna().any()
    values = set(pd.concat([f[c] for f in frames for c in f.columns[2:]]).dropna())
    assert {"n/a", "1,5", "007"} <= values


def test_a_merge_that_lost_a_row_would_be_caught(home, monkeypatch):
    """The property fails on a merge that drops a row (so it can fail at all)."""
    registry(home)
    name = write(home, "csv-pandas", 3)
    monkeypatch.setattr(engine, "plan", lambda *args: None)
    monkeypatch.setattr(typed_extract, "source_of", lambda *args: None)
    prepare = merging.prepare

    def lossy(dataset, raw, interval, *stored):  # stored: the cleaned table's kinds
        winners, quarantined, superseded = prepare(dataset, raw, interval, *stored)
        return winners.iloc[1:], quarantined, superseded  # one winner vanishes

    monkeypatch.setattr(merging, "prepare", lossy)
    merged = run_steps(name, DAY, steps=("extract", "merge"))["merge"]
    assert merged.raw_rows > merged.delivered + merged.quarantined
    with pytest.raises(AssertionError):
        assert_accounted(name, merged)
    assert check.accounting_faults(merged) == [
        f"raw rows {merged.raw_rows} != cleaned {merged.delivered} "
        f"+ quarantined {merged.quarantined}"
    ]


VENDOR = "id,ts,amount\n1,02/12/2013,5\n2,02/13/2013,6\n3,02/14/2013,7\n"


def vendor(home, options: str = "") -> None:
    write_registry(home, f"{HEADER},max_quarantine_pct\nv,v_{{ds}}.csv,csv,id,ts,ts,"
                   f"incremental,{DAY},{options}\n")  # fmt: skip
    (home / "include" / f"v_{DAY}.csv").write_text(VENDOR)


def test_a_delivery_quarantined_whole_fails_its_check_and_has_not_landed(home):
    vendor(home)
    with pytest.raises(QualityCheckFailed) as failed:
        run_steps("v", DAY, steps=("extract", "merge", "check_keys"))
    assert str(failed.value) == (
        f"v ds={DAY}: every one of the 3 raw rows was quarantined "
        "(first reason: ts: missing or not an ISO 8601 timestamp)"
    )
    project = load_project(strict=False)
    snap = project.lake().cleaned(project.require("v", Kind.DATASET).spec).snapshot()
    assert not snap.has_landed(DAY)
    assert snap.run_metrics(DAY)["checks"] == f"failed: {str(failed.value).split(': ', 1)[1]}"
    assert len(pipelines.read("v", "quarantine")) == 3  # the rows are there, with the reason


@pytest.mark.parametrize("options", ["100", ""])
def test_max_quarantine_pct_100_allows_it_and_an_empty_delivery_passes(home, options):
    vendor(home, options)
    if not options:  # no row at all is not "every row quarantined"
        (home / "include" / f"v_{DAY}.csv").write_text("id,ts,amount\n")
    out = run_steps("v", DAY, steps=("extract", "merge", "check_keys"))
    assert out["check_keys"]["checks"] == "passed"
    assert (out["merge"].raw_rows, out["merge"].quarantined) == ((3, 3) if options else (0, 0))


def test_a_one_row_delivery_quarantined_fails_too(home):
    vendor(home)
    (home / "include" / f"v_{DAY}.csv").write_text("id,ts\n,2024-01-01T00:00:00Z\n")
    with pytest.raises(QualityCheckFailed, match=r"every one of the 1 raw rows was quarantined "
                       r"\(first reason: id: primary key is null\)$"):  # fmt: skip
        run_steps("v", DAY, steps=("extract", "merge", "check_keys"))


@pytest.mark.parametrize("duckdb", [True, False])
def test_a_single_source_s_interval_holding_only_its_strays_is_not_quarantined_whole(
    home, monkeypatch, duckdb
):
    """A single incremental source gives every interval its rows whose field does not parse:
    a day with only those, of a source whose other rows are other days', passes; a source
    none of whose rows parse fails every day."""
    write_registry(home, f"{HEADER}\ns,s.csv,csv,id,ts,ts,incremental,{DAY}\n")
    source = home / "include" / "s.csv"
    source.write_text("id,ts\n1,2024-01-01T05:00:00Z\n2,soon\n3,2024-01-03T05:00:00Z\n")
    if not duckdb:
        monkeypatch.setattr(typed_extract, "source_of", lambda *args: None)
    out = run_steps("s", "2024-01-02", steps=("extract", "merge", "check_keys"))
    assert (out["merge"].raw_rows, out["merge"].quarantined) == (1, 1)
    assert out["check_keys"]["checks"] == "passed"
    project = load_project(strict=False)
    assert project.lake().raw("s").outline().run_metrics("2024-01-02")["elsewhere"] == 2
    source.write_text("id,ts\n1,01/01/2024\n2,soon\n")
    with pytest.raises(QualityCheckFailed, match="every one of the 2 raw rows was quarantined"):
        run_steps("s", "2024-01-02", steps=("extract", "merge", "check_keys"))


@pytest.mark.parametrize("options", ["", "100"])
def test_validate_sources_notices_a_source_whose_first_rows_would_all_be_quarantined(
    home, capsys, options
):
    vendor(home, options)
    assert main(["validate", "--sources"]) == (0 if options else 1)
    out = capsys.readouterr().out.splitlines()
    assert out == (
        []
        if options
        else [
            f"registry.csv:2: source: v: every one of the first 3 rows of v_{DAY}.csv would be "
            "quarantined (first reason: ts: missing or not an ISO 8601 timestamp); a run fails "
            "its check unless max_quarantine_pct=100"
        ]
    )


def test_validate_sources_of_the_sample_project_finds_nothing(home, capsys, monkeypatch):
    monkeypatch.setenv(sample_database.CONN_ENV, sample_database.seeded())  # payments' database
    assert main(["validate", "--sources"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "valid; 0 problems" in captured.err


def test_validate_sources_reads_a_parquet_source_s_first_rows_too(home, capsys):
    write_registry(home, f"{HEADER}\np,p_{{ds}}.parquet,parquet,id,ts,ts,incremental,{DAY}\n")
    stamps = pd.Series([None, None], dtype="datetime64[us, UTC]")
    pd.DataFrame({"id": ["1", "2"], "ts": stamps}).to_parquet(home / "include" / f"p_{DAY}.parquet")
    assert main(["validate", "--sources"]) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"registry.csv:2: source: p: every one of the first 2 rows of p_{DAY}")


def test_the_run_line_of_a_delivery_quarantined_whole(home, airflow_db, capsys):
    vendor(home)
    assert main(["run", "v", "--date", DAY]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("FAIL ")]
    assert line.startswith(f"FAIL local__v {DAY} (")
    assert line.endswith(
        "s): raw 3, cleaned 0, quarantined 3 (100%, 0 superseded); check.check_keys failed: "
        f"v ds={DAY}: every one of the 3 raw rows was quarantined (first reason: ts: missing "
        "or not an ISO 8601 timestamp)"
    )
