"""A local CSV delivery is extracted to raw in DuckDB (steps/csv_source.py, steps/typed_extract.py):
raw holds what the pandas path writes (the same text, nulls, rows, ``_row``, Delta types and field
metadata, run record), or the file is left to the pandas path; a file neither can read fails with
the same error. Each tricky file names the path that must have read it, so a change to what DuckDB
takes on is a test failure, not a silent switch."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

import pipelines
from pipelines.exceptions import SourceError
from pipelines.project.config import load_project
from pipelines.steps import typed_extract, typed_merge
from pipelines.steps.dataset import run_steps
from tests.conftest import write_registry

DS = "2024-01-01"
DUCKDB, PANDAS = "duckdb", "pandas"
HEADER = [
    "dataset",
    "source",
    "format",
    "primary_key",
    "incremental_field",
    "partition_field",
    "ingestion",
    "start_date",
    "options",
]
LATIN1 = bytes(range(0x20, 0x7F)).replace(b",", b"").replace(b'"', b"") + bytes(range(0xA0, 0x100))

# name: (file bytes, registry options, the path that reads it)
FILES = {
    "quotes": (b'a,b\n"x, y","he said ""hi"""\n2,3\n', "", DUCKDB),
    "quoted newlines": (b'a,b\n"line1\nline2",2\n3,"x\r\ny"\n', "", DUCKDB),
    "empty fields": (b'a,b\n,\n1,\n"",2\n,""\n', "", DUCKDB),
    "nulls and their numeric spellings": (
        b'a,b\nNA,1\n"NA",2\n NA,3\nna,4\n999.0,5\n999,6\n-999,7\n1E3,8\n1000.0,9\n',
        "null=NA,999,1e3",
        DUCKDB,
    ),
    "semicolons and latin-1": (
        "Kunde Nr.;Name;Umsatz (EUR)\n1;Müller;12,5\n2;NA;x\n".encode("latin-1")
        + b"3;"
        + LATIN1.replace(b";", b"")
        + b";1\n",
        "delimiter=;|encoding=latin-1|null=NA",
        DUCKDB,
    ),
    "latin-1 control bytes": (b"a,b\n\x80\x9f,1\n", "encoding=latin-1", PANDAS),
    "bom, utf-8-sig": (b"\xef\xbb\xbfa,b\n1,\xc3\xa9\n", "", DUCKDB),
    "bom, plain utf-8": (b"\xef\xbb\xbfa,b\n1,2\n", "encoding=utf-8", DUCKDB),
    "short rows padded": (b"a,b,c\n1,2\n3\n4,5,6\n", "", DUCKDB),
    "blank and whitespace lines": (b"a,b\n1,2\n\n   \n\t\n3,4\n \n5,6\n  ", "", DUCKDB),
    "crlf": (b"a,b\r\n1,2\r\n\r\n \t\r\n3,\r\n", "", DUCKDB),
    "cr": (b"a,b\r1,2\r\r3,4\r", "", DUCKDB),
    "spaces kept": (b"a,b\n 7 , x \n\t1,2\t\n", "", DUCKDB),
    "duplicate and empty header names": (b"a,a,,b\n1,2,3,4\n", "", DUCKDB),
    "names delta refuses": (b"Order ID,Total (EUR)\n1,2\n", "", DUCKDB),
    "single column": (b'a\n1\n\n   \n""\n2\n', "", DUCKDB),
    "tab delimiter": (b"a\tb\n1\t2\n \t \n  \n3\t4\n", "delimiter=tab", DUCKDB),
    "quote inside a field": (b'a,b\nab"c,2\nx""y,3\n', "", DUCKDB),
    "no newline at the end": (b"a,b\n1,2", "", DUCKDB),
    "tab delimiter, quoted": (b'a\tb\n"x\ty"\t"1 "\n" 2"\t3\n', "delimiter=tab", DUCKDB),
    "pipe delimiter": (b"a|b\n1|2,3\n", "delimiter=pipe", DUCKDB),
    # left to pandas: DuckDB would read these differently, or refuses them
    "a trailing delimiter on every row": (b"a,b\n1,2,\n3,4,\n", "", PANDAS),
    "space after a closing quote": (b'a,b\n"x" ,2\n', "", PANDAS),
    "space before an opening quote": (b'a,b\n1, "x"\n', "", PANDAS),
    "text after a closing quote": (b'a,b\n"x"y,2\n', "", PANDAS),
    "leading blank line": (b"\n\na,b\n1,2\n", "", PANDAS),
    "header only": (b"a,b\n", "", PANDAS),
    "blank file": (b" \n\n", "", PANDAS),
    "a column named _row": (b"a,_row\n1,2\n", "", PANDAS),
    "mixed line endings": (b"a,b\n1,2\r\n3,4\r5,6\n", "", PANDAS),
    "another encoding": ("a,b\n1,€\n".encode("cp1252"), "encoding=cp1252", PANDAS),
}
# neither reads these: the same SourceError either way
BROKEN = {
    "a longer row": (b"a,b\n1,2\n3,4,5\n", ""),
    "an unterminated quote": (b'a,b\n"x,2\n3,4\n', ""),
    "invalid utf-8": (b"a,b\n1,2\n\xff\xfe,3\n", ""),
}


def registry(home, source: str, options: str, extra: str = "") -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    if extra:  # a single incremental source
        writer.writerow(["t", source, "csv", "id", "ts", "ts", "incremental", DS, options])
    else:
        writer.writerow(["t", source, "csv", "a", "", "", "full", DS, options])
    write_registry(home, out.getvalue())


def extracted(home, monkeypatch, lake: str, days: list[str], duckdb: bool) -> dict:
    """Extract ``days`` into lake ``lake`` by one path: raw as read back, its Delta schema, and
    the run records; also which path extracted each day."""
    monkeypatch.setenv("PIPELINES_LAKE", str(home / lake))
    paths = []
    real = typed_extract.extract

    def spy(*args, **kwargs):
        done = real(*args, **kwargs)
        paths.append(PANDAS if done is None else DUCKDB)
        return done

    with monkeypatch.context() as patched:
        patched.setattr(typed_extract, "extract", spy)
        if not duckdb:
            patched.setattr(typed_extract, "source_of", lambda *args: None)
        for day in days:
            run_steps("t", day, steps=("extract",))
    snap = load_project(strict=False).lake().raw("t").snapshot()
    return {
        "raw": in_delivery_order(pipelines.read("t", "raw")),
        "schema": snap.schema,
        "runs": {d: snap.run_metrics(d) for d in days},
        "paths": paths or [PANDAS] * len(days),
    }


def in_delivery_order(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw rows by day and ``_row``: delta-rs stores a stream of batches interleaved (each batch
    whole, in order), so the order of a file's rows is not the delivery's; ``_row`` is."""
    return raw.sort_values(["ds", "_row"], kind="stable").reset_index(drop=True)


def same_raw(home, monkeypatch, days: list[str]) -> list[str]:
    """Assert both paths wrote the same raw table; the paths DuckDB's run took."""
    reference = extracted(home, monkeypatch, "lake-pandas", days, duckdb=False)
    duck = extracted(home, monkeypatch, "lake-duckdb", days, duckdb=True)
    pd.testing.assert_frame_equal(duck["raw"], reference["raw"])
    assert duck["schema"] == reference["schema"]
    assert duck["schema"].metadata == reference["schema"].metadata
    for mine, theirs in zip(duck["schema"], reference["schema"], strict=True):
        assert mine.metadata == theirs.metadata, mine.name
    assert duck["runs"] == reference["runs"]
    return duck["paths"]


@pytest.mark.parametrize("name", list(FILES))
def test_raw_from_duckdb_equals_raw_from_pandas(home, monkeypatch, name):
    data, options, path = FILES[name]
    registry(home, "t_{ds}.csv", options)
    (home / "include" / f"t_{DS}.csv").write_bytes(data)
    assert same_raw(home, monkeypatch, [DS]) == [path]


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_file_neither_path_reads_fails_the_same_way(home, monkeypatch, name):
    data, options = BROKEN[name]
    registry(home, "t_{ds}.csv", options)
    (home / "include" / f"t_{DS}.csv").write_bytes(data)
    errors = []
    for duckdb in (False, True):
        with pytest.raises(SourceError) as caught:
            extracted(home, monkeypatch, f"lake-{duckdb}", [DS], duckdb=duckdb)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]


STAMPS = [
    "2024-01-01T10:00:00Z",
    " 2024-01-01T23:30:00+02:00 ",  # 21:30 UTC: inside
    "2024-01-02T01:00:00+02:00",  # 23:00 UTC on the 1st: inside
    "2024-01-01T23:30:00-02:00",  # the 2nd in UTC: outside
    "2024-01-01",  # date-only, midnight: inside
    "2024-01-02",
    "1704103200",  # epoch seconds: 2024-01-01 10:00
    "1704103200.5",
    "1704189600",  # the 2nd
    "20240101",  # an ISO basic date, not epoch
    "",
    "soon",
    "2023-12-31T23:59:59.999999Z",
    "2024-01-01 12:00:00",
]


@pytest.mark.parametrize(("options", "scale"), [("", 1), ("epoch=ms", 1000)])
def test_a_single_incremental_source_is_filtered_by_the_pandas_rules(
    home, monkeypatch, options, scale
):
    registry(home, "events.csv", options, extra="incremental")
    stamps = list(STAMPS)
    stamps[6], stamps[8] = (str(int(STAMPS[i]) * scale) for i in (6, 8))
    stamps[7] = "1704103200500" if scale == 1000 else STAMPS[7]
    text = "id,ts,v\n" + "".join(f"{i},{s},{i * 3}\n" for i, s in enumerate(stamps))
    (home / "include" / "events.csv").write_text(text)
    monkeypatch.setattr(typed_extract, "BATCH_ROWS", 4)  # the filter runs batch by batch
    days = [DS, "2024-01-02"]
    assert same_raw(home, monkeypatch, days) == [DUCKDB, DUCKDB]
    raw = in_delivery_order(pipelines.read("t", "raw"))
    first = raw[raw["ds"] == DS]
    assert list(first["_row"]) == [0, 1, 2, 4, 6, 7, 9, 10, 11, 13]  # inside, or unparseable
    assert set(raw[raw["ds"] == "2024-01-02"]["_row"]) == {3, 5, 8, 10, 11}


def test_a_new_column_later_and_a_missing_one(home, monkeypatch):
    registry(home, "t_{ds}.csv", "")
    include = home / "include"
    (include / "t_2024-01-01.csv").write_text("a,b\n1,x\n")
    (include / "t_2024-01-02.csv").write_text("a,b,c\n2,y,z\n")  # c added
    (include / "t_2024-01-03.csv").write_text("a,c\n3,w\n")  # b missing: pandas decides
    paths = same_raw(home, monkeypatch, ["2024-01-01", "2024-01-02", "2024-01-03"])
    assert paths == [DUCKDB, DUCKDB, PANDAS]


def test_raw_from_duckdb_merges_as_raw_from_pandas(home, monkeypatch):
    """The merge (pandas, for text) of raw from either path: the same cleaned rows, and the same
    quarantine in the same order (raw is read in delivery order)."""
    registry(home, "events.csv", "null=n/a", extra="incremental")
    lines = ["id,ts,v"]
    for i in range(40):
        ts = f"2024-01-01T{i % 24:02d}:{i % 60:02d}:00Z" if i % 7 else ["", "n/a", "soon"][i % 3]
        lines.append(f"{i % 13 if i % 11 else ''},{ts},{i}")
    (home / "include" / "events.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(typed_extract, "BATCH_ROWS", 5)
    results = []
    for lake, duckdb in (("lake-pandas", False), ("lake-duckdb", True)):
        monkeypatch.setenv("PIPELINES_LAKE", str(home / lake))
        with monkeypatch.context() as patched:
            patched.setattr(typed_merge, "plan", lambda *args: None)  # the pandas merge, twice
            if not duckdb:
                patched.setattr(typed_extract, "source_of", lambda *args: None)
            merged = run_steps("t", DS, steps=("extract", "merge"))["merge"]
        results.append((merged, pipelines.read("t"), pipelines.read("t", "quarantine")))
    (reference, cleaned, quarantine), (merged, duck_cleaned, duck_quarantine) = results
    assert merged == reference
    pd.testing.assert_frame_equal(duck_cleaned, cleaned)
    pd.testing.assert_frame_equal(duck_quarantine, quarantine)
    assert len(quarantine) >= 8 and not quarantine["_row"].is_monotonic_increasing  # reasons
