"""Reading a dataset's source for one interval: local files, ``file://`` and ``s3://`` URIs.

CSV is read as text (raw keeps exactly what the source gave); Parquet and JSON Lines keep their
types. Nothing here is templated or passed to a shell: the location is plain string substitution.
"""

from __future__ import annotations

import codecs
import glob
import io
import json
import os

import pandas as pd

from pipelines.common.partitions import Interval, source_for, source_pattern
from pipelines.exceptions import SourceError
from pipelines.lake.storage import reached, retry
from pipelines.project.registry import Dataset, SourceOptions
from pipelines.runtime import environment
from pipelines.runtime.secrets import redact, s3_filesystem


def location(dataset: Dataset, interval: Interval) -> str:
    """Where the source of ``interval`` is: an absolute path or an ``s3://`` URI."""
    return resolve(dataset, source_for(dataset.source, interval))


def resolve(dataset: Dataset, raw: str) -> str:
    """A source location as written (dates filled in) as an absolute path or ``s3://`` URI."""
    if raw.startswith("s3://"):
        return raw
    if raw.startswith("file://"):
        return raw.removeprefix("file://")
    include = environment.include_dir().resolve()
    path = (include / raw).resolve()
    if include not in path.parents:
        raise SourceError(f"{dataset.name}: source {raw!r} resolves outside include/")
    return str(path)


def deliveries(dataset: Dataset) -> list[str]:
    """Every file a local per-interval source holds now (its pattern, dates as ``*``), sorted,
    each where :func:`resolve` finds it: a run of any of them refuses it as this does.

    :raises SourceError: a file of the pattern resolves outside include/ (a symlink out of it)
    """
    pattern = source_pattern(dataset.source)
    found = sorted(glob.glob(resolve(dataset, pattern)))
    if pattern.startswith(("s3://", "file://")):
        return found
    include = environment.include_dir().resolve()
    return [resolve(dataset, os.path.relpath(path, include)) for path in found]


def read_source(dataset: Dataset, interval: Interval) -> pd.DataFrame:
    """The source rows as delivered (whole file; filtering by interval happens in extract)."""
    where = location(dataset, interval)
    try:
        data = read_bytes(where)
    except FileNotFoundError:
        raise SourceError(
            f"{dataset.name}: source for {interval.ds} not found: {redact(where)}"
        ) from None
    try:
        return parse(data, dataset.format, dataset.options)
    except (ValueError, UnicodeDecodeError) as exc:
        raise unreadable(dataset, where, exc) from None


def unreadable(dataset: Dataset, where: str, exc: Exception) -> SourceError:
    """The error for a source file that is not text in its encoding or not its format: what a
    run says, and ``validate --sources`` with it."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # pandas ends in "\n"
    return SourceError(f"{dataset.name}: cannot read {redact(where)} as {dataset.format}: {reason}")


def read_bytes(where: str, limit: int | None = None) -> bytes:
    """The bytes of a source file (its first ``limit`` bytes when given)."""
    if where.startswith("s3://"):
        conn_id = environment.lake_conn_id()
        fs = s3_filesystem(conn_id)
        key = where.removeprefix("s3://")
        return retry(lambda: fs.cat_file(key, start=0, end=limit), where=reached(where, conn_id))
    with open(where, "rb") as fh:
        return fh.read(limit if limit is not None else -1)


def parse(data: bytes, fmt: str, options: SourceOptions) -> pd.DataFrame:
    """The rows of a source file's bytes, as the extract reads them."""
    if fmt == "csv":
        if not data.strip():
            return pd.DataFrame()
        return pd.read_csv(io.StringIO(text(data, options)), **csv_options(options))
    if fmt == "jsonl":
        if not data.strip():
            return pd.DataFrame()
        text_io = io.StringIO(text(data, options))
        frame = _as_text_where_mixed(
            pd.read_json(text_io, lines=True, dtype=False, convert_dates=False)
        )
        return frame.replace(list(options.nulls), None) if options.nulls else frame
    return _parquet(data)


def text(data: bytes, options: SourceOptions, *, whole: bool = True) -> str:
    """A CSV or JSON Lines source's bytes as text in its encoding.

    :param whole: the bytes are the whole file; False: its first bytes only, so a character cut
        at their end is left out rather than refused
    :raises UnicodeDecodeError: a byte the encoding cannot decode (a run fails on it)
    """
    return codecs.getincrementaldecoder(options.encoding)().decode(data, final=whole)


def csv_options(options: SourceOptions) -> dict:
    """The ``pandas.read_csv`` arguments a CSV source is read with (text, as delivered); DuckDB
    reads it by the same rules (:mod:`.csv_source`)."""
    return {
        "sep": options.delimiter,
        "dtype": "string",
        "keep_default_na": False,
        "na_values": ["", *options.nulls],
        "skip_blank_lines": True,
    }


def _parquet(data: bytes) -> pd.DataFrame:
    import pyarrow.parquet as pq

    # not to_pandas(self_destruct=True): it lowered peak memory but made ~1 process in 7 abort
    # at exit (SIGABRT, "terminate called without an active exception"), pyarrow 26
    return pq.read_table(io.BytesIO(data)).to_pandas()


def _as_text_where_mixed(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON values of different types in one column (``1704103200`` and ``"soon"``) as their
    JSON text: one Parquet column holds one type, and the raw layer keeps every value."""
    for col in frame.columns:
        values = frame[col]
        if values.dtype == object and values.dropna().map(type).nunique() > 1:
            frame[col] = values.map(
                lambda v: v if v is None or isinstance(v, str) else json.dumps(v)
            ).astype("string")
    return frame
