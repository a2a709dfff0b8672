"""Row tests of a declaration stated in SQL (steps/declared_sql.py): the same rows fail, with the
same ``_reason`` text, as in the pandas reference (steps/declared.py), value by value for each
kind; and what the DuckDB path leaves to pandas."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.lake.engine import connect
from pipelines.project.columns import load_declarations
from pipelines.project.registry import parse_registry
from pipelines.steps import declared, declared_sql

REGISTRY = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date\n"
    "items,src/items_{ds}.parquet,parquet,id,ts,ts,incremental,2024-01-01\n"
)
COLUMNS = """\
items:
  columns:
    id: {type: integer, tests: [not_null]}
    v: {type: float, tests: [{min: 0}, {max: 0.9}, not_null]}
    n: {type: integer, tests: [{min: -5}, {max: 50}, {accepted_values: [-5, 0, 7, 99]}]}
    label: {type: text, tests: [not_null, {accepted_values: [x0, " x1", 4, 2.5]}]}
    flag: {type: boolean, tests: [{accepted_values: [true]}]}
    w: {type: float, tests: [{accepted_values: [0.1, 1e16, 2]}]}
    note: {tests: [unique]}
"""
LONG = "é" * 50 + "👍🏽" * 30 + "x" * 20  # past the 80 characters a reason quotes


def dataset(tmp_path, columns: str = COLUMNS):
    path = tmp_path / "columns.yaml"
    path.write_text(textwrap.dedent(columns))
    found = load_declarations(path)
    assert found.problems == ()
    [items] = parse_registry(REGISTRY).datasets
    return dataclasses.replace(items, declared=found.by_dataset["items"])


def delivery() -> pd.DataFrame:
    """Every kind with values that pass, fail each test, and render awkwardly (floats in
    exponent form, NaN and inf, -0.0, blank and long text, nulls)."""
    v = [0.5, -1.0, 0.95, np.nan, 1e16, -0.0, 0.1 + 0.2, np.inf, -np.inf, 5e-324, 0.9, 1e-5]
    n = pd.array([0, 7, -6, 51, None, 99, -5, 3, 50, 2**40, -(2**40), 1], dtype="Int64")
    label = ["x0", " x1 ", " x1", "  ", None, LONG, "x2", "4", " 4\t", "2.5", "é", ""]
    flag = pd.array([True, False, None, True, True, False, True, None, True, True, False, True])
    w = [0.1, 1e16, 2.0, 0.30000000000000004, np.nan, 3.0, 0.1, 1e16, 2.0, 0.1, -0.0, 7.5]
    rows = len(v)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "ts": pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC"),
            "v": v,
            "n": n,
            "label": pd.array(label, dtype="str"),
            "flag": pd.array(flag, dtype="boolean"),
            "w": w,
            "note": [f"n{i}" for i in range(rows)],
            "_row": np.arange(rows, dtype="int64"),
        }
    )


def sql_reasons(items, frame: pd.DataFrame) -> list[str | None]:
    cases = declared_sql.row_tests(items, frame.columns)
    with connect() as con:
        con.register("raw", pa.Table.from_pandas(frame, preserve_index=False))
        query = f"SELECT CASE {' '.join(cases)} END FROM raw ORDER BY _row"
        return [r[0] for r in con.sql(query).fetchall()]


def pandas_reasons(items, frame: pd.DataFrame) -> list[str | None]:
    applied = declared.apply(items, frame, "2024-01-01")
    reasons = applied.quarantined["_reason"].reindex(frame.index)
    return [None if pd.isna(r) else r for r in reasons]


def test_each_row_test_fails_the_same_rows_with_the_same_reason_as_pandas(tmp_path):
    items, frame = dataset(tmp_path), delivery()
    expected = pandas_reasons(items, frame)
    assert sql_reasons(items, frame) == expected
    assert expected[:4] == [  # the first reason in the declaration's order
        None,
        "v: '-1.0' is below 0 (min)",
        "v: '0.95' is above 0.9 (max)",
        "v: '' is null (not_null)",
    ]
    assert "n: '-1099511627776' is below -5 (min)" in expected


ACCEPTED = "is not accepted (accepted_values:"
SAMPLES = {  # one reason each kind's values must give, as pandas writes the value
    "v": "v: '1e+16' is above 0.9 (max)",
    "n": "n: '3' is not accepted (accepted_values: [-5, 0, 7, 99])",
    "label": f"label: '{LONG[:80]}' {ACCEPTED} [x0,  x1, 4, 2.5])",
    "flag": f"flag: 'False' {ACCEPTED} [True])",
    "w": f"w: '0.30000000000000004' {ACCEPTED} [0.1, 1e16, 2])",
}


@pytest.mark.parametrize("column", list(SAMPLES))
def test_each_kind_alone_renders_as_pandas(tmp_path, column):
    """One column's tests at a time: every row reaches them (no earlier column's reason)."""
    items, frame = dataset(tmp_path), delivery()
    spec = items.declared
    only = dataclasses.replace(spec, columns=tuple(c for c in spec.columns if c.name == column))
    items = dataclasses.replace(items, declared=only)
    expected = pandas_reasons(items, frame)
    assert sql_reasons(items, frame) == expected
    assert SAMPLES[column] in expected


@pytest.mark.parametrize(
    "entry",
    [
        "label: {type: text, tests: [{pattern: 'x[0-9]'}]}",
        "when: {type: date}",
        "amount: {type: 'decimal(12,2)'}",
        "day: {type: timestamp, tests: [{min: 2024-01-01}]}",
        "Water flow: {rename: water_flow, type: float}",
        "v: {type: float, format: {decimal: ','}}",
        "label: {tests: [not_null]}",  # no declared type: pandas tests the values as text
        "n: {type: integer, tests: [{min: 0.5}]}",  # a bound that is no integer
        "label: {type: text, tests: [{accepted_values: [{a: 1}]}]}",  # a mapping as a value
    ],
)
def test_what_only_pandas_applies_is_left_to_it(tmp_path, entry):
    items = dataset(tmp_path, f"items:\n  columns:\n    {entry}\n")
    assert not declared_sql.handles(items)


@pytest.mark.parametrize("contract", ["bad_values: discard_value", "bad_values: freeze"])
def test_contracts_other_than_discard_row_are_left_to_pandas(tmp_path, contract):
    declaration = COLUMNS.replace("  columns:", f"  {contract}\n  columns:")
    assert not declared_sql.handles(dataset(tmp_path, declaration))


def test_a_declared_type_other_than_the_delivered_kind_is_left_to_pandas(tmp_path):
    items = dataset(tmp_path)
    types = {"id": pa.int64(), "v": pa.float64(), "n": pa.int64(), "label": pa.string()}
    kinds = {"id": "int", "v": "float", "n": "int", "label": "string"}
    assert declared_sql.handles(items) and declared_sql.fits(items, kinds, types)
    assert not declared_sql.fits(items, {**kinds, "n": "float"}, {**types, "n": pa.float64()})
    assert not declared_sql.fits(items, kinds, {**types, "v": pa.float32()})  # renders apart


def test_new_columns_matter_only_when_the_delivery_has_one(tmp_path):
    items = dataset(tmp_path, COLUMNS.replace("  columns:", "  new_columns: freeze\n  columns:"))
    kinds = {"id": "int", "ts": "timestamp", "v": "float"}
    types = {"id": pa.int64(), "ts": pa.timestamp("us", tz="UTC"), "v": pa.float64()}
    assert declared_sql.handles(items) and declared_sql.fits(items, kinds, types)
    assert not declared_sql.fits(items, {**kinds, "extra": "int"}, {**types, "extra": pa.int64()})
