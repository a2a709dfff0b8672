"""The rules csv_source states for DuckDB, each against what pandas does with the same input."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from pipelines.project.registry import SourceOptions
from pipelines.steps import csv_source, sources

NULLS = ("NA", "999", "1e3", "-0.0", "nan", "inf", "1_000", " 5 ", "x.0")
FIELDS = [
    "NA", "na", " NA", "999", "999.0", "999.00", "-999", "1e3", "1E3", "1000", "1000.0", "+1000",
    "0", "0.0", "-0", "-0.0", "nan", "inf", "1_000", " 5 ", "5", "5.0", "x.0", "x", "",
]  # fmt: skip


def test_the_null_strings_are_those_pandas_reads_as_null():
    text = "a\n" + "".join(f'"{f}"\n' for f in FIELDS)
    options = SourceOptions(nulls=NULLS)
    read = pd.read_csv(io.StringIO(text), **sources.csv_options(options))["a"]
    nulls = set(csv_source.null_strings(NULLS))
    assert [f in nulls for f in FIELDS] == list(read.isna())


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b'a,b\n"x",1\n', True),
        (b"a,b\nx,1\n", False),
        (b'a,b\n"x" ,1\n', None),
        (b'a,b\n1,\t"x"\n', None),
        (b'a,b\n"x y"," z"\n', True),  # inside the quotes: kept by both
        (b'a,b\n"x"\t\r\n', None),
    ],
)
def test_whitespace_between_a_quote_and_the_field_edge_is_found_across_chunks(
    tmp_path, monkeypatch, data, found
):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    for size in (1, 2, 3, 1 << 20):  # every chunk boundary
        monkeypatch.setattr(csv_source, "SCAN_BYTES", size)
        assert csv_source._quotes(str(path), b",") is found, size


def test_a_tab_is_a_delimiter_not_whitespace_next_to_a_quote(tmp_path):
    path = tmp_path / "f.tsv"
    path.write_bytes(b'a\tb\n"x"\t"y"\n')
    assert csv_source._quotes(str(path), b"\t") is True
    path.write_bytes(b'a\tb\n"x" \t"y"\n')
    assert csv_source._quotes(str(path), b"\t") is None


def test_a_header_past_the_first_mib_is_left_to_pandas(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("a" * (csv_source.HEADER_BYTES + 10) + ",b\n1,2\n")
    assert csv_source.CsvSource.of(str(path), SourceOptions()) is None
    path.write_text("a,b\n1,2\n")
    assert csv_source.CsvSource.of(str(path), SourceOptions()).names == ["a", "b"]
