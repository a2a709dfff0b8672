"""Rows between pandas and a Delta table's Arrow schema, in both directions.

A Delta table has one schema for every file, with Delta's types (string, long, double, boolean,
date, timestamp in UTC, timestamp_ntz, ...). What pandas holds is richer: a nullable ``Int64``
against numpy's ``int64``, a column with no value yet. Each field keeps what the frame said in its
metadata, so a frame read back has the dtypes it was written with:

- ``pipelines.dtype``: the pandas dtype the column was written from;
- ``pipelines.kind``: the column's kind in a cleaned table's schema (``int``, ``date``, ``null``
  ...; see :data:`pipelines.common.transforms.DTYPES`), when the writer declared one;
- ``pipelines.name``: the column's name, when Delta refuses it (``Umsatz (EUR)``: a space,
  ``,;{}()=``, a newline or tab; delta-rs 1.6 cannot write column mapping, which would allow
  them). The column is stored as the name with each of those characters replaced by ``_``
  (``Umsatz__EUR_``), which other engines see; :func:`to_frame` gives the name back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

KIND = "pipelines.kind"
DTYPE = "pipelines.dtype"
NAME = "pipelines.name"
REFUSED = re.compile(r"[ ,;{}()=\n\t]")  # Delta refuses these in a column name (no column mapping)


def stored_names(schema: pa.Schema | None) -> dict[str, str]:
    """``name -> stored name`` of the columns stored under another name."""
    if schema is None:
        return {}
    return {
        f.metadata[NAME.encode()].decode(): f.name
        for f in schema
        if f.metadata and NAME.encode() in f.metadata
    }


def _stored_name(name: str, known: dict[str, str], taken: set[str]) -> str:
    """The name ``name`` is stored under: as before, or itself, or a new name Delta takes."""
    if name in known:
        return known[name]
    if not REFUSED.search(name):
        return name
    stored = REFUSED.sub("_", name)
    while stored in taken:
        stored += "_"
    return stored


def kinds_of(schema: pa.Schema) -> dict[str, str]:
    """``column -> kind`` of the fields that declare one, in schema order."""
    return {
        (f.metadata.get(NAME.encode()) or f.name.encode()).decode(): f.metadata[
            KIND.encode()
        ].decode()
        for f in schema
        if f.metadata and KIND.encode() in f.metadata
    }


def to_arrow(
    frame: pd.DataFrame, kinds: Mapping[str, str] | None = None, schema: pa.Schema | None = None
) -> pa.Table:
    """``frame`` as an Arrow table Delta can store: each column in the Delta type of its kind (a
    ``date`` kind as a Delta date), with its dtype and kind in the field's metadata, under the
    name the table ``schema`` stores it as (a name Delta refuses gets one it takes)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    kinds = kinds or {}
    known = stored_names(schema)
    taken = set(schema.names if schema is not None else []) | {str(c) for c in frame.columns}
    fields, columns = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        name = field.name
        kind = kinds.get(name) or ("date" if _is_days(field.type, column) else None)
        target = _delta_type(field.type, kind)
        meta = {DTYPE: str(frame[name].dtype)}
        if name in kinds:
            meta[KIND] = kinds[name]
        stored = _stored_name(name, known, taken)
        if stored != name:
            meta[NAME] = name
            taken.add(stored)
        fields.append(pa.field(stored, target, nullable=True, metadata=meta))
        columns.append(column if column.type == target else column.cast(target))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _is_days(type_: pa.DataType, column) -> bool:
    """Whether a column holds dates the way the package's frames hold them (``datetime64[s]``
    at midnight, no time zone: the ``date`` kind): stored as a Delta date, not a timestamp
    without zone (which would need a newer Delta reader)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_timestamp(type_) and type_.unit == "s" and type_.tz is None):
        return False
    seconds = column.cast(pa.int64())
    days = pc.multiply(pc.divide(seconds, 86_400), 86_400)  # integer division: whole days
    return pc.all(pc.equal(days, seconds)).as_py() is not False


def _delta_type(type_: pa.DataType, kind: str | None) -> pa.DataType:
    """The Arrow type Delta stores a column of ``type_`` (and ``kind``) as."""
    import pyarrow as pa

    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if kind == "date" or pa.types.is_date(type_):
        return pa.date32()
    if pa.types.is_timestamp(type_):
        return pa.timestamp("us", tz="UTC" if type_.tz else None)
    if pa.types.is_large_string(type_) or pa.types.is_null(type_):
        return pa.string()
    if pa.types.is_unsigned_integer(type_):
        return pa.int64()
    if pa.types.is_float16(type_):
        return pa.float32()
    return type_


NULLABLE = {"int64": "Int64", "double": "Float64", "bool": "boolean", "string": "string"}


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table read from Delta as pandas, each column in the dtype it was written from
    (nullable pandas dtypes where the field records none)."""
    import pandas as pd
    import pyarrow as pa

    mapping = {
        pa.int64(): pd.Int64Dtype(),
        pa.float64(): pd.Float64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.string(): pd.StringDtype(),
        pa.large_string(): pd.StringDtype(),
    }

    def mapped(type_: pa.DataType):  # a declared decimal keeps its digits (an Arrow decimal)
        return pd.ArrowDtype(type_) if pa.types.is_decimal(type_) else mapping.get(type_)

    frame = table.to_pandas(types_mapper=mapped, date_as_object=False)
    for field in table.schema:
        if field.name not in frame.columns:
            continue
        meta = field.metadata or {}
        wanted = meta.get(DTYPE.encode(), b"").decode()
        if pa.types.is_date(field.type):
            wanted = wanted if wanted.startswith("datetime64") else "datetime64[s]"
        if wanted and str(frame[field.name].dtype) != wanted:
            try:
                frame[field.name] = frame[field.name].astype(wanted)
            except (TypeError, ValueError):
                continue  # widened since: the stored type stands
    names = {stored: name for name, stored in stored_names(table.schema).items()}
    return frame.rename(columns=names) if names else frame


def empty_frame(schema: pa.Schema) -> pd.DataFrame:
    """No rows, with every column of ``schema`` in the dtype :func:`to_frame` would give."""
    return to_frame(schema.empty_table())


def unify(table: pa.Schema, data: pa.Schema) -> tuple[pa.Schema, bool]:
    """The table's schema once ``data`` is written into a table of schema ``table``, and whether
    a column it had changed type or declared kind (then every partition is rewritten in the new
    type: a Delta table has one schema for all its files). New columns go last."""
    import pyarrow as pa

    incoming = {f.name: f for f in data}
    fields, changed = [], False
    for old in table:
        new = incoming.pop(old.name, None)
        if new is None:
            fields.append(old)
            continue
        wider = _wider(old.type, new.type)
        meta = {**(old.metadata or {}), **(new.metadata or {})}
        if wider == old.type and _kind(meta) == _kind(old.metadata):
            fields.append(old)  # as it is: a frame's other dtype (int64, Int64) is no change
            continue
        changed = True
        fields.append(pa.field(old.name, wider, nullable=True, metadata=meta))
    return pa.schema([*fields, *incoming.values()]), changed


def _kind(metadata: Mapping | None) -> bytes | None:
    return (metadata or {}).get(KIND.encode())


def _wider(old: pa.DataType, new: pa.DataType) -> pa.DataType:
    """A type both columns' values fit in: the same, the non-null one, float for int and
    float, a timestamp for a date and a timestamp, text otherwise."""
    import pyarrow as pa

    if old == new or pa.types.is_null(new):
        return old
    if pa.types.is_null(old):
        return new
    numeric = (pa.types.is_integer(t) or pa.types.is_floating(t) for t in (old, new))
    if all(numeric):
        floating = pa.types.is_floating(old) or pa.types.is_floating(new)
        return pa.float64() if floating else pa.int64()
    temporal = [t for t in (old, new) if pa.types.is_timestamp(t)]
    if temporal and all(pa.types.is_timestamp(t) or pa.types.is_date(t) for t in (old, new)):
        return temporal[0]
    return pa.string()
