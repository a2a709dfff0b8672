"""Schema drift policy: how a delivery's columns and kinds meet the cleaned table's.

With ``on_schema_change: append`` (the default) the table's schema is the union of what every
delivery brought, whatever the order they ran in: a new column is appended (rows of deliveries
without it read it as null), a column a delivery lacks stays in the table and is null for that
delivery's rows, and a kind widens (int -> float; anything into a string column). With ``fail``
any new or missing column stops the run. A change to a kind the stored one cannot hold always
fails the run, naming the column, before anything is written.
"""

from __future__ import annotations

import pandas as pd

from pipelines.common import transforms
from pipelines.exceptions import SchemaDriftError
from pipelines.project.registry import Dataset, SchemaChange


def delivery_kinds(frame: pd.DataFrame, dataset: Dataset) -> dict[str, str]:
    """The kind of every data column of a delivery (the incremental and partition fields are
    timestamps, or dates when the delivery gave dates).

    CSV delivers text, whose kind is sniffed; Parquet and JSON Lines columns keep their type.
    """
    forced = {  # a field with no value in this delivery says nothing of its kind
        c: "date" if transforms.infer_kind(frame[c]) == "date" else "timestamp"
        for c in (dataset.incremental_field, dataset.partition_field)
        if c and c in frame.columns and frame[c].notna().any()
    }
    if dataset.declared is not None:  # a declared type is the column's kind, on every day
        forced.update({c: k for c, k in dataset.declared.kinds.items() if c in frame.columns})
    sniff = dataset.format == "csv"
    return {
        col: forced.get(col) or transforms.infer_kind(frame[col], sniff=sniff)
        for col in frame.columns
        if not col.startswith("_")
    }


def reconcile(
    stored: dict[str, str], delivered: dict[str, str], dataset: Dataset
) -> dict[str, str]:
    """The table schema after this delivery, in column order; raises SchemaDriftError."""
    if not stored:
        return dict(delivered)
    missing = [c for c in stored if c not in delivered]
    if missing and dataset.on_schema_change is SchemaChange.FAIL:
        raise SchemaDriftError(
            f"{dataset.name}: column {missing[0]!r} is missing from the source (the cleaned "
            "table has it) and on_schema_change is 'fail'; previous data is unchanged"
        )
    added = [c for c in delivered if c not in stored]
    if added and dataset.on_schema_change is SchemaChange.FAIL:
        raise SchemaDriftError(
            f"{dataset.name}: new column {added[0]!r} in the source and "
            "on_schema_change is 'fail'; previous data is unchanged"
        )
    merged = {}
    for col, kind in stored.items():
        wider = transforms.widen(kind, delivered.get(col, "null"))
        if wider is None:
            raise SchemaDriftError(
                f"{dataset.name}: column {col!r} changed type from {kind} to "
                f"{delivered[col]}; previous data is unchanged"
            )
        merged[col] = wider
    merged.update({c: delivered[c] for c in added})
    return merged


def conform(frame: pd.DataFrame, schema: dict[str, str], dataset: Dataset) -> pd.DataFrame:
    """``frame`` with every schema column, in schema order, converted to its kind.

    Bookkeeping columns (``_*``) are kept at the end.
    """
    out = {}
    for col, kind in schema.items():
        if col not in frame.columns:
            out[col] = pd.Series(pd.NA, index=frame.index, dtype=_dtype(kind))
            continue
        try:
            out[col] = transforms.coerce(frame[col], kind)
        except ValueError as exc:
            raise SchemaDriftError(f"{dataset.name}: column {col!r}: {exc}") from None
    extra = {c: frame[c] for c in frame.columns if c.startswith("_") or c not in schema}
    return pd.DataFrame(
        {**out, **{c: v for c, v in extra.items() if c not in out}}, index=frame.index
    )


def _dtype(kind: str):
    return transforms.dtype_of(kind)
