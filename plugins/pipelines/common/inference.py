r"""The kind of a delivered column, guessed by a rule that loses nothing (lossless inference).

A typed column (Parquet, JSON Lines, a timestamp pandas parsed) keeps its type. A text column (a
CSV delivery's) is looked at value by value, nulls aside and each value stripped of the spaces
around it (every character ``str.isspace`` names), and is:

- ``bool`` when every value is ``true`` or ``false``, in any case;
- ``int`` when every value is an integer written as Python prints it, ``0|-?[1-9][0-9]*``
  (:data:`INT`), that fits int64: no leading zero (``007``, ``02134``), no ``+``, no ``-0``, no
  thousands separator, no decimal point and no exponent;
- ``float`` when every value is a decimal number, ``-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?``
  (:data:`FLOAT`), whose float64 is numerically the very decimal the text says, as Python's
  shortest ``repr`` shows it: ``Decimal(repr(float(t))) == Decimal(t)`` (:func:`exact_float`).
  ``1.50``, ``0.1``, ``-0.0``, ``1e3`` and ``7`` are; ``12345678901234567.5``,
  ``0.10000000000000001``, ``1e500`` and ``1e-400`` are not, nor is a text whose exponent has
  18 digits or more;
- ``string`` otherwise: ``inf``, ``nan``, ``.5``, ``5.``, ``+5``, ``1,000``, ``1_000``, ``0x10``.

A primary key column of a text delivery is not guessed that way (:func:`key_kind`): it stays text,
and keys are compared as the text delivered, except that a key whose every value is an ISO 8601
date and time (:data:`KEY_TIME`) is a UTC timestamp, so ``2024-03-01T08:00:00Z`` and
``2024-03-01T10:00:00+02:00`` are one key. A cleaned table written before this rule may hold an
int (or float) key: a delivery whose key text is all lossless in that kind keeps it.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pandas as pd

from pipelines.common import transforms

INT = r"(0|-?[1-9][0-9]*)"
FLOAT = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?"
# a decimal of at most 15 digits and no exponent is always exact (DBL_DIG: every such decimal
# is the shortest repr of its float64); only longer ones are checked one by one
SHORT_DIGITS = 15
INT64 = (-(2**63), 2**63 - 1)
EXPONENT_DIGITS = 18  # 1e100000000000000000 and beyond: no float, and no Decimal either
# an ISO 8601 date and time (naive: UTC) at most at microseconds, the timestamps' precision
KEY_TIME = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
)
FLOAT_TEXT, KEY_TIME_TEXT = re.compile(FLOAT), re.compile(KEY_TIME)


def infer_kind(series: pd.Series, *, sniff: bool = True) -> str:
    """The kind of a column: typed columns keep their type; text is :func:`text_kind` when
    ``sniff``, else ``string``."""
    values = series.dropna()
    if values.empty:
        return "null"
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    decimal = _decimal_kind(series)
    if decimal is not None:
        return decimal
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if str(series.dtype) == transforms.DTYPES["date"] and (values == values.dt.normalize()).all():
        return "date"
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
        return "timestamp"
    return text_kind(values) if sniff else "string"


def _decimal_kind(series: pd.Series) -> str | None:
    """``decimal(p,s)`` for a column of Arrow decimals (a database's ``numeric(p, s)``): its
    digits are kept, never turned into a float."""
    import pyarrow as pa

    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype):
        return f"decimal({dtype.pyarrow_dtype.precision},{dtype.pyarrow_dtype.scale})"
    return None


def text_kind(values: pd.Series) -> str:
    """The kind of text values with no null among them (the module's rule)."""
    text = values.astype("string").str.strip()
    if text.str.lower().isin(transforms.BOOL_TEXT.keys()).all():
        return "bool"
    if not FLOAT_TEXT.fullmatch(text.iloc[0]):  # the first value decides most text columns
        return "string"
    if is_int_text(text).all():
        return "int"
    if is_float_text(text).all():
        return "float"
    return "string"


def is_int_text(text: pd.Series) -> pd.Series:
    """Whether each stripped text is an int by the rule (:data:`INT`, and fits int64)."""
    found = text.str.fullmatch(INT).fillna(False).astype(bool)
    long = found & (text.str.len() >= 19)  # 18 digits always fit
    if long.any():
        fits = {t: INT64[0] <= int(t) <= INT64[1] for t in text[long].unique()}
        found[long] = text[long].map(fits).astype(bool)
    return found


def is_float_text(text: pd.Series) -> pd.Series:
    """Whether each stripped text is a float by the rule (:data:`FLOAT`, and
    :func:`exact_float`)."""
    found = text.str.fullmatch(FLOAT).fillna(False).astype(bool)
    signs = text.str.startswith("-").astype(int) + text.str.contains(".", regex=False)
    digits = text.str.len() - signs
    long = found & ((digits > SHORT_DIGITS) | text.str.contains("[eE]"))
    if long.any():
        exact = {t: exact_float(t) for t in text[long].unique()}
        found[long] = text[long].map(exact).astype(bool)
    return found


def exact_float(text: str) -> bool:
    """Whether the float64 of ``text`` (a :data:`FLOAT`) is the number the text says (an
    exponent of :data:`EXPONENT_DIGITS` digits or more, past what ``Decimal`` holds, is not)."""
    _, _, power = text.lower().partition("e")
    if len(power.lstrip("+-").lstrip("0")) >= EXPONENT_DIGITS:
        return False
    return Decimal(repr(float(text))) == Decimal(text)


def key_kind(values: pd.Series, stored: str | None = None) -> str:
    """The kind of a primary key column of a text delivery (see the module), over its values
    that are neither null nor blank; ``stored``: the key's kind in the cleaned table."""
    text = values.dropna().astype("string").str.strip()
    text = text[text != ""]
    kind = choose_key_kind(
        stored,
        values=len(text),
        ints=int(is_int_text(text).sum()) if stored == "int" else 0,
        floats=int(is_float_text(text).sum()) if stored == "float" else 0,
        times=int(text.str.fullmatch(KEY_TIME).fillna(False).sum()),
    )
    if kind == "timestamp" and transforms.parse_timestamps(text)[1].any():
        return "string"  # shaped as a date and time, and not one (2024-02-30)
    return kind


def choose_key_kind(stored: str | None, *, values: int, ints: int, floats: int, times: int) -> str:
    """:func:`key_kind` from the counts of a key's values (neither null nor blank) that are
    lossless ints, lossless floats and shaped as :data:`KEY_TIME`; ``timestamp`` holds only
    if every one of them parses (the caller's check)."""
    if not values:
        return stored or "null"
    if stored == "int" and ints == values:
        return "int"  # a table written before keys stayed text
    if stored == "float" and floats == values:
        return "float"
    if stored in (None, "null", "timestamp") and times == values:
        return "timestamp"
    return "string"


def key_values(values: pd.Series, kind: str) -> pd.Series:
    """A key column of a text delivery in its :func:`key_kind` (text keys as delivered)."""
    if kind == "timestamp":
        return transforms.parse_timestamps(values)[0]
    if kind in ("int", "float"):
        return transforms.coerce(values, kind)
    return values
