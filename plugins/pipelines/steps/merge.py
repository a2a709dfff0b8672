"""The merge step (task ``clean.merge``): raw delivery -> typed, deduplicated rows merged into the
cleaned table, and the rows that cannot be merged into quarantine.

Incremental datasets upsert by primary key into ``dt=`` partitions (the UTC date of
partition_field). The winner of a key is the row with the greatest incremental_field, then the
later delivery (``_ds``), then the later row of the delivery (``_row``), so the final table does not
depend on the order intervals ran in. Each partition's key range, kept in the manifest, lets a merge
read only the partitions that can hold the delivery's keys, so its cost follows the delivery, not
the history. Full datasets write one snapshot per ``ds=``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pipelines.common import inference, transforms
from pipelines.common.partitions import Ingestion, Interval, Layer
from pipelines.exceptions import LakeError, QualityCheckFailed, SchemaDriftError
from pipelines.lake import frames
from pipelines.lake.lake import Lake
from pipelines.lake.tables import FAILED, Snapshot, Table, commit_with_retry, iso_utc
from pipelines.project.registry import SHRINK_CHECK, Dataset
from pipelines.project.table_config import CONFIG, of_dataset
from pipelines.steps import declared, schema, typed_merge

log = logging.getLogger(__name__)


@dataclass
class MergeResult:
    """What one merge did: the contract with the steps after it (check_keys, aggregate).

    It crosses task boundaries as a plain dict (XCom, asset event extra): :meth:`as_dict` and
    :meth:`from_dict` are its one round trip.
    """

    raw_rows: int = 0
    delivered: int = 0
    quarantined: int = 0
    superseded: int = 0
    touched: list[str] = field(default_factory=list)
    cleaned_rows: int = 0
    # columns this merge added to the table, or whose kind it widened: every cleaned partition
    # now reads differently, so every aggregate partition is recomputed
    reshaped: list[str] = field(default_factory=list)

    @property
    def quarantined_pct(self) -> float:
        """The share of the delivery's rows that went to quarantine, in percent."""
        return self.quarantined * 100 / self.raw_rows if self.raw_rows else 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def counts(self) -> dict[str, int | str]:  # COUNTS, and "checks"
        """The interval's row counts, kept with the cleaned version that merged it; its checks
        are still to come (the day has not landed for a workflow until they pass)."""
        return {
            "raw": self.raw_rows,
            "cleaned": self.delivered,
            "quarantined": self.quarantined,
            "superseded": self.superseded,
            "checks": "pending",
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> MergeResult:
        """The result :meth:`as_dict` gave; a key it does not know is a TypeError."""
        lists = {k: list(data.get(k, [])) for k in ("touched", "reshaped")}
        return cls(**{**data, **lists})


COUNTS = ("raw", "cleaned", "quarantined", "superseded")  # a merge's counts of its interval
SUPERSEDED = "duplicate key in this delivery: superseded by a later version"


def order_columns(dataset: Dataset) -> list[str]:
    inc = [dataset.incremental_field] if dataset.incremental_field else []
    return [*inc, *transforms.ORDER]


def read_raw(dataset: Dataset, interval: Interval, lake: Lake) -> pd.DataFrame:
    """The interval's delivery in delivery order (``_row``), as the newest version of the raw
    table holds it (in a research namespace: the upstream's raw table, read in place while its
    owner may rewrite it)."""
    raw = lake.raw(dataset.name)
    snap = raw.snapshot()
    _require_raw(dataset, interval, lake, snap)
    delivered = snap.run_metrics(interval.ds).get("columns")  # None: recorded before them
    if delivered is not None and interval.ds in snap.partitions:
        stored = frames.stored_names(snap.schema)
        delivered = [c for c in delivered if stored.get(c, c) in snap.schema.names]
    rows = raw.read_partition(interval.ds, snap, columns=delivered)
    if "_row" in rows.columns and not rows["_row"].is_monotonic_increasing:
        # a delivery streamed in batches is stored with its batches interleaved (delta-rs):
        # the rows in delivery order, as the quarantine keeps them
        rows = rows.sort_values("_row", kind="stable", ignore_index=True)
    return rows


def _require_raw(dataset: Dataset, interval: Interval, lake: Lake, snap: Snapshot) -> None:
    """Refuse to merge a day that was not extracted (an empty delivery leaves no partition, only
    its run record)."""
    if interval.ds not in snap.partitions and not snap.has_landed(interval.ds):
        where = "" if lake.owns(Layer.RAW) else f" in namespace {lake.upstream!r}"
        raise LakeError(
            f"{dataset.name}: no raw partition ds={interval.ds}{where}; run extract first"
        )


def _merge_typed(
    dataset: Dataset, interval: Interval, lake: Lake, raw: tuple[Table, Snapshot]
) -> MergeResult | None:
    """The DuckDB merge (None: the cleaned table changed under it so that the pandas path must
    merge), its run recorded, its quarantine written."""
    table = lake.cleaned(dataset)
    done: list[typed_merge.Merged] = []

    def attempt(base: Snapshot) -> Snapshot:
        typed = typed_merge.plan(dataset, interval, raw[1], base)
        if typed is None:
            return base
        merged = typed_merge.merge(dataset, interval, typed, raw, (table, base))
        if merged is None:
            return base
        done[:] = [merged]
        result = _result_of(merged)
        meta = {"schema": list(merged.kinds.items()), CONFIG: of_dataset(dataset)}
        run = (interval.ds, result.counts())
        return table.commit(merged.snapshot, {}, meta, run=run, since=base)

    snap = commit_with_retry(table, attempt)
    if not done:
        return None
    merged = done[0]
    write_quarantine(dataset, interval, lake, merged.quarantined)
    result = _result_of(merged)
    result.cleaned_rows = snap.rows()
    return result


def _result_of(merged: typed_merge.Merged) -> MergeResult:
    return MergeResult(
        raw_rows=merged.raw_rows,
        delivered=merged.delivered,
        quarantined=len(merged.quarantined),
        superseded=merged.superseded,
        touched=list(merged.touched),
    )


def prepare(
    dataset: Dataset,
    raw: pd.DataFrame,
    interval: Interval,
    stored: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Valid rows, one per key (with ``_ds``), and the quarantined rows as they were delivered
    (the text that did not parse, too), with ``_ds`` and their ``_reason``.

    A declared dataset's delivery meets its declaration first (:mod:`.declared`): its clean
    names, its types and row tests. The undeclared keys are typed next (``schema.key_kinds``;
    ``stored``: the cleaned table's kinds), so rows whose keys are equal once typed are one key
    here: the later is kept, the others are superseded, none is lost."""
    if raw.empty or not len(raw.columns):
        return raw, pd.DataFrame(), 0
    applied = declared.apply(dataset, raw, interval.ds)
    raw, typed = declared.renamed(dataset, raw), applied.rows  # raw: as delivered
    stamps = [c for c in (dataset.incremental_field, dataset.partition_field) if c]
    missing = [c for c in (*dataset.primary_key, *stamps) if c not in raw.columns]
    if missing:
        raise SchemaDriftError(
            f"{dataset.name}: column {missing[0]!r} named in registry.csv is "
            f"not in the source (columns: {', '.join(raw.columns)})"
        )
    epoch = dataset.options.epoch
    keys = schema.key_kinds(raw, dataset, dict(stored or {}))
    valid, bad = transforms.quarantine_invalid(typed, dataset.primary_key, stamps, epoch)
    bad = raw.loc[bad.index].assign(_reason=bad["_reason"])  # as delivered
    dates = {
        c: transforms.as_dates(valid[c])
        for c in dict.fromkeys(stamps)
        if applied.kinds.get(c) == "date"
        or (c not in applied.kinds and transforms.is_date_only(raw[c], valid[c]))
    }  # a field delivered (or declared) as dates stays dates in cleaned
    keyed = {c: inference.key_values(valid[c], kind) for c, kind in keys.items()}
    valid, bad = valid.assign(_ds=interval.ds, **dates, **keyed), bad.assign(_ds=interval.ds)
    winners, losers = transforms.latest_per_key(valid, dataset.primary_key, order_columns(dataset))
    losers = raw.loc[losers.index].assign(  # as delivered, like the other quarantined rows
        _ds=interval.ds, _reason="duplicate key in this delivery: superseded by a later version"
    )
    # _reason then _ds, as the rows quarantine_invalid refuses (the first part's order is the
    # quarantine table's; the DuckDB path's is this one)
    refused = raw.loc[applied.quarantined.index].assign(
        _reason=applied.quarantined["_reason"], _ds=interval.ds
    )
    parts = [q for q in (refused, bad, losers) if not q.empty]
    quarantined = (
        pd.concat(parts, ignore_index=True)
        if parts
        else raw.iloc[0:0].assign(_ds=pd.Series(dtype="string"), _reason=pd.Series(dtype="string"))
    )
    return winners, quarantined, len(losers)


def merge(dataset: Dataset, interval: Interval, lake: Lake) -> MergeResult:
    """Merge the interval's raw delivery; safe to repeat any number of times, in any order.

    A Parquet or CSV delivery is merged in DuckDB (:mod:`.typed_merge`) where it can be; the
    rest here."""
    table = lake.cleaned(dataset)
    raw = lake.raw(dataset.name)
    raw_snap = raw.snapshot()
    if typed_merge.plan(dataset, interval, raw_snap, table.snapshot()) is not None:
        _require_raw(dataset, interval, lake, raw_snap)
        result = _merge_typed(dataset, interval, lake, (raw, raw_snap))
        if result is not None:
            log.info("%s: merged ds=%s in DuckDB: %s", dataset.name, interval.ds, result)
            return result
    raw = read_raw(dataset, interval, lake)
    raw_rows = len(raw)
    kinds = schema.stored_kinds(table.snapshot())  # a key's kind, kept where the text fits it
    winners, quarantined, superseded = prepare(dataset, raw, interval, kinds)
    del raw  # a million-row delivery: do not hold it through the merge
    prepared = (len(winners), len(quarantined), superseded)
    result = MergeResult(raw_rows=raw_rows)
    table = lake.cleaned(dataset)
    delivery = _Delivery(dataset, interval, winners, table, result, [], [])
    write = _WRITERS[dataset.ingestion]

    def attempt(base: Snapshot) -> Snapshot:
        result.delivered, result.quarantined, result.superseded = prepared
        snap, result.touched = write(delivery, base)
        stored, now = (dict(v.meta.get("schema", [])) for v in (base, snap))
        widened = [c for c, kind in stored.items() if now.get(c, kind) != kind]
        result.reshaped = widened + [c for c in now if stored and c not in stored]
        return snap

    snap = commit_with_retry(table, attempt)
    if delivery.refused:  # recorded as the day's failed checks; the current snapshot stands
        raise QualityCheckFailed(
            f"{dataset.name}: {delivery.refused[0]}; the current snapshot is kept"
        )
    if delivery.collapsed:
        quarantined = pd.concat([quarantined, _collapsed_rows(delivery, lake)], ignore_index=True)
    write_quarantine(dataset, interval, lake, quarantined)
    result.cleaned_rows = snap.rows()
    log.info("%s: merged ds=%s: %s", dataset.name, interval.ds, result)
    return result


def _collapsed_rows(delivery: _Delivery, lake: Lake) -> pd.DataFrame:
    """The rows :meth:`_Delivery.typed` superseded, as delivered, with their reason."""
    raw = read_raw(delivery.dataset, delivery.interval, lake)
    lost = raw[raw["_row"].isin(delivery.collapsed)]
    return lost.assign(_ds=delivery.interval.ds, _reason=SUPERSEDED)


def write_quarantine(dataset: Dataset, interval: Interval, lake: Lake, rows: pd.DataFrame) -> None:
    """Replace the interval's quarantine partition (removing it when nothing was quarantined)."""
    table = lake.quarantine(dataset.name)
    rows = rows.astype({c: "string" for c in rows.columns if rows[c].dtype == object})
    run = (interval.ds, {"rows": len(rows)})

    def attempt(base: Snapshot) -> Snapshot:
        # no rows: the partition goes; a table not there yet is made, empty, with the columns
        # a quarantined row would have (another engine finds the table, with its schema)
        change = {interval.ds: rows if not rows.empty or not base.exists else None}
        return table.commit(base, change, run=run)

    commit_with_retry(table, attempt)


def _table_schema(dataset: Dataset, delta: pd.DataFrame, base: Snapshot) -> dict[str, str]:
    stored = schema.stored_kinds(base)
    if delta.empty and not len([c for c in delta.columns if not c.startswith("_")]):
        return stored
    return schema.reconcile(stored, schema.delivery_kinds(delta, dataset), dataset)


@dataclass(frozen=True)
class _Delivery:
    """The winning rows of one interval, on their way into the cleaned table."""

    dataset: Dataset
    interval: Interval
    rows: pd.DataFrame
    table: Table
    result: MergeResult
    collapsed: list[int]  # the ``_row`` of each winner another took the key of once typed
    refused: list[str]  # why the snapshot was refused (a full one that shrank too far)

    @property
    def counted(self) -> tuple[str, dict]:
        """The run's day and counts, kept with the version that merged it."""
        return self.interval.ds, self.result.counts()

    def typed(self, cols: dict[str, str]) -> pd.DataFrame:
        """The rows in the table's kinds, one per key: two rows whose keys differ as delivered
        but meet once typed (``7`` and ``007`` as integers) keep the later version, as within
        any delivery, and the other is counted superseded (quarantined, not lost)."""
        dataset = self.dataset
        rows = schema.conform(self.rows, cols, dataset)
        rows, lost = transforms.latest_per_key(rows, dataset.primary_key, order_columns(dataset))
        self.collapsed[:] = lost["_row"].tolist()
        self.result.delivered -= len(lost)
        self.result.quarantined += len(lost)
        self.result.superseded += len(lost)
        return rows

    def meta(self, cols: dict[str, str]) -> dict:
        """What the commit records of the table: its schema and the config it was written with."""
        return {"schema": list(cols.items()), CONFIG: of_dataset(self.dataset)}


def _upsert(delivery: _Delivery, base: Snapshot) -> tuple[Snapshot, list[str]]:
    """Incremental: upsert the delivery by key into its ``dt`` partitions; what it touched."""
    dataset, delta, table = delivery.dataset, delivery.rows, delivery.table
    cols = _table_schema(dataset, delta, base)
    if delta.empty:  # nothing to upsert; the day's run and counts are still recorded
        ds, counts = delivery.counted
        recorded = base.run_metrics(ds)
        if base.has_landed(ds) and all(recorded.get(k) == counts[k] for k in COUNTS):
            return base, []  # a rerun of an empty delivery: nothing changed, checks stand
        return table.commit(base, {}, delivery.meta(cols), run=delivery.counted), []
    delta = delivery.typed(cols)
    delta["dt"] = transforms.date_key(delta[dataset.partition_field])
    touched = sorted(set(delta["dt"].unique()) | _partitions_holding(dataset, delta, table, base))
    current = table.read(touched, base)
    if not current.empty:
        current = schema.conform(current, cols, dataset)
    changes: dict[str, pd.DataFrame | None] = transforms.upsert_partitions(
        current, delta, dataset.primary_key, order_columns(dataset), "dt"
    )
    del current, delta  # the partitions hold the rows now
    changes.update({d: None for d in touched if d not in changes})
    snap = table.commit(
        base,
        changes,
        delivery.meta(cols),
        run=delivery.counted,
    )
    return snap, touched


def _partitions_holding(
    dataset: Dataset, delta: pd.DataFrame, table: Table, base: Snapshot
) -> set[str]:
    """Partitions (other than the delta's own) that already hold a key of the delta.

    Each file of a Delta table records its range of the first key column: only partitions whose
    range contains a delta key are read, and only their key columns. With growing keys (ids,
    timestamps) that is the few recent partitions, so a merge costs what the delivery holds,
    not what the history holds.
    """
    own = set(delta["dt"].unique())
    probe = _sortable(delta[dataset.primary_key[0]])
    keys = delta[list(dataset.primary_key)].drop_duplicates()
    ranges = base.key_ranges(dataset.primary_key[0])
    others = {
        part: dict(zip(("lo", "hi"), ranges[part], strict=True)) if part in ranges else {}
        for part in base.partitions
        if part not in own
    }
    holding: set[str] = set()
    for part in _in_range(probe, others):
        stored = table.read_partition(part, base, columns=list(dataset.primary_key))
        if not stored.empty and _any_shared(stored, keys, dataset.primary_key):
            holding.add(part)
    return holding


def _sortable(values: pd.Series) -> np.ndarray:
    """Key values, sorted, in the form the files' ``lo``/``hi`` compare with."""
    if values.dtype.kind == "M":
        return np.sort(np.array([iso_utc(v) for v in values], dtype=object))
    if pd.api.types.is_integer_dtype(values):
        return np.sort(values.to_numpy(dtype="int64"))
    if pd.api.types.is_numeric_dtype(values):
        return np.sort(values.to_numpy(dtype="float64"))
    return np.sort(values.astype(str).to_numpy(dtype=object))


def _in_range(probe: np.ndarray, entries: dict[str, dict]) -> list[str]:
    """The partitions whose recorded key range holds a delta key (or that record none).

    Ten years of daily partitions are 3,650 ranges: they are compared in two vectorised
    searches when every range has the probe's kind, one by one (:func:`_may_hold`) otherwise.
    """
    ranged = {p: e for p, e in entries.items() if "lo" in e}
    found = [p for p in entries if p not in ranged]
    kinds = {type(v) for e in ranged.values() for v in (e["lo"], e["hi"])}
    numeric = probe.dtype.kind in "if" and kinds <= {int, float} and bool(kinds)
    if numeric or (probe.dtype == object and kinds == {str}):
        parts = list(ranged)
        dtype = np.float64 if float in kinds else probe.dtype  # a key widened from int
        lows = np.array([ranged[p]["lo"] for p in parts], dtype=dtype)
        highs = np.array([ranged[p]["hi"] for p in parts], dtype=dtype)
        hit = np.searchsorted(probe, highs, side="right") > np.searchsorted(probe, lows, "left")
        return found + [p for p, h in zip(parts, hit, strict=True) if h]
    return found + [p for p, e in ranged.items() if _may_hold(probe, e)]


def _may_hold(probe: np.ndarray, entry: dict) -> bool:
    """Whether a delta key falls in the partition's recorded key range (True when unknown)."""
    if "lo" not in entry:
        return True
    try:
        first = np.searchsorted(probe, entry["lo"], side="left")
        return bool(np.searchsorted(probe, entry["hi"], side="right") > first)
    except TypeError:  # the key column changed kind since that partition was written
        return True


def _any_shared(stored: pd.DataFrame, keys: pd.DataFrame, primary_key) -> bool:
    stored = stored.astype(dict(keys.dtypes))
    return not stored.merge(keys, on=list(primary_key), how="inner").empty


def _snapshot(delivery: _Delivery, base: Snapshot) -> tuple[Snapshot, list[str]]:
    """Full: the delivery is the snapshot ``ds`` of the interval; it touched that one."""
    dataset, delta, interval = delivery.dataset, delivery.rows, delivery.interval
    cols = _table_schema(dataset, delta, base)
    if not delta.empty:
        delta = transforms.sort_rows(delivery.typed(cols), dataset.primary_key)
    delivery.refused[:] = [why] if (why := _shrank(dataset, interval, base, len(delta))) else []
    if delivery.refused:  # the day's run is recorded, failed, as a failed check is: status says so
        ds, counts = delivery.counted
        run = (ds, {**counts, "checks": f"{FAILED}: {SHRINK_CHECK}: {delivery.refused[0]}"})
        return delivery.table.commit(base, {}, run=run), []
    if delta.empty:  # an empty snapshot is still a snapshot: every row disappeared
        delta = pd.DataFrame(
            {c: pd.Series(dtype=transforms.DTYPES.get(k, "string")) for c, k in cols.items()}
        )
    meta = delivery.meta(cols)
    return delivery.table.commit(base, {interval.ds: delta}, meta, run=delivery.counted), [
        interval.ds
    ]


def _shrank(dataset: Dataset, interval: Interval, base: Snapshot, rows: int) -> str | None:
    """Why a full snapshot of ``rows`` rows is refused (None: it is not): it may not shrink by
    more than max_drop_pct against the one before it."""
    older = sorted(p for p in base.partitions if p < interval.ds)
    if not older:
        return None
    before = base.rows(older[-1])
    if before and (before - rows) * 100 / before > dataset.max_drop_pct:
        return (
            f"snapshot {interval.ds} has {rows} rows, {before} on {older[-1]}: a drop of "
            f"{(before - rows) * 100 / before:.0f}% is over {SHRINK_CHECK}="
            f"{dataset.max_drop_pct:g}"
        )
    return None


_WRITERS = {Ingestion.INCREMENTAL: _upsert, Ingestion.FULL: _snapshot}  # how each kind commits
