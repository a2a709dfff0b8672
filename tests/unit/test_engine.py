"""The DuckDB engine a step computes in: bounded by PIPELINES_MEMORY_LIMIT, spilling to a temp
folder that goes with the step; a version of a table read as a view of that version's files."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from pipelines.exceptions import PipelinesError
from pipelines.lake.engine import connect, register, run
from pipelines.lake.lake import Lake
from pipelines.runtime.environment import memory_limit


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 10**9), ("2GB", 2 * 10**9), ("512MiB", 512 * 2**20), ("1.5 gb", 1_500_000_000)],
)
def test_the_memory_limit_is_a_size(monkeypatch, value, expected):
    monkeypatch.setenv("PIPELINES_MEMORY_LIMIT", value)
    assert memory_limit() == expected


def test_a_memory_limit_that_is_no_size_is_named(monkeypatch):
    monkeypatch.setenv("PIPELINES_MEMORY_LIMIT", "lots")
    with pytest.raises(PipelinesError, match="PIPELINES_MEMORY_LIMIT: 'lots' is not a size"):
        memory_limit()


def test_the_connection_is_bounded_and_spills_to_a_folder_of_its_own(monkeypatch):
    monkeypatch.setenv("PIPELINES_MEMORY_LIMIT", "256MiB")
    with connect() as con:
        [(limit,)] = run(con, "SELECT current_setting('memory_limit')")
        [(spill,)] = run(con, "SELECT current_setting('temp_directory')")
        [(zone,)] = run(con, "SELECT current_setting('TimeZone')")
        assert os.path.isdir(spill)
    assert limit.replace(" ", "") in {"256.0MiB", "256MiB", "268.4MB"} and zone == "UTC"
    assert not os.path.exists(spill)  # the spill folder went with the step


def test_a_view_reads_the_version_it_was_given_not_the_folder(tmp_path):
    table = Lake(str(tmp_path), "local").workflow("w")
    first = table.commit(table.snapshot(), {"2024-01-01": pd.DataFrame({"a": [1, 2]})})
    table.commit(first, {"2024-01-01": pd.DataFrame({"a": [3]})})  # the first file superseded
    with connect() as con:
        register(con, "old", table, first, ["2024-01-01"])
        register(con, "new", table, table.snapshot(), ["2024-01-01"])
        assert run(con, "SELECT a, ds FROM old ORDER BY a") == [
            (1, "2024-01-01"),
            (2, "2024-01-01"),
        ]
        assert run(con, "SELECT a FROM new") == [(3,)]
        assert run(con, f"SELECT count(*) FROM read_parquet('{table.path}/*/*.parquet')") == [(3,)]
