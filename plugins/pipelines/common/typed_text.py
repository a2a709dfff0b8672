"""A delivered column read as a declared type (``columns.yaml``): text in, typed values out, with
the mask of the values that do not fit. Pure pandas; nothing here knows the lake.

Kinds are the typing code's (:data:`pipelines.common.transforms.DTYPES`) plus ``decimal(p,s)``,
held as an Arrow decimal so no digit is lost. A missing value (null, or text that is empty once
stripped) is null and fits every type; ``not_null`` is a test, not a type. A declared type reads
what a user wrote, so unlike the inference it takes leading zeros (``007`` as the integer 7),
a ``+`` and, with a ``format``, a decimal comma and thousands marks. It never rounds: a decimal
with more places than its scale, an integer past 64 bits or a float that is not a number does
not fit.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re

import pandas as pd

from pipelines.common import transforms

INTEGER = re.compile(r"^[+-]?\d+$")
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
INT64 = (-(2**63), 2**63 - 1)
WORDS = (("true",), ("false",))


def describe(kind: str, fmt=None) -> str:
    """How a reason names the type a value did not fit: ``a date (format %m/%d/%Y)``."""
    name = {
        "string": "text",
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "date": "a date",
        "timestamp": "a timestamp",
    }.get(kind, f"a {kind}")
    if isinstance(fmt, str):
        return f"{name} (format {fmt})"
    if isinstance(fmt, tuple):
        return f"one of {', '.join(fmt[0] + fmt[1])}"
    if fmt is not None and getattr(fmt, "decimal", ".") != ".":
        return f"{name} (decimal mark {fmt.decimal!r})"
    return name


def parse(series: pd.Series, kind: str, fmt=None) -> tuple[pd.Series, pd.Series]:
    """``series`` as ``kind`` and the mask of values that do not fit (null in the result)."""
    if kind == "string":
        return _text(series), pd.Series(False, index=series.index)
    typed_ok = _already(series, kind)
    if typed_ok is not None:
        return typed_ok
    text = _text(series).str.strip()
    missing = text.isna() | (text == "")
    if kind in ("int", "float") or transforms.decimal_shape(kind):
        values = _numbers(text.mask(missing), kind, fmt)
    elif kind == "bool":
        values = _booleans(text.mask(missing), fmt or WORDS)
    elif kind in ("date", "timestamp"):
        values = _instants(text.mask(missing), kind, fmt)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return values, (~missing.fillna(True).astype(bool)) & values.isna().to_numpy(dtype=bool)


def _text(series: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
        return series.astype("string")
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.astype("string")
    return series.map(
        lambda v: v if v is None or v is pd.NA else str(v), na_action="ignore"
    ).astype("string")


def _already(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series] | None:
    """A typed column (Parquet, JSON Lines) that already holds ``kind``'s values."""
    none = pd.Series(False, index=series.index)
    if kind == "int" and pd.api.types.is_integer_dtype(series):
        return series.astype("Int64"), none
    if kind == "float" and pd.api.types.is_numeric_dtype(series) and series.dtype != bool:
        return series.astype("Float64"), none
    if kind == "bool" and pd.api.types.is_bool_dtype(series):
        return series.astype("boolean"), none
    if kind in ("date", "timestamp") and pd.api.types.is_datetime64_any_dtype(series):
        parsed, _ = transforms.parse_timestamps(series)
        return (transforms.as_dates(parsed) if kind == "date" else parsed), none
    return None


def _numbers(text: pd.Series, kind: str, fmt) -> pd.Series:
    if fmt is not None:
        if fmt.thousands:  # only marks between groups of three digits, as written by hand
            t, d = re.escape(fmt.thousands), re.escape(fmt.decimal)
            grouped = text.str.fullmatch(rf"[+-]?\d{{1,3}}({t}\d{{3}})+({d}\d*)?").fillna(False)
            plain = ~text.str.contains(fmt.thousands, regex=False).fillna(False)
            text = text.where(grouped | plain).str.replace(fmt.thousands, "", regex=False)
        if fmt.decimal != ".":
            text = text.where(~text.str.contains(".", regex=False)).str.replace(
                fmt.decimal, ".", regex=False
            )
    shape = transforms.decimal_shape(kind)
    if shape is not None:
        return _decimals(text, *shape)
    if kind == "int":
        ok = text.str.fullmatch(INTEGER.pattern).fillna(False)
        values = [int(v) if good else None for v, good in zip(text, ok, strict=True)]
        values = [v if v is None or INT64[0] <= v <= INT64[1] else None for v in values]
        return pd.Series(values, index=text.index, dtype="object").astype("Int64")
    ok = text.str.fullmatch(NUMBER.pattern).fillna(False)
    numbers = pd.to_numeric(text.where(ok), errors="coerce")
    return numbers.astype("Float64")


def _decimals(text: pd.Series, precision: int, scale: int) -> pd.Series:
    import pyarrow as pa

    quantum = decimal.Decimal(1).scaleb(-scale)
    values = []
    for value in text:
        if value is None or value is pd.NA or not NUMBER.match(value):
            values.append(None)
            continue
        number = decimal.Decimal(value)
        exact = number.quantize(quantum, rounding=decimal.ROUND_DOWN) == number
        digits = len(number.quantize(quantum).as_tuple().digits)
        values.append(number.quantize(quantum) if exact and digits <= precision else None)
    array = pa.array(values, type=pa.decimal128(precision, scale))
    return pd.Series(array, index=text.index, dtype=pd.ArrowDtype(array.type))


def _booleans(text: pd.Series, words) -> pd.Series:
    true, false = words
    lowered = text.str.lower()
    mapping = {**dict.fromkeys(false, False), **dict.fromkeys(true, True)}
    return lowered.map(mapping, na_action="ignore").astype("boolean")


def _instants(text: pd.Series, kind: str, fmt: str | None) -> pd.Series:
    if fmt is not None:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        parsed = parsed.astype(transforms.DTYPES["timestamp"])
    else:
        parsed, _ = transforms.parse_timestamps(text)
    if kind == "timestamp":
        return parsed
    midnight = parsed.isna() | (parsed == parsed.dt.normalize())
    return transforms.as_dates(parsed.where(midnight))


def bound(value, kind: str):
    """A test's bound or accepted value (as YAML gave it) as a value of ``kind``."""
    if isinstance(value, dt.datetime | dt.date):
        value = value.isoformat()
    typed, bad = parse(pd.Series([str(value)], dtype="string"), kind)
    if bad.iloc[0]:
        raise ValueError(f"{value!r} is not {describe(kind)}")
    return typed.iloc[0]
