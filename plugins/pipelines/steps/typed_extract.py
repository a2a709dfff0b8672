"""The extract of a typed source (a local Parquet file) in DuckDB, streamed into the raw table.

The source is read by DuckDB and its rows stream as Arrow batches into the one commit that
replaces the day's ``ds=`` partition: nothing holds the delivery in pandas. The rows and their
``_row`` (the position in the source) are the pandas path's (:mod:`.extract`): a per-interval
source is taken whole; a single incremental source is filtered to
``start <= incremental_field < end``, with the rows whose field is missing kept for the merge to
quarantine. What this path does not do falls back to pandas (:func:`source_of` says None): text
sources, a source on S3, an incremental field that is not a timestamp, a raw table whose columns
the source would change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.common.partitions import Interval
from pipelines.lake import delta, frames
from pipelines.lake.engine import BATCH_ROWS, connect, quoted, run
from pipelines.lake.tables import Snapshot, Table
from pipelines.project.registry import Dataset
from pipelines.runtime import environment

if TYPE_CHECKING:
    import pyarrow as pa


def source_of(dataset: Dataset, where: str) -> str | None:
    """The local Parquet file the typed path reads (None: the pandas path extracts)."""
    import os

    if dataset.format != "parquet" or "://" in where or not os.path.isfile(where):
        return None
    return where


def extract(
    dataset: Dataset, interval: Interval, source: str, table: Table, base: Snapshot
) -> tuple[Snapshot, int, list[str]] | None:
    """Replace ``ds=`` of the interval with the source's rows, at the version after ``base``;
    the new version, the rows written and the delivery's columns (None: the pandas path must
    extract).

    :raises CommitConflict: another writer committed to the raw table first
    """
    import pyarrow.parquet as pq

    columns = pq.read_schema(source)
    target = _target(columns, base)
    if target is None:
        return None
    field = dataset.incremental_field
    filtered = dataset.ingestion.filters_by_interval and not dataset.per_interval_source
    if filtered and (field not in columns.names or not _is_stamp(columns.field(field).type)):
        return None
    where = ""
    if filtered:
        inc = quoted(field)
        where = f"WHERE ({inc} >= $start AND {inc} < $end) OR {inc} IS NULL"
    # one budget for the step: DuckDB reads beside delta-rs's writer (which streams: ~0.3 GiB
    # for 20M rows, measured); in file order without a sort (preserve_insertion_order), so
    # nothing holds the delivery: an ORDER BY _row made DuckDB hold all of it (3.6 GiB at 20M)
    with connect(environment.memory_limit() // 2) as con:
        params = {"src": source}
        if filtered:
            params |= {"start": interval.start, "end": interval.end}
        select = (
            "SELECT * EXCLUDE (file_row_number), file_row_number::BIGINT AS _row, "
            f"$ds AS ds FROM read_parquet($src, file_row_number = true) {where}"
        )
        params["ds"] = interval.ds
        rows = run(con, f"SELECT count(*) FROM ({select})", params)[0][0]
        reader = con.sql(select, params=params).to_arrow_reader(BATCH_ROWS)
        stream = _conformed(reader, target)
        added = base.exists and bool(set(target.names) - set(base.schema.names))
        delta.replace(
            table.path,
            table.storage,
            stream,
            key="ds",
            partitions=[interval.ds],
            base=base.version if base.exists else None,
            reshape="merge" if added else None,
        )
    return table.snapshot(), rows, [*columns.names, "_row"]


def _target(columns: pa.Schema, base: Snapshot) -> pa.Schema | None:
    """The raw table's schema for these source columns, as the pandas path would write them
    (None: they would change a column the table has, or lack one)."""
    import pyarrow as pa

    empty = columns.empty_table().to_pandas()
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


def _conformed(reader: pa.RecordBatchReader, target: pa.Schema) -> pa.RecordBatchReader:
    """The batches under the target's names, types and field metadata (by position)."""
    import pyarrow as pa

    def batches():
        for batch in reader:
            arrays = [
                column.cast(field.type) for column, field in zip(batch.columns, target, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=target)

    return pa.RecordBatchReader.from_batches(target, batches())
