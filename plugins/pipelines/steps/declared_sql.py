"""A dataset's declared columns (``columns.yaml``) applied in DuckDB, for the typed path
(:mod:`.typed_extract`, :mod:`.typed_merge`), with :mod:`.declared`'s results.

The DuckDB merge takes a declaration where applying it types no value: a Parquet delivery whose
declared types are the kinds its columns already have, no ``rename`` or ``format``,
``bad_values: discard_row``, ``new_columns: evolve`` (or a delivery with no undeclared column),
and row tests ``not_null``, ``accepted_values``, ``min`` and ``max`` on text, integer, float
and boolean columns. Each row test is a ``WHEN`` of the merge's check, before the key and field
checks and in the declaration's order, so a row keeps the first reason :mod:`.declared` gives
it: ``amount: '-1.0' is below 0 (min)``, the value as pandas writes it (a float as Python's
``repr``, a boolean ``True``/``False``, null and NaN as nothing; 80 characters at most). Blank
text is missing, as in pandas, and a float's NaN is null. Anything else (``pattern``, formats,
renames, decimals, dates, a test on a column without a type, the other contracts, CSV) is the
pandas path's.

Table tests (``unique``, ``relationships``, the dataset's ``tests``) are the check stage's,
whichever path merged.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from pipelines.common import typed_text
from pipelines.lake.engine import literal, quoted
from pipelines.project.columns import BadValues, Column, NewColumns, Test
from pipelines.project.registry import Dataset
from pipelines.steps import declared, text_merge

if TYPE_CHECKING:
    import pyarrow as pa

TESTED_KINDS = ("string", "int", "float", "bool")  # kinds whose row tests are stated here
KINDS = (None, *TESTED_KINDS, "timestamp")  # declared kinds a delivery can already have
TESTS = ("not_null", "accepted_values", "min", "max")


def handles(dataset: Dataset) -> bool:
    """Whether the DuckDB merge can take the dataset's declaration, whatever its delivery."""
    spec = dataset.declared
    if spec is None:
        return True
    if dataset.format != "parquet" or spec.bad_values is not BadValues.DISCARD_ROW:
        return False
    return all(_column_handled(c) for c in spec.columns)


def _column_handled(column: Column) -> bool:
    if column.rename or column.format is not None or column.kind not in KINDS:
        return False
    tests = _row_tests(column)
    if not tests:
        return True
    if column.kind not in TESTED_KINDS or any(t.name not in TESTS for t in tests):
        return False
    try:
        return all(_bounds(t, column.kind) is not None for t in tests)
    except ValueError:  # a bound that is not of the column's type: the pandas path says so
        return False
    except TypeError:  # an accepted value that is a mapping or a list (no key of the cache)
        return False


def fits(dataset: Dataset, kinds: Mapping[str, str], types: Mapping[str, pa.DataType]) -> bool:
    """Whether a Parquet delivery of ``kinds`` (its columns' Arrow ``types``) meets the
    declaration without a value typed: each declared type is the column's kind, each tested
    column renders as pandas does, and a new column is no concern of ``new_columns``."""
    spec = dataset.declared
    if spec is None:
        return True
    if spec.new_columns is not NewColumns.EVOLVE and set(kinds) - _known(dataset):
        return False
    for column in spec.columns:
        if column.name not in kinds:
            continue  # a later column: not in this delivery
        if column.kind is not None and column.kind != kinds[column.name]:
            return False
        if _row_tests(column) and not _renders(types[column.name]):
            return False
    return True


def _known(dataset: Dataset) -> set[str]:
    fields = (*dataset.primary_key, dataset.incremental_field, dataset.partition_field)
    return {c.name for c in dataset.declared.columns} | {c for c in fields if c}


def _renders(type_: pa.DataType) -> bool:
    """Whether SQL writes this type's values as pandas' ``astype("string")`` does."""
    import pyarrow as pa

    return (
        pa.types.is_integer(type_)
        or pa.types.is_boolean(type_)
        or type_ == pa.float64()
        or pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
    )


def row_tests(dataset: Dataset, columns: Iterable[str]) -> list[str]:
    """``WHEN broken THEN reason`` of every row test on the delivered ``columns``, in the
    declaration's order (the first that a row breaks is its reason)."""
    spec = dataset.declared
    if spec is None:
        return []
    present = set(columns)
    return [
        f"WHEN {_broken(test, column)} THEN {_reason(test, column)}"
        for column in spec.columns
        if column.name in present
        for test in _row_tests(column)
    ]


def _row_tests(column: Column) -> list[Test]:
    return [t for t in column.tests if t.is_row_test]


def _present(column: Column) -> str:
    """SQL: the value is there (null, NaN and blank text are missing, as in pandas)."""
    c = quoted(column.name)
    if column.kind == "string":
        return f"({c} IS NOT NULL AND NOT {_blank(column.name)})"
    if column.kind == "float":
        return f"({c} IS NOT NULL AND NOT isnan({c}))"
    return f"({c} IS NOT NULL)"


def _blank(name: str) -> str:
    """SQL: the text is empty once stripped (:func:`.text_merge.blank`), looked at only where
    it can be: empty, or starting with a character below ``!`` or from U+0085 on (every
    whitespace character is one; strings compare by code point), a comparison of the inlined
    prefix that spares a million rows the test."""
    c = quoted(name)
    return f"(({c} < '!' OR {c} >= {literal(chr(0x85))}) AND {text_merge.blank(name)})"


def _broken(test: Test, column: Column) -> str:
    """SQL: the row breaks ``test`` (nulls pass every test but ``not_null``)."""
    present = _present(column)
    if test.name == "not_null":
        return f"NOT {present}"
    value = quoted(column.name)
    if column.kind == "string":
        value = text_merge.stripped(column.name)
    bounds = _bounds(test, column.kind)
    if test.name == "accepted_values":
        broken = f"({present} AND {value} NOT IN ({', '.join(bounds)}))"
        if column.kind != "string":
            return broken
        # a value equal to an accepted value with no space around it is accepted: checked
        # first, so the text is stripped only where it is not
        clean = [v for v in _typed(test, column.kind) if v == v.strip() and v]
        listed = ", ".join(map(literal, clean))
        return f"({quoted(column.name)} NOT IN ({listed}) AND {broken})" if clean else broken
    op = "<" if test.name == "min" else ">"
    return f"({present} AND {value} {op} {bounds[0]})"


def _bounds(test: Test, kind: str) -> list[str] | None:
    """A test's bound or accepted values as SQL literals of ``kind``, read as the pandas path
    reads them (None: one reads as missing).

    :raises ValueError: a value is not of ``kind``
    """
    typed = _typed(test, kind)
    if any(_missing(v) for v in typed):
        return None
    return [_sql(v, kind) for v in typed]


@functools.cache
def _typed(test: Test, kind: str) -> tuple:
    """A test's bound or accepted values as values of ``kind`` (``typed_text.bound``: some
    milliseconds of pandas each, so once per process; a test is frozen).

    :raises ValueError: a value is not of ``kind``
    """
    if test.name == "not_null":
        return ()
    values = test.arg if test.name == "accepted_values" else (test.arg,)
    return tuple(typed_text.bound(v, kind) for v in values)


def _missing(value) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _sql(value, kind: str) -> str:
    if kind == "string":
        return literal(str(value))
    if kind == "bool":
        return "true" if value else "false"
    if kind == "int":
        return f"CAST({int(value)} AS BIGINT)"
    return f"CAST({literal(repr(float(value)))} AS DOUBLE)"


def _reason(test: Test, column: Column) -> str:
    """SQL of ``column: 'VALUE' rule`` (:func:`.declared._said`)."""
    c = quoted(column.name)
    if column.kind == "bool":
        text = f"CASE WHEN {c} THEN 'True' WHEN NOT {c} THEN 'False' END"
    elif column.kind == "float":
        text = f"CASE WHEN NOT isnan({c}) THEN {c}::VARCHAR END"
    else:
        text = f"{c}::VARCHAR"
    head, tail = f"{column.name}: '", f"' {declared.rule(test)}"
    return f"({literal(head)} || left(coalesce({text}, ''), {declared.QUOTED}) || {literal(tail)})"


def extract_reads_field(dataset: Dataset) -> bool:
    """Whether the DuckDB extract filters a single source by its incremental field as the
    declaration reads it: the field is not declared, or declared with no rename or format as
    untyped or (Parquet) a timestamp."""
    spec = dataset.declared
    filtered = dataset.ingestion.filters_by_interval and not dataset.per_interval_source
    if spec is None or not filtered:
        return True
    column = spec.column(dataset.incremental_field)
    if column is None:
        return True
    if column.rename or column.format is not None:
        return False
    return column.kind is None or (column.kind == "timestamp" and dataset.format == "parquet")
