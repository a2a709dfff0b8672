"""Reading a dataset's source for one interval: local files, ``file://`` and ``s3://`` URIs.

CSV is read as text (raw keeps exactly what the source gave); Parquet and JSON Lines keep their
types. Nothing here is templated or passed to a shell: the location is plain string substitution.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from pipelines.components import environment
from pipelines.components.resources import read_parquet_bytes
from pipelines.components.secrets import redact, s3_filesystem
from pipelines.components.storage import retry
from pipelines.exceptions import SourceError
from pipelines.partitions import Interval, source_for
from pipelines.registry import Dataset


def location(dataset: Dataset, interval: Interval) -> str:
    """Where the source of ``interval`` is: an absolute path or an ``s3://`` URI."""
    raw = source_for(dataset.source, interval)
    if raw.startswith("s3://"):
        return raw
    if raw.startswith("file://"):
        return raw.removeprefix("file://")
    include = environment.include_dir().resolve()
    path = (include / raw).resolve()
    if include not in path.parents:
        raise SourceError(f"{dataset.name}: source {raw!r} resolves outside include/")
    return str(path)


def read_source(dataset: Dataset, interval: Interval) -> pd.DataFrame:
    """The source rows as delivered (whole file; filtering by interval happens in extract)."""
    where = location(dataset, interval)
    try:
        data = _read_bytes(where)
    except FileNotFoundError:
        raise SourceError(
            f"{dataset.name}: source for {interval.ds} not found: {redact(where)}"
        ) from None
    try:
        return _parse(data, dataset.format)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{dataset.name}: cannot read {redact(where)} as {dataset.format}: {exc}"
        ) from None


def _read_bytes(where: str) -> bytes:
    if where.startswith("s3://"):
        fs = s3_filesystem(environment.lake_conn_id())
        return retry(lambda: fs.cat_file(where.removeprefix("s3://")))
    return Path(where).read_bytes()


def _parse(data: bytes, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        if not data.strip():
            return pd.DataFrame()
        text = data.decode("utf-8-sig")
        return pd.read_csv(
            io.StringIO(text),
            dtype="string",
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=True,
        )
    if fmt == "jsonl":
        if not data.strip():
            return pd.DataFrame()
        return pd.read_json(io.BytesIO(data), lines=True, dtype=False, convert_dates=False)
    return read_parquet_bytes(data)
