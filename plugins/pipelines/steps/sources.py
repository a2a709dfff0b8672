"""Reading a dataset's source for one interval: local files, ``file://`` and ``s3://`` URIs.

CSV is read as text (raw keeps exactly what the source gave); Parquet and JSON Lines keep their
types. Nothing here is templated or passed to a shell: the location is plain string substitution.

A source with a glob in its path (``landing/{ds}/part-*.csv``) is one delivery of many files:
every file it matches once the dates are filled in, read one by one in name order, their rows one
after the other (columns: the union, null where a file has none, as one file would give them).
"""

from __future__ import annotations

import codecs
import glob
import io
import json
import os
from collections.abc import Callable
from typing import Any

import pandas as pd

from pipelines.common.partitions import Interval, source_for, source_pattern
from pipelines.exceptions import SourceError
from pipelines.lake.storage import reached, retry
from pipelines.project.registry import Dataset, SourceOptions
from pipelines.project.registry_values import is_glob
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
    return [] if pattern.startswith("s3://") else _local_matches(dataset, pattern)


def files(dataset: Dataset, interval: Interval) -> list[str]:
    """The files of the interval's delivery, sorted by name, each as :func:`resolve` gives it: a
    source's one file (there or not), or every file its glob matches now (none: no delivery).
    Folders and hidden files (a name starting with ``.``: partial uploads, checksums) are not
    matched.

    :raises SourceError: a matched file resolves outside include/ (a symlink out of it)
    """
    if not is_glob(dataset.source):
        return [location(dataset, interval)]
    pattern = source_for(dataset.source, interval)
    if pattern.startswith("s3://"):
        return _s3_matches(pattern)
    return _local_matches(dataset, pattern)


def _local_matches(dataset: Dataset, pattern: str) -> list[str]:
    """The files a local pattern (as written, dates filled in or ``*``) matches, sorted by
    name; a path under include/ is matched there, and each match checked by :func:`resolve`."""
    if pattern.startswith("file://"):
        found = glob.glob(pattern.removeprefix("file://"))
        return sorted(path for path in found if not os.path.isdir(path))
    include = environment.include_dir().resolve()
    found = glob.glob(pattern, root_dir=include)  # include/'s own path may hold [ or *
    return [resolve(dataset, rel) for rel in sorted(found) if not (include / rel).is_dir()]


def _s3_matches(pattern: str) -> list[str]:
    """The objects an ``s3://`` glob matches now (listed afresh), sorted by key."""
    conn_id = environment.lake_conn_id()
    fs = s3_filesystem(conn_id)
    key = pattern.removeprefix("s3://")
    found = retry(lambda: fs.glob(key, detail=True, refresh=True), where=reached(pattern, conn_id))
    hidden = key.rsplit("/", 1)[-1].startswith(".")  # a pattern may name hidden files
    return sorted(
        f"s3://{name}"
        for name, info in found.items()
        if info.get("type") == "file" and (hidden or not name.rsplit("/", 1)[-1].startswith("."))
    )


def read_source(dataset: Dataset, interval: Interval) -> pd.DataFrame:
    """The source rows as delivered (whole; filtering by interval happens in extract): a glob's
    files one after the other, in name order, read one at a time.

    :raises SourceError: no file (a glob matching none), or one that is not of its format
    """
    found = files(dataset, interval)
    if not found:
        raise not_delivered(dataset, interval)
    if len(found) == 1:
        return read_file(dataset, interval, found[0])
    if dataset.format == "parquet":
        return _parquet_union(dataset, interval, found)
    frames = [read_file(dataset, interval, where) for where in found]
    frames = [frame for frame in frames if len(frame.columns)]  # an empty file has none
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    return _as_text_where_mixed(frame) if dataset.format == "jsonl" else frame


def first_file(dataset: Dataset, interval: Interval) -> str:
    """The interval's file, or the first (by name) of the files its glob matches: the one
    ``validate --sources`` and ``infer`` open.

    :raises SourceError: a glob that matches no file (no delivery, as a run says)
    """
    found = files(dataset, interval)
    if not found:
        raise not_delivered(dataset, interval)
    return found[0]


def not_delivered(dataset: Dataset, interval: Interval) -> SourceError:
    """The error for an interval whose glob matches no file, naming the pattern (redacted)."""
    where = redact(location(dataset, interval))
    return SourceError(f"{dataset.name}: source for {interval.ds} not found: {where}")


def read_file(dataset: Dataset, interval: Interval, where: str) -> pd.DataFrame:
    """The rows of one file of the interval's delivery, as the extract reads them."""
    return _read(
        dataset, interval, where, lambda data: parse(data, dataset.format, dataset.options)
    )


def _read(dataset: Dataset, interval: Interval, where: str, parsed: Callable[[bytes], Any]):
    """One file's bytes, ``parsed``; a file that is not there, or not of its format, refused."""
    try:
        data = read_bytes(where)
    except FileNotFoundError:
        raise SourceError(
            f"{dataset.name}: source for {interval.ds} not found: {redact(where)}"
        ) from None
    try:
        return parsed(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise unreadable(dataset, where, exc) from None


def _parquet_union(dataset: Dataset, interval: Interval, found: list[str]) -> pd.DataFrame:
    """Parquet files as one table: a column a file lacks is null there, in the others' type (an
    integer column widened to float, as one file's nulls make it); a column of two types that
    have no common one (integer and text) is refused, naming them."""
    import pyarrow as pa

    tables = [_read(dataset, interval, where, _parquet_table) for where in found]
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise unreadable(dataset, location(dataset, interval), exc) from None
    del tables
    return _to_pandas(table)


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
    return _to_pandas(_parquet_table(data))


def _parquet_table(data: bytes):
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


def _to_pandas(table) -> pd.DataFrame:
    # not to_pandas(self_destruct=True): it lowered peak memory but made ~1 process in 7 abort
    # at exit (SIGABRT, "terminate called without an active exception"), pyarrow 26
    return table.to_pandas()


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
