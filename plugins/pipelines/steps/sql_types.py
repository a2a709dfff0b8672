"""A database column's type as the raw table stores it, from the cursor's description: the
database's type, never a guess from text.

PostgreSQL's types are mapped one by one (its drivers describe a column by its type OID, with
the precision and scale of a ``numeric``): integers stay ``int64``, ``numeric(p, s)`` a decimal
of that scale (``p`` up to 38; up to 76 as a 256-bit decimal), ``real``/``double precision``
floats, ``boolean``, ``date``, ``time``, ``bytea`` binary, and both ``timestamptz`` (an instant)
and ``timestamp without time zone`` a UTC timestamp (the latter's wall time read as UTC). Any
other type (``numeric`` without a precision, ``uuid``, ``json``, ``interval``, arrays, …) is
kept as its text (JSON for JSON values and arrays), exactly.

Another database's columns are mapped through its driver's PEP 249 type objects (``NUMBER``
with a scale: a decimal, with scale 0: an integer, without one: a float; ``DATETIME``: a UTC
timestamp; ``BINARY``; anything else as text).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# PostgreSQL type OIDs (pg_type.oid: stable across versions)
PG_INTEGERS = {20, 21, 23, 26}  # int8, int2, int4, oid
PG_FLOATS = {700, 701}  # float4, float8
PG_TEXT = {18, 19, 25, 1042, 1043}  # char, name, text, bpchar, varchar
PG_NUMERIC, PG_BOOL, PG_DATE, PG_TIME, PG_BYTEA = 1700, 16, 1082, 1083, 17
PG_TIMESTAMPS = {1114, 1184}  # timestamp, timestamptz


@dataclass(frozen=True)
class Column:
    """A result column: its name, the Arrow type it is stored as, and how a driver's value of
    it becomes that type's (None: as it is)."""

    name: str
    type: pa.DataType
    convert: Callable[[Any], Any] | None = None


def columns(description, dialect) -> list[Column]:
    """The result's columns, from a DB-API cursor ``description`` and the SQLAlchemy dialect."""
    postgres = dialect.name == "postgresql"
    dbapi = getattr(dialect, "dbapi", None) or getattr(dialect, "loaded_dbapi", None)
    found = []
    for item in description:
        name, code = str(item[0]), item[1]
        precision, scale = _size(item, 4), _size(item, 5)
        if postgres and isinstance(code, int):
            found.append(_postgres(name, code, precision, scale))
        else:
            found.append(_pep249(name, code, precision, scale, dbapi))
    return found


def _size(item, at: int) -> int | None:
    value = item[at] if len(item) > at else None
    return value if isinstance(value, int) and value >= 0 else None


def _postgres(name: str, oid: int, precision: int | None, scale: int | None) -> Column:
    import pyarrow as pa

    if oid in PG_INTEGERS:
        return Column(name, pa.int64())
    if oid in PG_FLOATS:
        return Column(name, pa.float64())
    if oid == PG_NUMERIC:
        return _decimal(name, precision, scale)
    if oid == PG_BOOL:
        return Column(name, pa.bool_())
    if oid == PG_DATE:
        return Column(name, pa.date32())
    if oid == PG_TIME:
        return Column(name, pa.time64("us"))
    if oid in PG_TIMESTAMPS:
        return Column(name, pa.timestamp("us", tz="UTC"))
    if oid == PG_BYTEA:
        return Column(name, pa.binary(), bytes)
    if oid in PG_TEXT:
        return Column(name, pa.string())
    return Column(name, pa.string(), as_text)


def _pep249(name: str, code, precision: int | None, scale: int | None, dbapi) -> Column:
    import pyarrow as pa

    def kind(attr: str) -> bool:
        marker = getattr(dbapi, attr, None)
        return marker is not None and code == marker

    if kind("DATETIME"):
        return Column(name, pa.timestamp("us", tz="UTC"))
    if kind("BINARY"):
        return Column(name, pa.binary(), bytes)
    if kind("NUMBER"):
        if scale:
            return _decimal(name, precision, scale)
        if scale == 0 and precision is not None:
            return Column(name, pa.int64()) if precision <= 18 else _decimal(name, precision, 0)
        return Column(name, pa.float64())
    return Column(name, pa.string(), as_text)


def _decimal(name: str, precision: int | None, scale: int | None) -> Column:
    """A decimal of the column's precision and scale; text when it has none (an unconstrained
    ``numeric`` holds any scale: no decimal type keeps every value exactly)."""
    import pyarrow as pa

    if precision is None or scale is None or precision == 0:
        return Column(name, pa.string(), as_text)
    if precision <= 38:
        return Column(name, pa.decimal128(precision, scale))
    if precision <= 76:
        return Column(name, pa.decimal256(precision, scale))
    return Column(name, pa.string(), as_text)


def as_text(value) -> str:
    """A value of a type kept as text: JSON for a JSON value or an array, else ``str``."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def arrays(rows, found: list[Column]) -> list[pa.Array]:
    """A chunk of result rows as one Arrow array per column, each of its column's type."""
    import pyarrow as pa

    values = list(zip(*rows, strict=True)) if rows else [() for _ in found]
    out = []
    for column, data in zip(found, values, strict=True):
        if column.convert is not None:
            convert = column.convert
            data = [None if v is None else convert(v) for v in data]
        out.append(pa.array(data, type=column.type))
    return out
