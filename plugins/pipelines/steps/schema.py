"""Schema drift policy: how a delivery's columns and kinds meet the cleaned table's.

With ``on_schema_change: append`` (the default) the table's schema is the union of what every
delivery brought, whatever the order they ran in: a new column is appended (rows of deliveries
without it read it as null), a column a delivery lacks stays in the table and is null for that
delivery's rows, and a kind widens (int -> float; anything into a string column). With ``fail``
any new or missing column stops the run. A change to a kind the stored one cannot hold always
fails the run, naming the column, before anything is written.

A delivery's kinds are guessed losslessly (:mod:`pipelines.common.inference`): a CSV column is a
number only when every value round-trips, and its primary key stays text (a timestamp key is a UTC
instant), typed before the delivery is deduplicated (:func:`key_kinds`), so two rows meet on a key
only if their keys are equal as the cleaned table holds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from pipelines.common import inference, transforms
from pipelines.exceptions import SchemaDriftError
from pipelines.project.registry import Dataset, SchemaChange

if TYPE_CHECKING:
    from pipelines.lake.tables import Snapshot


def delivery_kinds(frame: pd.DataFrame, dataset: Dataset) -> dict[str, str]:
    """The kind of every data column of a delivery (the incremental and partition fields are
    timestamps, or dates when the delivery gave dates).

    CSV delivers text, whose kind is guessed (``inference.text_kind``) but for the primary key's,
    typed before (:func:`key_kinds`); Parquet and JSON Lines columns keep their type.
    """
    forced = {  # a field with no value in this delivery says nothing of its kind
        c: "date" if inference.infer_kind(frame[c]) == "date" else "timestamp"
        for c in (dataset.incremental_field, dataset.partition_field)
        if c and c in frame.columns and frame[c].notna().any()
    }
    if dataset.declared is not None:  # a declared type is the column's kind, on every day
        forced.update({c: k for c, k in dataset.declared.kinds.items() if c in frame.columns})
    sniff = dataset.format == "csv"
    return {
        col: forced.get(col)
        or inference.infer_kind(frame[col], sniff=sniff and col not in dataset.primary_key)
        for col in frame.columns
        if not col.startswith("_")
    }


def stored_kinds(base: Snapshot) -> dict[str, str]:
    """The kinds a merge meets in the cleaned table at ``base``, in column order: none for an
    empty table (a new one, or one ``plan --apply`` rebuilds beside the current one after a key
    or a declared type changed), whose rows written now say what it is."""
    return base.kinds if base.partitions else {}


def key_kinds(frame: pd.DataFrame, dataset: Dataset, stored: dict[str, str]) -> dict[str, str]:
    """The kind of each primary key column of a CSV delivery that is neither a parsed field
    (those are timestamps already) nor declared (its declared type is its kind), over all its
    delivered values (``inference.key_kind``; ``stored``: the cleaned table's kinds). Other
    formats' keys keep their type: an empty mapping."""
    if dataset.format != "csv":
        return {}
    typed = {dataset.incremental_field, dataset.partition_field}
    if dataset.declared is not None:
        typed |= set(dataset.declared.kinds)
    return {
        c: inference.key_kind(frame[c], stored.get(c))
        for c in dataset.primary_key
        if c not in typed and c in frame.columns
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
