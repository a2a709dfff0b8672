"""The aggregate step (task ``aggregate.aggregate``): cleaned partitions -> the business tables of
``aggregates.yaml``.

Every cleaned partition a run touched is recomputed whole, so reruns and any run order give the
same result. Incremental datasets aggregate by their ``dt`` partitions. Full datasets aggregate
their newest snapshot by the date of partition_field (the table is replaced, so rows that
disappeared from the source disappear here too), or, without a partition_field, each snapshot into
``dt`` = its ``ds``.

The grouping runs in DuckDB over the partitions' files (:mod:`.aggregate_sql`) wherever it gives
this module's pandas result exactly; the rest is computed here, which stays the reference.
"""

from __future__ import annotations

import logging

import pandas as pd

from pipelines.common import transforms
from pipelines.common.partitions import Ingestion, Interval
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot, Table, commit_with_retry
from pipelines.project.aggregates import AggregateSpec
from pipelines.project.config import Project
from pipelines.project.registry import Dataset
from pipelines.project.table_config import CONFIG, of_aggregate
from pipelines.steps import aggregate_sql
from pipelines.steps.merge import MergeResult

log = logging.getLogger(__name__)


def aggregate(
    dataset: Dataset, interval: Interval, lake: Lake, merged: MergeResult, project: Project
) -> dict:
    """Recompute every aggregate of the dataset for the partitions the merge touched.

    A column the cleaned table does not have yet (one a later delivery brings) reads as null
    (:func:`with_later_columns`): the days before it aggregate, and the merge that adds it
    recomputes every partition.
    """
    touched = merged.touched
    if merged.reshaped:  # every cleaned partition reads differently now: recompute each
        cleaned = lake.cleaned(dataset)
        touched = sorted(cleaned.snapshot().partitions)
    return {
        spec.name: build(spec, dataset, lake, touched, interval.ds, whole=bool(merged.reshaped))
        for spec in project.aggregates_of(dataset.name)
    }


def build(
    spec: AggregateSpec,
    dataset: Dataset,
    lake: Lake,
    touched: list[str],
    ds: str | None = None,
    *,
    whole: bool = False,
) -> dict:
    """Recompute the aggregate's partitions for what the run touched; returns row counts.

    :param ds: the day of the run (recorded as landed in the aggregated table)
    :param whole: ``touched`` is every cleaned partition, recomputed because the cleaned table
        changed shape: the aggregated table takes the types of its new rows (a column that was
        null before a delivery brought it has its own type now, as in any order of the days)

    The cleaned rows are read inside the commit attempt, after the aggregated table's version
    was taken: when two runs aggregate the same partition at once, the one computed from older
    cleaned data cannot commit last (it conflicts and recomputes).
    """
    cleaned = lake.cleaned(dataset)
    out = lake.aggregated(spec.name)
    computed: dict[str, pd.DataFrame | None] = {}

    def attempt(base: Snapshot) -> Snapshot:
        changes, replace_all = _changes(spec, dataset, cleaned, touched)
        computed.clear()
        computed.update(changes)
        full = dict(changes)
        if replace_all:
            full.update({p: None for p in base.partitions if p not in changes})
        counted = {"rows": sum(len(f) for f in changes.values() if f is not None)}
        meta = {CONFIG: of_aggregate(spec)}
        run = (ds, counted) if ds else None
        return out.commit(base, full, meta, run=run, retype=whole)

    snap = commit_with_retry(out, attempt)
    return {
        "partitions": sorted(p for p, f in computed.items() if f is not None),
        "rows": sum(len(f) for f in computed.values() if f is not None),
        "total_rows": snap.rows(),
    }


def _changes(
    spec: AggregateSpec, dataset: Dataset, cleaned: Table, touched: list[str]
) -> tuple[dict[str, pd.DataFrame | None], bool]:
    """The aggregate's new partitions from the current cleaned table; True = replace all.

    DuckDB computes them where it gives the pandas path's result exactly; the rest is computed
    here in pandas (:mod:`.aggregate_sql` says which)."""
    computed = aggregate_sql.changes(spec, dataset, cleaned, touched)
    if computed is not None:
        return computed
    return _RECOMPUTE[dataset.ingestion](spec, dataset, cleaned, touched)


def _by_day(
    spec: AggregateSpec, dataset: Dataset, cleaned: Table, touched: list[str]
) -> tuple[dict[str, pd.DataFrame | None], bool]:
    """Incremental: each touched ``dt`` partition of cleaned gives the same ``dt`` here."""
    return _by_partition(spec, cleaned.read_current(touched), touched), False


def _from_snapshots(
    spec: AggregateSpec, dataset: Dataset, cleaned: Table, touched: list[str]
) -> tuple[dict[str, pd.DataFrame | None], bool]:
    """Full: the newest snapshot by the date of partition_field, replacing the whole table; or,
    without a partition_field, each touched snapshot ``ds`` into ``dt`` = its ``ds``."""
    if dataset.partition_field:
        current = dataset.ingestion.current_partitions(cleaned.snapshot().partitions)
        rows = cleaned.read_current(current)
        if not rows.empty:
            rows["dt"] = transforms.date_key(rows[dataset.partition_field])
        return _by_partition(spec, rows, sorted(set(rows.get("dt", [])))), True
    changes: dict[str, pd.DataFrame | None] = {}
    for snapshot in touched:  # each snapshot ds gives dt = ds, one at a time (all, on a widening)
        rows = cleaned.read_current([snapshot]).rename(columns={"ds": "dt"})
        changes.update(_by_partition(spec, rows, [snapshot]))
    return changes, False


def _by_partition(
    spec: AggregateSpec, rows: pd.DataFrame, partitions: list[str]
) -> dict[str, pd.DataFrame | None]:
    rows = with_later_columns(spec, rows)
    result = (
        transforms.aggregate(rows, ["dt", *spec.group_by], spec.metric_map)
        if not rows.empty
        else pd.DataFrame(columns=["dt"])
    )
    changes: dict[str, pd.DataFrame | None] = {}
    for part in partitions:
        frame = result[result["dt"] == part].drop(columns="dt").reset_index(drop=True)
        changes[part] = frame if not frame.empty else None
    return changes


def with_later_columns(spec: AggregateSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with every column the aggregate reads: one the cleaned table does not have (no
    delivery brought it yet) is null, a number where the aggregate sums or averages it, text
    elsewhere, as a delivery without the column reads once the table has it."""
    missing = sorted(spec.columns - set(rows.columns))
    if rows.empty or not missing:
        return rows
    absent = ", ".join(map(repr, missing))
    log.warning("%s: not in dataset %s (yet), read as null: %s", spec.name, spec.dataset, absent)
    numbers = {col for _, fn, col in spec.metrics if fn in ("sum", "mean")}
    nulls = {
        c: pd.Series(pd.NA, index=rows.index, dtype="Float64" if c in numbers else "string")
        for c in missing
    }
    return rows.assign(**nulls)


# which cleaned partitions each kind recomputes, and how (one strategy per kind)
_RECOMPUTE = {Ingestion.INCREMENTAL: _by_day, Ingestion.FULL: _from_snapshots}
