"""Pure pandas transformations: frame in, frame out. Nothing here knows Airflow or the lake.

Columns whose names begin with ``_`` are bookkeeping: ``_ds`` (the delivery a row came in),
``_row`` (its position in that delivery) and ``_reason`` (why a row was quarantined). The kind a
delivered column is guessed to have is :mod:`.inference`'s.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

ORDER = ("_ds", "_row")  # tie-break after the incremental field: later delivery, later row
BOOL_TEXT = {"true": True, "false": False}

# The dtype of each column kind (kinds: null, bool, int, float, date, timestamp, string; see
# widen). A date is a day with no time and no time zone: midnight, at second precision.
DTYPES = {
    "bool": "boolean",
    "int": "Int64",
    "float": "Float64",
    "string": "string",
    "date": "datetime64[s]",
    "timestamp": "datetime64[us, UTC]",
}


DECIMAL_KIND = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


def decimal_shape(kind: str) -> tuple[int, int] | None:
    """``(precision, scale)`` of a declared ``decimal(p,s)`` kind; None for the other kinds."""
    match = DECIMAL_KIND.fullmatch(kind or "")
    return (int(match[1]), int(match[2])) if match else None


def dtype_of(kind: str):
    """The pandas dtype of a kind; a declared ``decimal(p,s)`` is an Arrow decimal (no digit
    lost)."""
    shape = decimal_shape(kind)
    if shape is not None:
        import pyarrow as pa

        return pd.ArrowDtype(pa.decimal128(*shape))
    return DTYPES.get(kind, "string")


def widen(stored: str, new: str) -> str | None:
    """The kind both fit in, or None when the change is incompatible."""
    if stored == new or new == "null":
        return stored
    if stored == "null":
        return new
    if {stored, new} == {"int", "float"}:
        return "float"
    if {stored, new} == {"date", "timestamp"}:
        return "timestamp"
    if stored == "string":
        return "string"
    return None


def coerce(series: pd.Series, kind: str) -> pd.Series:
    """Convert a column to a kind; raises ValueError naming a value that does not fit."""
    if kind == "null":
        return series.astype("string")
    if kind in ("timestamp", "date"):
        parsed, bad = parse_timestamps(series)
        bad &= series.notna()  # a missing value is null here, not a value that does not fit
        if bad.any():
            raise ValueError(f"{series[bad].iloc[0]!r} is not an ISO 8601 timestamp")
        return parsed if kind == "timestamp" else as_dates(parsed)
    if kind == "bool" and not pd.api.types.is_bool_dtype(series):
        text = series.astype("string").str.strip().str.lower()
        mapped = text.map(BOOL_TEXT, na_action="ignore")
        bad = text.notna() & mapped.isna()
        if bad.any():
            raise ValueError(f"{series[bad].iloc[0]!r} is not true/false")
        return mapped.astype("boolean")
    if kind in ("int", "float") and not pd.api.types.is_numeric_dtype(series):
        numbers = pd.to_numeric(series.astype("string").str.strip(), errors="coerce")
        bad = series.notna() & numbers.isna()
        if bad.any():
            raise ValueError(f"{series[bad].iloc[0]!r} is not a number")
        series = numbers
    if kind == "string" and not pd.api.types.is_string_dtype(series):
        return series.astype("string")
    return series.astype(dtype_of(kind))


def as_kinds(frame: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with every column of ``kinds`` present and in its kind's dtype (changed in
    place): partitions written before a column was added or widened read like the table as it
    is now. Other columns are left as they are."""
    if frame.empty:
        return frame
    for col, kind in kinds.items():
        dtype = dtype_of(kind)
        if col not in frame.columns:
            frame[col] = pd.Series(pd.NA, index=frame.index, dtype=dtype)
        elif str(frame[col].dtype) != str(dtype):
            frame[col] = coerce(frame[col], kind)
    return frame


DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
UNPARSEABLE = "missing or not an ISO 8601 timestamp"  # nor a number of epoch units
NUMBER = r"-?\d+(?:\.\d+)?"


def parse_timestamps(series: pd.Series, epoch_unit: str = "s") -> tuple[pd.Series, pd.Series]:
    """Timestamps as UTC (naive = UTC); also the mask of values that cannot be parsed.

    Text is ISO 8601; a number (a numeric column, or text that is only a number and not an ISO
    date such as ``20240102``) counts ``epoch_unit`` since 1970-01-01 UTC.
    """
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        parsed = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_any_dtype(series):
        parsed = series.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        parsed = _from_epoch(series, epoch_unit)
        return parsed.astype(DTYPES["timestamp"]), series.isna() | parsed.isna()
    else:
        text = series.astype("string").str.strip()
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        failed = text.notna() & (text != "") & parsed.isna()
        if failed.any():  # only then: numbers among the values that are not ISO dates
            candidates = text[failed]
            numbers = candidates.index[candidates.str.fullmatch(NUMBER).fillna(False)]
            if len(numbers):
                parsed = parsed.astype(DTYPES["timestamp"])  # a copy, at the table's precision
                parsed.loc[numbers] = _from_epoch(candidates.loc[numbers], epoch_unit)
                failed.loc[numbers] = parsed.loc[numbers].isna()
        return parsed.astype(DTYPES["timestamp"]), failed | (text == "")
    # a typed timestamp column's missing value is missing, as an empty text value is
    return parsed.astype(DTYPES["timestamp"]), series.isna()


def _from_epoch(numbers: pd.Series, unit: str) -> pd.Series:
    """Numbers of ``unit`` since the epoch as UTC timestamps (NaT where out of range)."""
    values = pd.to_numeric(numbers, errors="coerce").astype("float64")
    stamps = pd.to_datetime(values, unit=unit, utc=True, errors="coerce")
    return stamps.dt.floor("us").astype(DTYPES["timestamp"])


def filter_interval(
    frame: pd.DataFrame, field: str, start: dt.datetime, end: dt.datetime, epoch_unit: str = "s"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with ``start <= field < end``; and, separately, rows whose field cannot be parsed."""
    inside, unparseable = _interval_masks(frame[field], start, end, epoch_unit)
    unparseable = frame[unparseable].assign(_reason=f"{field}: {UNPARSEABLE}")
    return (frame if inside.all() else frame[inside]), unparseable


def kept_by_interval(
    values: pd.Series, start: dt.datetime, end: dt.datetime, epoch_unit: str = "s"
) -> np.ndarray:
    """The rows :func:`filter_interval` keeps in either of its parts, as a mask: the field
    inside the interval, or not parseable. Each value decides alone, so a delivery can be
    filtered in batches."""
    inside, unparseable = _interval_masks(values, start, end, epoch_unit)
    return (inside | unparseable).to_numpy(dtype=bool)


def _interval_masks(
    values: pd.Series, start: dt.datetime, end: dt.datetime, epoch_unit: str
) -> tuple[pd.Series, pd.Series]:
    parsed, bad = parse_timestamps(values, epoch_unit)
    inside = (parsed >= pd.Timestamp(start)) & (parsed < pd.Timestamp(end))
    return inside.fillna(False).astype(bool), (bad | parsed.isna()).astype(bool)


def quarantine_invalid(
    frame: pd.DataFrame,
    primary_key: Sequence[str],
    timestamp_fields: Sequence[str],
    epoch_unit: str = "s",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off rows with a null key part or an unparseable timestamp field, with a ``_reason``.

    The kept rows have their timestamp fields parsed to UTC; the split-off rows keep the values
    as delivered (the text that did not parse, to be read in quarantine).
    """
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    for col in primary_key:
        null = frame[col].isna()
        if not pd.api.types.is_numeric_dtype(frame[col]):
            null |= frame[col].astype("string").str.strip() == ""
        reasons = reasons.mask(null & reasons.isna(), f"{col}: primary key is null")
    parsed = {}
    for col in dict.fromkeys(timestamp_fields):
        parsed[col], bad = parse_timestamps(frame[col], epoch_unit)
        reasons = reasons.mask(bad & reasons.isna(), f"{col}: {UNPARSEABLE}")
    delivered, frame = frame, frame.assign(**parsed)  # copy-on-write: only the parsed are new
    bad_rows = reasons.notna()
    if not bad_rows.any():
        return frame, delivered.iloc[0:0].assign(_reason=reasons.iloc[0:0])
    return frame[~bad_rows], delivered[bad_rows].assign(_reason=reasons[bad_rows])


def latest_per_key(
    frame: pd.DataFrame, primary_key: Sequence[str], order: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per key: the greatest by ``order`` (e.g. incremental field, delivery, row).

    Returns (winners, superseded). Deterministic whatever the input order.
    """
    if frame.empty:
        return frame, frame.iloc[0:0]
    # a hash pass finds the keys that occur more than once; only those rows are ranked (a
    # stable C-level sort by the order columns), the rest are winners as they are
    clash = frame.duplicated(subset=list(primary_key), keep=False)
    if not clash.any():
        return frame, frame.iloc[0:0]
    kept, superseded = _ranked_winners(frame, clash.to_numpy(), primary_key, order)
    return frame.take(kept), frame.take(superseded)  # one copy each, not a mask and a concat


def _ranked_winners(
    frame: pd.DataFrame, clash: np.ndarray, primary_key: Sequence[str], order: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the winners (the unclashed rows in frame order, then the ranked winners)
    and of the superseded rows (ranked), given the mask of rows whose key occurs twice."""
    rivals = np.flatnonzero(clash)
    ranking = frame.iloc[rivals]
    ranked = rivals[np.lexsort([_sort_key(ranking[c]) for c in reversed(order)])]
    last = ~frame[list(primary_key)].take(ranked).duplicated(keep="last").to_numpy()
    return np.concatenate([np.flatnonzero(~clash), ranked[last]]), ranked[~last]


def _sort_key(series: pd.Series) -> np.ndarray:
    """A numpy array that sorts like the column (nulls first)."""
    if series.dtype.kind == "M":
        return series.to_numpy(dtype="datetime64[ns]").view("int64")
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype="float64", na_value=-np.inf)
    codes, _ = pd.factorize(series, sort=True, use_na_sentinel=True)
    return codes


def key_faults(frame: pd.DataFrame, primary_key: Sequence[str]) -> tuple[int, int]:
    """(rows with a null key part, rows whose key an earlier row already has)."""
    pk = list(primary_key)
    return int(frame[pk].isna().any(axis=1).sum()), int(frame.duplicated(subset=pk).sum())


def upsert(
    current: pd.DataFrame, delta: pd.DataFrame, primary_key: Sequence[str], order: Sequence[str]
) -> pd.DataFrame:
    """Merge a delta into current rows by key: the greatest ``order`` wins, whichever came first.

    The merge itself uses :func:`upsert_partitions`; this is the plain rule it is tested against
    (``tests/unit/test_merge_kernels.py``)."""
    winners, _ = latest_per_key(_combined(current, delta), primary_key, order)
    return winners


def upsert_partitions(
    current: pd.DataFrame,
    delta: pd.DataFrame,
    primary_key: Sequence[str],
    order: Sequence[str],
    partition: str,
) -> dict[str, pd.DataFrame]:
    """:func:`upsert`, split by the ``partition`` column: each partition's rows in key order
    with a fresh index, without that column (what :func:`sort_rows` gives each group).

    The winners are sorted once by (partition, key) and taken once; each partition is a slice
    of that (no copy), so a million-row merge copies its rows once instead of three times.
    """
    combined = _combined(current, delta)
    if combined.empty:
        return {}
    clash = combined.duplicated(subset=list(primary_key), keep=False).to_numpy()
    kept = _ranked_winners(combined, clash, primary_key, order)[0] if clash.any() else None
    columns = [partition, *primary_key]  # only these are copied to rank the winners
    keyed = combined[columns] if kept is None else combined[columns].take(kept)
    by_key = np.lexsort([_sort_key(keyed[c]) for c in reversed(columns)])
    rows = combined.take(by_key if kept is None else kept[by_key])
    labels = rows[partition].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    rows = rows.drop(columns=partition)
    return {
        labels[s]: rows.iloc[s:e].reset_index(drop=True) for s, e in zip(starts, ends, strict=True)
    }


def _combined(current: pd.DataFrame, delta: pd.DataFrame) -> pd.DataFrame:
    if current.empty:
        return delta
    if delta.empty:
        return current
    return pd.concat([current, delta], ignore_index=True)


def sort_rows(frame: pd.DataFrame, primary_key: Sequence[str]) -> pd.DataFrame:
    """Rows in key order with a fresh index: equal data gives equal files."""
    order = np.lexsort([_sort_key(frame[c]) for c in reversed(list(primary_key))])
    return frame.take(order).reset_index(drop=True)


def is_date_only(delivered: pd.Series, parsed: pd.Series) -> bool:
    """Whether timestamps were delivered as dates (``2024-01-02``: ten characters, midnight UTC;
    or a column of dates, a database's ``date``) rather than times. ``parsed`` holds the rows
    kept, by the index of ``delivered``; the first kept value decides cheaply for a delivery of
    times (a million rows: no work at all)."""
    parsed = parsed.dropna()
    if not parsed.empty and str(delivered.dtype) == DTYPES["date"]:  # typed dates (a database's)
        return bool((parsed == parsed.dt.normalize()).all())
    if parsed.empty or not DATE_TEXT.fullmatch(str(delivered.at[parsed.index[0]]).strip()):
        return False
    text = delivered.loc[parsed.index].astype("string").str.strip()
    shaped = (text.str.len() == 10) & (text.str.get(4) == "-") & (text.str.get(7) == "-")
    return bool(shaped.all() and (parsed == parsed.dt.normalize()).all())


def as_dates(parsed: pd.Series) -> pd.Series:
    """Timestamps (UTC) as the dates they fall on, with no time zone."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.dt.normalize().astype(DTYPES["date"])


def date_key(series: pd.Series) -> pd.Series:
    """The UTC calendar date of timestamps (or the dates) as ``YYYY-MM-DD`` text (each distinct
    day formatted once: a delivery spans few days)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC")
    days = series.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    codes, uniques = pd.factorize(days)
    labels = np.array([str(day) for day in uniques] + [pd.NA], dtype=object)
    return pd.Series(labels[codes], index=series.index, dtype="string")


METRICS = {
    "count": lambda g, col: g.size(),
    "sum": lambda g, col: g[col].sum(min_count=1),
    "mean": lambda g, col: g[col].mean(),
    "min": lambda g, col: g[col].min(),
    "max": lambda g, col: g[col].max(),
    "count_distinct": lambda g, col: g[col].nunique(dropna=True),
}


def aggregate(
    frame: pd.DataFrame, group_by: Sequence[str], metrics: Mapping[str, tuple[str, str | None]]
) -> pd.DataFrame:
    """Group rows by ``group_by`` and compute ``{output: (function, column)}``.

    Nulls are skipped by every metric but ``count``, which counts rows. Group keys that are null
    form their own group.
    """
    keys = list(group_by)
    if frame.empty:
        return pd.DataFrame(columns=[*keys, *metrics])
    grouped = frame.groupby(keys, dropna=False, sort=True)
    out = pd.DataFrame({name: METRICS[fn](grouped, col) for name, (fn, col) in metrics.items()})
    return out.reset_index()
