"""The extract of a local source in DuckDB (Parquet, and CSV as text), streamed into the raw table.

The source is read by DuckDB and its rows stream as Arrow batches into the one commit that
replaces the day's ``ds=`` partition: nothing holds the delivery in pandas. The rows and their
``_row`` (the position in the source) are the pandas path's (:mod:`.extract`): a per-interval
source is taken whole; a single incremental source is filtered to
``start <= incremental_field < end``, with the rows whose field is missing or unparseable kept
for the merge to quarantine. A CSV source is read as the pandas path reads it
(:mod:`.csv_source`: raw holds the same text, with the same types and field metadata); its
incremental field is text, parsed batch by batch by the pandas path's own rules
(:func:`~pipelines.common.transforms.kept_by_interval`, one column at a time).

What this path does not do falls back to pandas (:func:`source_of` or :func:`extract` say
None): JSON Lines, a source on S3, a glob's many files, a CSV source into a lake on S3 (a stream
of batches is not retried there), a Parquet incremental field that is not a timestamp, a CSV
file DuckDB would read differently, an empty delivery, a raw table whose columns the source
would change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.common import transforms
from pipelines.common.partitions import Interval
from pipelines.lake import delta, frames
from pipelines.lake.engine import BATCH_ROWS, beside_delta, connect, quoted
from pipelines.lake.tables import Snapshot, Table
from pipelines.project.registry import Dataset
from pipelines.project.registry_values import is_glob
from pipelines.steps.csv_source import CsvSource

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FORMATS = ("parquet", "csv")


def source_of(dataset: Dataset, where: str) -> str | None:
    """The local file the DuckDB path reads (None: the pandas path extracts, as it does a glob's
    many files)."""
    import os

    if dataset.format not in FORMATS or "://" in where or is_glob(dataset.source):
        return None
    return where if os.path.isfile(where) else None


@dataclass
class _Reading:
    """A source as DuckDB reads it: the columns the pandas path gives (an empty frame of them,
    in its dtypes) and the batches of the rows extract keeps, with ``_row`` and ``ds``."""

    empty: pd.DataFrame
    batches: Callable[[], Iterator[pa.RecordBatch]]
    read: list[int]  # the source's rows, kept or not (known once the batches were read)


def extract(
    dataset: Dataset, interval: Interval, source: str, table: Table, base: Snapshot
) -> tuple[Snapshot, int, list[str], int] | None:
    """Replace ``ds=`` of the interval with the source's rows, at the version after ``base``;
    the new version, the rows written, the delivery's columns and the source's rows left to
    other intervals (None: the pandas path must extract).

    :raises CommitConflict: another writer committed to the raw table first
    """
    if dataset.format == "csv" and table.storage.remote:
        return None  # a stream is not retried on the object store; the pandas path's write is
    # one budget for the step: DuckDB reads beside delta-rs's writer (which streams: ~0.3 GiB
    # for 20M rows, measured)
    with connect(beside_delta()) as con:
        read = _parquet if dataset.format == "parquet" else _csv
        reading = read(con, dataset, interval, source)
        if reading is None:
            return None
        target = _target(reading.empty, base)
        if target is None:
            return None
        written = [0]
        added = base.exists and bool(set(target.names) - set(base.schema.names))
        delta.replace(
            table.path,
            table.storage,
            _conformed(reading.batches(), target, written),
            key="ds",
            partitions=[interval.ds],
            base=base.version if base.exists else None,
            reshape="merge" if added else None,
        )
    elsewhere = reading.read[0] - written[0]
    return table.snapshot(), written[0], [*reading.empty.columns, "_row"], elsewhere


def _parquet(con, dataset: Dataset, interval: Interval, source: str) -> _Reading | None:
    """A Parquet source: read, and filtered by its timestamp field, in DuckDB."""
    import pyarrow.parquet as pq

    columns = pq.read_schema(source)
    field = dataset.incremental_field
    filtered = dataset.filtered_source
    if filtered and (field not in columns.names or not _is_stamp(columns.field(field).type)):
        return None
    where = ""
    params = {"src": source, "ds": interval.ds}
    if filtered:
        inc = quoted(field)
        where = f"WHERE ({inc} >= $start AND {inc} < $end) OR {inc} IS NULL"
        params |= {"start": interval.start, "end": interval.end}
    select = (
        "SELECT * EXCLUDE (file_row_number), file_row_number::BIGINT AS _row, "
        f"$ds AS ds FROM read_parquet($src, file_row_number = true) {where}"
    )  # in file order without a sort (preserve_insertion_order): a sort held the whole delivery
    return _Reading(
        columns.empty_table().to_pandas(),  # the frame the pandas path reads (sources._parquet)
        lambda: iter(con.sql(select, params=params).to_arrow_reader(BATCH_ROWS)),
        [pq.read_metadata(source).num_rows],
    )


def _csv(con, dataset: Dataset, interval: Interval, source: str) -> _Reading | None:
    """A CSV source: read as text in DuckDB; ``_row`` counted and the incremental field's text
    filtered batch by batch, by the pandas path's rules."""
    import pandas as pd

    csv = CsvSource.of(source, dataset.options)
    if csv is None or not csv.rows(con):  # an empty delivery: the pandas path writes it
        return None
    field = dataset.incremental_field if dataset.filtered_source else None
    if field is not None and field not in csv.names:
        return None  # the pandas path names the missing field
    keep = None
    if field is not None:
        at, epoch = csv.names.index(field), dataset.options.epoch

        def keep(batch):
            values = batch.column(at).to_pandas().astype("string")
            return transforms.kept_by_interval(values, interval.start, interval.end, epoch)

    read = [0]

    def batches() -> Iterator[pa.RecordBatch]:
        reader = con.sql(csv.select()).to_arrow_reader(BATCH_ROWS)
        yield from _numbered(reader, interval.ds, keep, read)

    empty = pd.DataFrame({n: pd.Series(dtype="string") for n in csv.names})
    return _Reading(empty, batches, read)


def _numbered(reader, ds: str, keep, read: list[int]) -> Iterator[pa.RecordBatch]:
    """The batches with ``_row`` (the position in the source) and ``ds``, only the rows ``keep``
    keeps (all when None); the source's rows are counted into ``read``."""
    import numpy as np
    import pyarrow as pa

    offset = 0
    for batch in reader:
        rows = pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.int64))
        offset += batch.num_rows
        read[0] = offset
        days = pa.array([ds] * batch.num_rows, pa.string())
        batch = pa.RecordBatch.from_arrays(
            [*batch.columns, rows, days], names=[*batch.schema.names, "_row", "ds"]
        )
        if keep is not None:
            batch = batch.filter(pa.array(keep(batch)))
        if batch.num_rows:
            yield batch


def _target(empty: pd.DataFrame, base: Snapshot) -> pa.Schema | None:
    """The raw table's schema for the source's columns (``empty``, in the pandas path's dtypes),
    as the pandas path would write them (None: they would change a column the table has, or
    lack one)."""
    import pyarrow as pa

    empty = empty.copy()
    empty["_row"] = pa.array([], pa.int64()).to_pandas()
    empty["ds"] = pa.array([], pa.string()).to_pandas().astype("str")
    target = frames.to_arrow(empty, None, base.schema).schema
    if not base.exists:
        return target
    _, changed = frames.unify(base.schema, target)
    if changed or set(base.schema.names) - set(target.names):
        return None
    return target


def _is_stamp(type_) -> bool:
    import pyarrow as pa

    return pa.types.is_timestamp(type_)


def _conformed(
    batches: Iterator[pa.RecordBatch], target: pa.Schema, written: list[int]
) -> pa.RecordBatchReader:
    """The batches under the target's names, types and field metadata (by position); the rows
    are counted into ``written``."""
    import pyarrow as pa

    def conform():
        for batch in batches:
            arrays = [
                column.cast(field.type) for column, field in zip(batch.columns, target, strict=True)
            ]
            written[0] += batch.num_rows
            yield pa.RecordBatch.from_arrays(arrays, schema=target)

    return pa.RecordBatchReader.from_batches(target, conform())
