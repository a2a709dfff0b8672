"""The clean step: raw delivery -> typed, deduplicated rows merged into the cleaned table.

Incremental datasets upsert by primary key into ``dt=`` partitions (the UTC date of
partition_field). The winner of a key is the row with the greatest incremental_field, then the
later delivery (``_ds``), then the later row of the delivery (``_row``), so the final table does not
depend on the order intervals ran in. A key index (hash of key -> dt) keeps the work proportional
to the delivery, not the history. Full datasets write one snapshot per ``ds=``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from pipelines import schema, transforms
from pipelines.components.lake import Lake
from pipelines.components.resources import Snapshot, commit_with_retry, parquet_bytes
from pipelines.components.resources import read_parquet_bytes as _read_pq
from pipelines.exceptions import LakeError, QualityCheckFailed
from pipelines.partitions import Interval, Layer
from pipelines.registry import Dataset, Ingestion

log = logging.getLogger(__name__)
INDEX_DIR = "_index"


@dataclass
class MergeResult:
    """What one clean run did, for XCom, asset metadata and the checks."""

    raw_rows: int = 0
    delivered: int = 0
    quarantined: int = 0
    superseded: int = 0
    touched: list[str] = field(default_factory=list)
    cleaned_rows: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def cleaned_key(dataset: Dataset) -> str:
    """Incremental cleaned tables are partitioned by ``dt``, full snapshots by ``ds``."""
    return "dt" if dataset.ingestion is Ingestion.INCREMENTAL else "ds"


def order_columns(dataset: Dataset) -> list[str]:
    inc = [dataset.incremental_field] if dataset.incremental_field else []
    return [*inc, *transforms.ORDER]


def read_raw(dataset: Dataset, interval: Interval, lake: Lake) -> pd.DataFrame:
    raw = lake.table(Layer.RAW, dataset.name)
    snap = raw.snapshot()
    if interval.ds not in snap.partitions:
        raise LakeError(f"{dataset.name}: no raw partition ds={interval.ds}; run extract first")
    return raw.read_partition(interval.ds, snap)


def prepare(
    dataset: Dataset, raw: pd.DataFrame, interval: Interval
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Valid rows, one per key (with ``_ds``), and the quarantined rows with their ``_reason``."""
    if raw.empty or not len(raw.columns):
        return raw, pd.DataFrame(), 0
    stamps = [c for c in (dataset.incremental_field, dataset.partition_field) if c]
    missing = [c for c in (*dataset.primary_key, *stamps) if c not in raw.columns]
    if missing:
        from pipelines.exceptions import SchemaDriftError

        raise SchemaDriftError(
            f"{dataset.name}: column {missing[0]!r} named in registry.csv is "
            f"not in the source (columns: {', '.join(raw.columns)})"
        )
    valid, bad = transforms.quarantine_invalid(raw, dataset.primary_key, stamps)
    valid = valid.assign(_ds=interval.ds)
    winners, losers = transforms.latest_per_key(valid, dataset.primary_key, order_columns(dataset))
    losers = losers.assign(_reason="duplicate key in this delivery: superseded by a later version")
    quarantined = (
        pd.concat([q for q in (bad, losers) if not q.empty], ignore_index=True)
        if not (bad.empty and losers.empty)
        else pd.DataFrame()
    )
    return winners, quarantined, len(losers)


def clean(dataset: Dataset, interval: Interval, lake: Lake) -> MergeResult:
    """Run the clean step for one interval; safe to repeat any number of times, in any order."""
    raw = read_raw(dataset, interval, lake)
    winners, quarantined, superseded = prepare(dataset, raw, interval)
    result = MergeResult(
        raw_rows=len(raw),
        delivered=len(winners),
        quarantined=len(quarantined),
        superseded=superseded,
    )
    table = lake.table(Layer.CLEANED, dataset.name, key=cleaned_key(dataset))
    if dataset.ingestion is Ingestion.INCREMENTAL:
        snap = commit_with_retry(table, lambda base: _upsert(dataset, winners, table, base, result))
    else:
        snap = commit_with_retry(
            table, lambda base: _snapshot(dataset, winners, interval, table, base, result)
        )
    write_quarantine(dataset, interval, lake, quarantined)
    result.cleaned_rows = snap.rows()
    return result


def write_quarantine(dataset: Dataset, interval: Interval, lake: Lake, rows: pd.DataFrame) -> None:
    """Replace the interval's quarantine partition (removing it when nothing was quarantined)."""
    table = lake.table(Layer.QUARANTINE, dataset.name)
    rows = rows.astype({c: "string" for c in rows.columns if rows[c].dtype == object})
    change = {interval.ds: rows if not rows.empty else None}
    commit_with_retry(table, lambda base: table.commit(base, change))


def _table_schema(dataset: Dataset, delta: pd.DataFrame, base: Snapshot) -> dict[str, str]:
    stored = dict(base.meta.get("schema", []))  # [[column, kind], ...] keeps the column order
    if delta.empty and not len([c for c in delta.columns if not c.startswith("_")]):
        return stored
    return schema.reconcile(stored, schema.delivery_kinds(delta, dataset), dataset)


def _upsert(
    dataset: Dataset, delta: pd.DataFrame, table, base: Snapshot, result: MergeResult
) -> Snapshot:
    cols = _table_schema(dataset, delta, base)
    if delta.empty:
        result.touched = []
        return base
    delta = schema.conform(delta, cols, dataset)
    delta["dt"] = transforms.date_key(delta[dataset.partition_field])
    index = _read_index(table, base)
    hashes = transforms.key_hash(delta, dataset.primary_key)
    previous = index[index["_key"].isin(hashes)]
    touched = sorted(set(delta["dt"]) | set(previous["dt"]))
    current = table.read(touched, base)
    if not current.empty:
        current = schema.conform(current, cols, dataset)
    merged = transforms.upsert(current, delta, dataset.primary_key, order_columns(dataset))
    changes = {
        d: transforms.sort_rows(rows.drop(columns="dt"), dataset.primary_key)
        for d, rows in merged.groupby("dt", sort=True)
    }
    changes.update({d: None for d in touched if d not in changes})
    merged_hashes = transforms.key_hash(merged, dataset.primary_key)
    mine = merged_hashes.isin(hashes)
    new_entries = pd.DataFrame(
        {"_key": merged_hashes[mine].to_numpy(), "dt": merged.loc[mine, "dt"].to_numpy()}
    )
    new_index = pd.concat([index[~index["_key"].isin(hashes)], new_entries], ignore_index=True)
    rel = f"{INDEX_DIR}/index-{base.version + 1:08d}.parquet"
    meta = {"schema": list(cols.items()), "files": [rel], "index": rel}
    result.touched = touched
    return table.commit(base, changes, meta, {rel: parquet_bytes(new_index)})


def _read_index(table, base: Snapshot) -> pd.DataFrame:
    rel = base.meta.get("index")
    if not rel:
        return pd.DataFrame({"_key": pd.Series(dtype="uint64"), "dt": pd.Series(dtype="string")})
    return _read_pq(table.storage.read(f"{table.path}/{rel}"))


def _snapshot(
    dataset: Dataset,
    delta: pd.DataFrame,
    interval: Interval,
    table,
    base: Snapshot,
    result: MergeResult,
) -> Snapshot:
    cols = _table_schema(dataset, delta, base)
    if not delta.empty:
        delta = transforms.sort_rows(schema.conform(delta, cols, dataset), dataset.primary_key)
    _check_shrink(dataset, interval, base, len(delta))
    result.touched = [interval.ds]
    if delta.empty:  # an empty snapshot is still a snapshot: every row disappeared
        delta = pd.DataFrame(
            {c: pd.Series(dtype=transforms.DTYPES.get(k, "string")) for c, k in cols.items()}
        )
    return table.commit(base, {interval.ds: delta}, {"schema": list(cols.items())})


def _check_shrink(dataset: Dataset, interval: Interval, base: Snapshot, rows: int) -> None:
    """A full snapshot may not shrink by more than max_drop_pct against the one before it."""
    older = sorted(p for p in base.partitions if p < interval.ds)
    if not older:
        return
    before = base.rows(older[-1])
    if before and (before - rows) * 100 / before > dataset.max_drop_pct:
        raise QualityCheckFailed(
            f"{dataset.name}: snapshot {interval.ds} has {rows} rows, {before} on {older[-1]}: a "
            f"drop of {(before - rows) * 100 / before:.0f}% is over max_drop_pct="
            f"{dataset.max_drop_pct:g}; the current snapshot is kept"
        )
