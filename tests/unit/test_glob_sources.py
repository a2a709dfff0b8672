"""Glob sources (``landing/{ds}/part-*.csv``): which files one interval's delivery is, in which
order, and how their rows are read as one delivery (local files in a temp include/)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.common.partitions import interval_for
from pipelines.exceptions import SourceError
from pipelines.project.registry import parse_registry
from pipelines.project.registry_values import is_glob
from pipelines.steps import sources

HEADER = "dataset,source,format,primary_key,ingestion,start_date\n"
DAY = "2024-01-02"
INTERVAL = interval_for("0 0 * * *", DAY)


def dataset(source: str, fmt: str = ""):
    registry = parse_registry(HEADER + f"d,{source},{fmt},id,full,2024-01-01\n")
    assert registry.problems == ()
    return registry.datasets[0]


@pytest.fixture
def include(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
    (tmp_path / "include").mkdir()
    return tmp_path / "include"


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("source", "glob"),
    [
        ("landing/{ds}/part-*.csv", True),
        ("s3://b/orders/{ds}/*.parquet", True),
        ("s3://b/{ds}/part-?.csv", True),
        ("landing/part-[0-9].csv", True),
        ("landing/o_{ds}.csv", False),
        ("s3://b/o.csv?versionId=3", False),  # a query, not a wildcard
    ],
)
def test_a_glob_is_a_wildcard_in_the_path(source, glob):
    assert is_glob(source) is glob


@pytest.mark.parametrize(
    ("source", "fmt", "said"),
    [
        ("landing/{ds}/part-*.csv", "", None),
        ("s3://b/{ds}/part-?.parquet", "", None),
        ("landing/{ds}/*", "", "format: cannot tell the format from 'landing/{ds}/*'"),
        ("landing/{ds}/*", "jsonl", None),
        ("landing/**/*.csv", "", "source: '**' is not supported"),
        ("s3://land*/x/{ds}/*.csv", "", "source: an s3:// glob must name its bucket"),
    ],
)
def test_the_registry_reads_a_globs_format_and_refuses_what_would_match_differently(
    source, fmt, said
):
    registry = parse_registry(HEADER + f"d,{source},{fmt},id,full,2024-01-01\n")
    found = [str(p) for p in registry.problems]
    if said is None:
        assert found == [] and registry.datasets[0].format in ("csv", "parquet", "jsonl")
    else:
        assert len(found) == 1 and found[0].startswith(f"registry.csv:2: {said}"), found


def test_the_files_of_an_interval_are_its_matches_sorted_by_name(include):
    day = include / "landing" / DAY
    for name in ("part-2.csv", "part-10.csv", "part-1.csv", ".part-3.csv", "part-4.txt"):
        write(day / name, "id\n1\n")
    (day / "part-5.csv").mkdir()  # a folder is not a file of the delivery
    write(include / "landing" / "2024-01-03" / "part-1.csv", "id\n9\n")
    found = sources.files(dataset("landing/{ds}/part-*.csv"), INTERVAL)
    assert found == [str(day / n) for n in ("part-1.csv", "part-10.csv", "part-2.csv")]


def test_an_interval_with_no_matching_file_is_no_delivery_naming_the_pattern(include):
    write(include / "landing" / "2024-01-03" / "part-1.csv", "id\n9\n")
    source = dataset("landing/{ds}/part-*.csv")
    assert sources.files(source, INTERVAL) == []
    with pytest.raises(SourceError) as raised:
        sources.read_source(source, INTERVAL)
    pattern = include.resolve() / "landing" / DAY / "part-*.csv"
    assert str(raised.value) == f"d: source for {DAY} not found: {pattern}"


def test_a_match_symlinked_out_of_include_is_refused(include, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("id\n1\n")
    write(include / "landing" / DAY / "part-1.csv", "id\n1\n")
    (include / "landing" / DAY / "part-2.csv").symlink_to(outside)
    source = dataset("landing/{ds}/part-*.csv")
    message = f"d: source 'landing/{DAY}/part-2.csv' resolves outside include/"
    for call in (lambda: sources.files(source, INTERVAL), lambda: sources.deliveries(source)):
        with pytest.raises(SourceError, match=message):
            call()


def test_csv_files_are_one_delivery_in_name_order_with_the_union_of_columns(include):
    day = include / "landing" / DAY
    write(day / "part-1.csv", "id,a\n1,x\n2,\n")
    write(day / "part-2.csv", "")  # an empty file adds nothing
    write(day / "part-3.csv", "b,id\ny,3\n")
    frame = sources.read_source(dataset("landing/{ds}/part-*.csv"), INTERVAL)
    expected = pd.DataFrame(
        {"id": ["1", "2", "3"], "a": ["x", None, None], "b": [None, None, "y"]}, dtype="string"
    )
    pd.testing.assert_frame_equal(frame, expected)


def test_parquet_files_keep_their_types_and_a_missing_column_is_null(include):
    day = include / "landing" / DAY
    day.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2], "qty": [5, 6]}), day / "a.parquet")
    pq.write_table(pa.table({"id": [3], "note": ["n"]}), day / "b.parquet")
    frame = sources.read_source(dataset("landing/{ds}/*.parquet"), INTERVAL)
    expected = pd.concat(  # what one file holding the rows of both gives
        [pq.read_table(day / n).to_pandas() for n in ("a.parquet", "b.parquet")],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert list(frame["qty"].isna()) == [False, False, True]


def test_parquet_files_whose_column_types_cannot_meet_are_refused_naming_them(include):
    day = include / "landing" / DAY
    day.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1]}), day / "a.parquet")
    pq.write_table(pa.table({"id": ["x"]}), day / "b.parquet")
    with pytest.raises(SourceError, match="cannot read .* as parquet: .*id.* int64 vs string"):
        sources.read_source(dataset("landing/{ds}/*.parquet"), INTERVAL)


def test_jsonl_values_of_two_types_across_files_are_kept_as_their_json_text(include):
    day = include / "landing" / DAY
    write(day / "a.jsonl", json.dumps({"id": 1, "v": 7}) + "\n")
    write(day / "b.jsonl", json.dumps({"id": 2, "v": "soon"}) + "\n")
    frame = sources.read_source(dataset("landing/{ds}/*.jsonl"), INTERVAL)
    assert frame.to_dict("list") == {"id": [1, 2], "v": ["7", "soon"]}


def test_a_file_uri_glob_is_matched_where_it_points(tmp_path, include):
    folder = tmp_path / "elsewhere" / DAY
    write(folder / "b.csv", "id\n2\n")
    write(folder / "a.csv", "id\n1\n")
    source = dataset(f"file://{tmp_path}/elsewhere/{{ds}}/*.csv")
    assert sources.read_source(source, INTERVAL)["id"].tolist() == ["1", "2"]
