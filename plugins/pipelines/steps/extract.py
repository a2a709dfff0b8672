"""The first step of a dataset's run: its source's delivery for an interval -> raw ``ds=``, exactly
the rows the source gave (or, in a namespace that reads its upstream's raw layer in place, the
check that the upstream holds the delivery)."""

from __future__ import annotations

import logging

import pandas as pd

from pipelines.common import transforms
from pipelines.common.partitions import Interval, Layer
from pipelines.exceptions import LakeError, SchemaDriftError
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot, commit_with_retry
from pipelines.project.registry import Dataset
from pipelines.project.table_config import CONFIG, of_dataset
from pipelines.runtime.secrets import redact
from pipelines.steps import declared, declared_sql, sources, sql_extract, typed_extract

log = logging.getLogger(__name__)


def extract(dataset: Dataset, interval: Interval, lake: Lake) -> dict:
    """Source -> ``raw/{dataset}/ds=...``: exactly the rows the source gave for the interval.

    A per-interval source (``{ds}`` in it) is taken whole; a single incremental source is
    filtered to ``start <= incremental_field < end`` (rows whose field cannot be parsed belong
    to no interval: they are kept, so the merge quarantines them with a reason); a full
    source is the whole snapshot. A namespace that reads its upstream's raw layer in place
    (research) reads no source: it checks the upstream holds the interval's delivery.
    """
    if not lake.owns(Layer.RAW):
        return upstream_delivery(dataset, interval, lake)
    if dataset.sql is not None:
        return _extract_sql(dataset, interval, lake)
    source = typed_extract.source_of(dataset, sources.location(dataset, interval))
    if source is not None and declared_sql.extract_reads_field(dataset):
        done = _extract_typed(dataset, interval, lake, source)
        if done is not None:
            return done
    frame = sources.read_source(dataset, interval).reset_index(drop=True)
    frame["_row"] = pd.RangeIndex(len(frame), dtype="int64")
    read = len(frame)
    if dataset.filtered_source:
        field = dataset.incremental_field
        if len(frame) and declared.header(dataset, field) not in frame.columns:
            raise SchemaDriftError(
                f"{dataset.name}: incremental_field {field!r} is not in the "
                f"source (columns: {', '.join(frame.columns[:-1])})"
            )
        if len(frame):
            inside, unparseable = _by_interval(dataset, frame, field, interval)
            if len(unparseable):  # kept, in delivery order, for the merge to quarantine
                frame = pd.concat([inside, unparseable]).sort_values("_row")
            else:
                frame = inside
    table = lake.raw(dataset.name)
    commit_with_retry(
        table,
        lambda base: table.commit(
            base,
            {interval.ds: frame},
            {CONFIG: of_dataset(dataset)},
            run=(interval.ds, _counted(dataset, len(frame), list(frame.columns), read)),
        ),
    )
    log.info("%s: raw ds=%s: %s rows", dataset.name, interval.ds, len(frame))
    return {"rows": len(frame), "ds": interval.ds}


def _by_interval(
    dataset: Dataset, frame: pd.DataFrame, field: str, interval: Interval
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows whose incremental field falls in the interval, and those whose field cannot be
    read (as its declaration reads it, when it is declared)."""
    epoch = dataset.options.epoch
    if dataset.declared is None:
        inside, unparseable = transforms.filter_interval(
            frame, field, interval.start, interval.end, epoch
        )
        return inside, unparseable.drop(columns="_reason")
    values = pd.DataFrame({"v": declared.field_values(dataset, frame, field)}, index=frame.index)
    inside, unparseable = transforms.filter_interval(
        values, "v", interval.start, interval.end, epoch
    )
    return frame.loc[inside.index], frame.loc[unparseable.index]  # as delivered


def _extract_typed(dataset: Dataset, interval: Interval, lake: Lake, source: str) -> dict | None:
    """The extract of a local Parquet source in DuckDB (None: the pandas path extracts)."""
    table = lake.raw(dataset.name)
    rows: list[int] = []

    def attempt(base: Snapshot) -> Snapshot:
        done = typed_extract.extract(dataset, interval, source, table, base)
        if done is None:
            return base
        snap, rows[:] = done[0], [done[1]]
        meta = {CONFIG: of_dataset(dataset)}
        counted = _counted(dataset, done[1], done[2], done[1] + done[3])
        return table.commit(snap, {}, meta, run=(interval.ds, counted), since=base)

    commit_with_retry(table, attempt)
    if not rows:
        return None
    log.info("%s: raw ds=%s: %s rows (DuckDB)", dataset.name, interval.ds, rows[0])
    return {"rows": rows[0], "ds": interval.ds}


def _extract_sql(dataset: Dataset, interval: Interval, lake: Lake) -> dict:
    """The extract of a database source: its rows of the interval, streamed in chunks."""
    table = lake.raw(dataset.name)
    rows: list[int] = []

    def attempt(base: Snapshot) -> Snapshot:
        snap, written, columns, stray = sql_extract.extract(dataset, interval, table, base)
        rows[:] = [written]
        counted = _counted(dataset, written, columns, written + stray)
        meta = {CONFIG: of_dataset(dataset)}
        return table.commit(snap, {}, meta, run=(interval.ds, counted), since=base)

    commit_with_retry(table, attempt)
    log.info("%s: raw ds=%s: %s rows (database)", dataset.name, interval.ds, rows[0])
    return {"rows": rows[0], "ds": interval.ds}


def _counted(dataset: Dataset, rows: int, columns: list[str], read: int) -> dict:
    """What the raw table records of the day: its rows, the delivery's own columns (a Delta
    table has one schema, so a partition reads back every column any delivery brought, null
    where this one had none) and, from a single incremental source, the source's rows left to
    other intervals (``elsewhere``: the check tells an interval with no rows of its own from a
    source quarantined whole)."""
    counted: dict = {"rows": rows, "columns": columns}
    if dataset.filtered_source:
        counted["elsewhere"] = read - rows
    return counted


def upstream_delivery(dataset: Dataset, interval: Interval, lake: Lake) -> dict:
    """The upstream namespace's raw delivery of the interval, which this namespace's merge reads
    in place (nothing is copied or written).

    :raises LakeError: the upstream has not ingested the interval (yet: Airflow retries)
    """
    table = lake.raw(dataset.name)
    snap = table.snapshot()
    if not snap.has_landed(interval.ds):
        raise LakeError(
            f"{dataset.name}: namespace {lake.upstream!r} holds no raw delivery for "
            f"ds={interval.ds} ({redact(table.path)}); namespace {lake.namespace!r} reads that "
            f"raw layer in place: run {dataset.name} in namespace {lake.upstream!r} for the day "
            "first, or set research's upstream in include/namespaces.yaml"
        )
    log.info(
        "%s: raw ds=%s read in place from namespace %s", dataset.name, interval.ds, lake.upstream
    )
    return {"rows": snap.rows(interval.ds), "ds": interval.ds, "upstream": lake.upstream}
