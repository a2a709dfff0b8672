"""A delivery meets its dataset's declared columns (``columns.yaml``), before the merge types,
deduplicates and upserts it.

In order: awkward headers get their clean names (``rename``); a column the declaration does not
have meets the ``new_columns`` contract; each declared column is read as its type (and
``format``); each row test (``not_null``, ``accepted_values``, ``min``, ``max``, ``pattern``)
is applied. A value that does not fit meets the ``bad_values`` contract: its row goes to
quarantine with the column, the value and the rule in ``_reason`` (``discard_row``, the
default), the value becomes null (``discard_value``; a ``not_null`` column's row still goes), or
the run fails before anything is written (``freeze``). The registry's key, incremental and
partition fields count as declared (the registry names them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from pipelines.common import typed_text
from pipelines.exceptions import SchemaDriftError
from pipelines.project.columns import BadValues, Column, Declaration, NewColumns, Test
from pipelines.project.registry import Dataset

log = logging.getLogger(__name__)
QUOTED = 80  # characters of a value a reason quotes


class BadValueError(SchemaDriftError):
    """A value broke its column's type or test and the dataset's bad_values is ``freeze``."""


@dataclass(frozen=True)
class Applied:
    """A delivery after its declaration: the rows kept (declared columns typed), the rows
    quarantined (as delivered, with ``_reason``), and the declared kinds by column."""

    rows: pd.DataFrame
    quarantined: pd.DataFrame
    kinds: dict[str, str]
    nulled: int = 0  # values discard_value made null


def renamed(dataset: Dataset, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the declared clean names of its awkward headers."""
    declared = dataset.declared
    if declared is None or not declared.renames:
        return frame
    return frame.rename(columns=declared.renames)


def header(dataset: Dataset, column: str) -> str:
    """The header a column is delivered under (its declared ``rename`` undone)."""
    declared = dataset.declared
    found = declared.column(column) if declared is not None else None
    return found.name if found is not None else column


def field_values(dataset: Dataset, frame: pd.DataFrame, field: str) -> pd.Series:
    """The values of a registry field (incremental or partition) as its declaration reads them
    (its ``format``): what the interval filter compares; the column as delivered when the field
    is not declared with a type."""
    column = dataset.declared.column(field) if dataset.declared is not None else None
    values = frame[header(dataset, field)]
    if column is None or column.kind is None:
        return values
    parsed, _ = typed_text.parse(values, column.kind, column.format)
    return parsed


def apply(dataset: Dataset, raw: pd.DataFrame, ds: str) -> Applied:
    """The delivery ``raw`` (bookkeeping columns ``_*`` kept) after its declaration.

    :raises SchemaDriftError: a new column under ``new_columns: freeze``
    :raises BadValueError: a value that does not fit under ``bad_values: freeze``
    """
    declared = dataset.declared
    if declared is None:
        return Applied(raw, raw.iloc[0:0].assign(_reason=pd.Series(dtype="string")), {})
    frame = renamed(dataset, raw)
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame, reasons = _new_columns(dataset, declared, frame, reasons)
    typed: dict[str, pd.Series] = {}
    nulled = 0
    for column in declared.columns:
        if column.stored not in frame.columns:
            continue  # a later column: null on the days it is not delivered
        values, faults = _checked(column, frame[column.stored])
        faults = faults.mask(reasons.notna())  # a row's first reason is the one it keeps
        if faults.notna().any():
            values, reasons, count = _bad_values(dataset, column, values, faults, reasons, ds)
            nulled += count
        if column.kind is not None or nulled:
            typed[column.stored] = values
    bad = reasons.notna().to_numpy(dtype=bool)
    quarantined = frame[bad].assign(_reason=reasons[bad])
    rows = frame.assign(**typed)[~bad] if bad.any() else frame.assign(**typed)
    if nulled:
        log.warning("%s ds=%s: %d values did not fit and were made null", dataset.name, ds, nulled)
    return Applied(rows, quarantined, declared.kinds, nulled)


def _new_columns(
    dataset: Dataset, declared: Declaration, frame: pd.DataFrame, reasons: pd.Series
) -> tuple[pd.DataFrame, pd.Series]:
    """The ``new_columns`` contract on the columns the declaration does not name."""
    known = {c.stored for c in declared.columns} | {
        c for c in (*dataset.primary_key, dataset.incremental_field, dataset.partition_field) if c
    }
    new = [c for c in frame.columns if not str(c).startswith("_") and c not in known]
    if not new or declared.new_columns is NewColumns.EVOLVE:
        return frame, reasons
    if declared.new_columns is NewColumns.FREEZE:
        raise SchemaDriftError(
            f"{dataset.name}: column {new[0]!r} is not declared in columns.yaml and new_columns "
            "is 'freeze'; declare it (or set new_columns: evolve); nothing was written"
        )
    if declared.new_columns is NewColumns.DISCARD_VALUE:
        return frame.drop(columns=new), reasons
    for col in new:  # discard_row: a row with a value in an undeclared column
        text = frame[col].astype("string").str.strip()
        valued = text.notna() & (text != "")
        why = f"{col}: column not declared (new_columns: discard_row)"
        reasons = reasons.mask(valued & reasons.isna(), why)
    return frame, reasons


def _checked(column: Column, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column typed, and the reason of each value that breaks its type or a row test."""
    faults = pd.Series(pd.NA, index=values.index, dtype="string")
    delivered = values
    if column.kind is not None:
        values, bad = typed_text.parse(values, column.kind, column.format)
        if bad.any():
            what = typed_text.describe(column.kind, column.format)
            faults = faults.mask(bad, _said(column.stored, delivered, f"is not {what}"))
    kind = column.kind or "string"
    for test in column.tests:
        if not test.is_row_test:
            continue
        broken = _breaks(test, values if column.kind else delivered, delivered, kind)
        faults = faults.mask(broken & faults.isna(), _said(column.stored, delivered, rule(test)))
    return values, faults


def _breaks(test: Test, values: pd.Series, delivered: pd.Series, kind: str) -> pd.Series:
    """Where ``test`` fails (nulls pass every test but ``not_null``)."""
    present = values.notna()
    if values.dtype == "string" or values.dtype == object:
        present &= values.astype("string").str.strip() != ""
    present = present.fillna(False).astype(bool)
    if test.name == "not_null":
        return ~present
    if test.name == "pattern":
        text = delivered.astype("string").str.strip()
        return present & ~text.str.fullmatch(test.arg).fillna(False).astype(bool)
    if test.name == "accepted_values":
        accepted = [typed_text.bound(v, kind) for v in test.arg]
        if kind == "string":
            return present & ~values.astype("string").str.strip().isin(accepted)
        return present & ~values.isin(accepted).fillna(False).astype(bool)
    limit = typed_text.bound(test.arg, kind)
    if kind == "string":
        values = values.astype("string")
    outside = values < limit if test.name == "min" else values > limit
    return present & outside.fillna(False).astype(bool)


def rule(test: Test) -> str:
    """How a reason names the row test a value broke: ``is below 0 (min)``."""
    return {
        "not_null": "is null (not_null)",
        "pattern": f"does not match {test.arg!r} (pattern)",
        "min": f"is below {test.arg} (min)",
        "max": f"is above {test.arg} (max)",
    }.get(test.name, f"is not accepted ({test})")


def _said(column: str, delivered: pd.Series, why: str) -> pd.Series:
    """``column: 'VALUE' why`` for each row."""
    text = delivered.astype("string").fillna("").str.slice(0, QUOTED)
    return (f"{column}: '" + text + f"' {why}").astype("string")


def _bad_values(
    dataset: Dataset, column: Column, values: pd.Series, faults: pd.Series, reasons, ds: str
) -> tuple[pd.Series, pd.Series, int]:
    """The ``bad_values`` contract on a column's faults: the values, the rows' reasons and how
    many values it made null."""
    policy = dataset.declared.bad_values
    at = faults.notna().to_numpy(dtype=bool)
    if policy is BadValues.FREEZE:
        first = faults[at].iloc[0]
        raise BadValueError(
            f"{dataset.name} ds={ds}: {first} (bad_values: freeze, {int(at.sum())} such rows); "
            "nothing was written"
        )
    if policy is BadValues.DISCARD_VALUE:
        keep_row = ~faults.str.endswith("(not_null)").fillna(False).to_numpy(dtype=bool)
        nulling = at & keep_row
        values = values.mask(nulling)
        return values, reasons.mask(at & ~keep_row & reasons.isna(), faults), int(nulling.sum())
    return values, reasons.mask(at & reasons.isna(), faults), 0
