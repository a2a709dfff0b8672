"""A dataset's lake after N daily runs of extract + merge, built directly: each table written by a
few commits of the product's own :meth:`Table.commit` (a year of partitions a commit) instead of
N merges, and the runs table by one append of the records those runs would have made.

Day d's delivery is shaped as :func:`bench.synth.delivery` shapes it with late updates one day
back: ``n_new`` orders created on d (keys ``d * KEY_STRIDE + 0 .. n_new - 1``), second versions of
``n_dup`` of them and, from day 1 on, late updates of ``n_late`` orders created on d - 1, each row
at its own position ``_row`` of the shuffled delivery. After the runs of days 0 .. N - 1 the lake
holds, as the merges would have left it:

- ``raw ds=d``: the delivery as extracted, with its ``_row``;
- ``cleaned dt=d``: one row per order created on d, its latest version (the second version, or
  the late update delivered on d + 1 when that day is in the history), with ``_ds`` and
  ``_row``, conformed to the table's schema (its kinds in the Delta fields' metadata) and sorted
  by key;
- ``quarantine ds=d``: the superseded first versions, as delivered, with the merge's reason;
- the namespace's runs table: each day's records in the order the steps append them (raw: the
  delivery's rows and the dataset's config; cleaned: the merge's counts and the config;
  quarantine: its rows), each naming the version of its table that holds the day; and, as
  :meth:`Table.commit` records them, what each commit left the table holding.

The Delta log differs from the one N runs leave (a commit a year, not three a day, and no
checkpoint): what a reader pays to open a table of N commits is not in these histories.
:func:`differences` compares such a lake with one written by the product's real merges.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import synth
from pipelines.common.partitions import Layer
from pipelines.lake import delta
from pipelines.lake.lake import Lake
from pipelines.lake.tables import WROTE, Snapshot, Table
from pipelines.project.registry import Dataset
from pipelines.project.table_config import of_dataset
from pipelines.steps import schema
from pipelines.steps.merge import MergeResult

BATCH_DAYS = 365
LATE_DAYS = 1
SUPERSEDED = "duplicate key in this delivery: superseded by a later version"  # merge.prepare's
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
EPOCH_US = int(pd.Timestamp(synth.EPOCH, tz="UTC").value // 1000)


@dataclass(frozen=True)
class Shape:
    """How many rows of each kind day ``d``'s delivery of ``rows`` rows holds (as synth's)."""

    rows: int

    @property
    def dup(self) -> int:
        return round(self.rows * synth.DUPLICATE_SHARE)

    def late(self, days: np.ndarray) -> np.ndarray:
        return np.where(np.minimum(days, LATE_DAYS) > 0, round(self.rows * synth.LATE_SHARE), 0)

    def new(self, days: np.ndarray) -> np.ndarray:
        return self.rows - self.dup - self.late(days)


@dataclass
class Batch:
    """One batch of days: each table's partitions, and the runs recorded for them."""

    raw: dict[str, pd.DataFrame]
    cleaned: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    raw_runs: dict[str, dict]
    cleaned_runs: dict[str, dict]
    quarantine_runs: dict[str, dict]


Conform = Callable[[pd.DataFrame], pd.DataFrame]


def build(
    dataset: Dataset, lake: Lake, days: int, rows: int, *, seed: int = 7, batch: int = BATCH_DAYS
) -> None:
    """Commit days ``0 .. days - 1`` of ``dataset`` to its raw, cleaned and quarantine tables,
    ``batch`` days a commit, and append each batch's run records to the runs table."""
    tables = (lake.raw(dataset.name), lake.cleaned(dataset), lake.quarantine(dataset.name))
    bases = [table.snapshot() for table in tables]
    cols: dict[str, str] = {}

    def conform(frame: pd.DataFrame) -> pd.DataFrame:
        """The winners in the table's schema, as the merge conforms its delta."""
        if not cols:
            kinds = schema.delivery_kinds(frame, dataset)
            cols.update(schema.reconcile({}, kinds, dataset))
        return schema.conform(frame, cols, dataset)

    config = of_dataset(dataset)  # what extract and merge record (for `plan`)
    for days_ in batches(Shape(rows), days, seed, conform, batch):
        changes = (days_.raw, days_.cleaned, days_.quarantine)
        metas = (None, {"schema": list(cols.items())}, None)
        bases = [
            table.commit(base, change, meta)
            for table, base, change, meta in zip(tables, bases, changes, metas, strict=True)
        ]
        runs = (days_.raw_runs, days_.cleaned_runs, days_.quarantine_runs)
        _record(tables, bases, runs, (config, config, None))


def _record(
    tables: tuple[Table, ...],
    snapshots: list[Snapshot],
    runs: tuple[dict[str, dict], ...],
    configs: tuple[dict | None, ...],
) -> None:
    """Append the batch's run records to the namespace's runs table in one commit, day by day in
    the order the steps append them, each as :meth:`RunLog.append` writes one."""
    log, _ = tables[0].runs
    records: dict[str, list] = {f.name: [] for f in log.rows().schema}
    now = int(time.time() * 1_000_000)
    for ds in runs[0]:
        for table, snap, run, config in zip(tables, snapshots, runs, configs, strict=True):
            records["table"].append(table.runs[1])
            records["ds"].append(ds)
            records["version"].append(snap.version)
            records["metrics"].append(json.dumps(run[ds], sort_keys=True))
            records["config"].append(json.dumps(config) if config is not None else None)
            records["recorded_at"].append(now + len(records["recorded_at"]))
    append_records(log, records)


def append_records(log, records: dict[str, list]) -> None:
    """``records`` (a list per column of the runs table) appended to ``log`` in one commit."""
    import pyarrow as pa

    schema = log.rows().schema
    count = len(records["table"])
    arrays = [pa.array(records.get(f.name) or [None] * count, f.type) for f in schema]
    delta.append(log.path, log.storage, pa.Table.from_arrays(arrays, schema=schema))


Columns = dict[str, np.ndarray]  # order_id, created_at, updated_at (UTC microseconds), values


def batches(
    shape: Shape, days: int, seed: int, conform: Conform, size: int = BATCH_DAYS
) -> Iterator[Batch]:
    """The history's days, ``size`` at a time (the late updates of a batch's last day are
    delivered in the next batch)."""
    carried: tuple[Columns, np.ndarray] | None = None
    for first in range(0, days, size):
        end = min(first + size, days)
        batch, carried = _batch(shape, first, end, days, seed, conform, carried)
        yield batch


def _batch(
    shape: Shape,
    first: int,
    end: int,
    days: int,
    seed: int,
    conform: Conform,
    carried: tuple[Columns, np.ndarray] | None,
) -> tuple[Batch, tuple[Columns, np.ndarray]]:
    """Days ``first .. end - 1`` as columns of numbers, made frames once in their final order;
    ``carried``: the late updates delivered on ``first`` and their delivery day. Returns the
    batch and the late updates delivered on ``end``."""
    rng = np.random.default_rng([seed, first])
    day = np.arange(first, end)
    n_new, dup, rows = shape.new(day), shape.dup, shape.rows
    positions = _positions(rows, first, min(end + 1, days), seed)

    # the first version of every order created in the batch, in key order
    of_day = np.repeat(day, n_new)
    index = np.arange(len(of_day)) - np.repeat(np.cumsum(n_new) - n_new, n_new)
    created = _micros(of_day, rng.integers(0, 20 * HOUR_US, len(of_day)))
    orders = {
        "order_id": of_day * synth.KEY_STRIDE + index,
        "created_at": created,
        "updated_at": created + rng.integers(0, HOUR_US, len(of_day)),
        **synth.order_values(rng, len(of_day)),
        "_row": positions[of_day - first, index],
    }

    # second versions of `dup` orders a day: they supersede their first versions
    dup_rank = _picks(rng, n_new, np.full(len(day), dup))
    second = np.flatnonzero(dup_rank >= 0)
    second_day = of_day[second]
    seconds = _take(orders, second)
    seconds["updated_at"] += rng.integers(0, 2 * HOUR_US, len(second)) + 1_000_000
    seconds["status"] = np.full(len(second), synth.STATUSES.index("paid"))
    seconds["_row"] = positions[second_day - first, n_new[second_day - first] + dup_rank[second]]

    # late updates of orders created on d, delivered on d + 1 when that day is in the history
    late_rank = _picks(rng, n_new, np.where(day + 1 < days, shape.late(day + 1), 0))
    late = np.flatnonzero(late_rank >= 0)
    to_day = of_day[late]
    lates = {
        "order_id": orders["order_id"][late],
        "created_at": _micros(to_day, rng.integers(0, 20 * HOUR_US, len(late))),
        "updated_at": _micros(to_day + 1, rng.integers(0, 23 * HOUR_US, len(late))),
        **synth.order_values(rng, len(late)),
        "_row": positions[to_day + 1 - first, shape.new(to_day + 1) + dup + late_rank[late]],
    }
    inside = to_day + 1 < end

    # raw: every delivery of the batch as extracted, rows in delivery order
    parts = [(orders, of_day), (seconds, second_day), (_take(lates, inside), to_day[inside] + 1)]
    delivered = _concat([carried, *parts] if carried else parts)
    order = np.empty(len(delivered[1]), dtype=np.int64)
    order[(delivered[1] - first) * rows + delivered[0]["_row"]] = np.arange(len(order))
    raw = _split(_frame(_take(delivered[0], order)), np.full(len(day), rows), day)

    # cleaned: each order's latest version with the delivery it won in, in key order
    winners = {name: values.copy() for name, values in orders.items()}
    won_in = of_day.copy()
    for rows_at, values, delivery in ((second, seconds, second_day), (late, lates, to_day + 1)):
        for name, column in values.items():
            winners[name][rows_at] = column
        won_in[rows_at] = delivery
    cleaned = conform(_frame(winners).assign(_ds=_labels(won_in)))
    cleaned = _split(cleaned, n_new, day)

    # quarantine: the superseded first versions as delivered, with the merge's reason
    superseded = _frame(_take(orders, second))
    superseded = superseded.assign(  # as the DuckDB merge writes them: _reason, then _ds
        _reason=pd.array([SUPERSEDED] * len(superseded), dtype="string"),
        _ds=_labels(second_day),
    )
    quarantine = _split(superseded, np.full(len(day), dup), day)

    counts = MergeResult(
        raw_rows=rows, delivered=rows - dup, quarantined=dup, superseded=dup
    ).counts()
    labels = [synth.day(int(d)).isoformat() for d in day]
    # the delivery's own columns, as extract records them
    columns = [c for c in next(iter(raw.values())).columns if c != "ds"] if raw else []
    batch = Batch(
        raw=raw,
        cleaned=cleaned,
        quarantine=quarantine,
        raw_runs={d: {"rows": rows, "columns": columns} for d in labels},
        cleaned_runs={d: dict(counts) for d in labels},
        quarantine_runs={d: {"rows": dup} for d in labels},
    )
    return batch, (_take(lates, ~inside), to_day[~inside] + 1)


def _take(columns: Columns, rows: np.ndarray) -> Columns:
    return {name: values[rows] for name, values in columns.items()}


def _concat(parts: list[tuple[Columns, np.ndarray]]) -> tuple[Columns, np.ndarray]:
    names = parts[0][0]
    return (
        {name: np.concatenate([p[name] for p, _ in parts]) for name in names},
        np.concatenate([d for _, d in parts]),
    )


def _frame(columns: Columns) -> pd.DataFrame:
    """Columns as a delivery's frame (:func:`bench.synth.orders_frame`), ``_row`` last."""
    values = {k: v for k, v in columns.items() if k not in ("order_id", "created_at", "updated_at")}
    return synth.orders_frame(
        columns["order_id"], _stamps(columns["created_at"]), _stamps(columns["updated_at"]), values
    )


def _micros(days: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """UTC microseconds since 1970 of ``offsets`` into day numbers ``days``."""
    return EPOCH_US + days * DAY_US + offsets


def _positions(rows: int, first: int, end: int, seed: int) -> np.ndarray:
    """Each delivery's shuffle: row ``i`` of day ``d`` (first versions, then second versions,
    then late updates) is at ``_row`` ``positions[d - first, i]``."""
    return np.stack(
        [np.random.default_rng([seed, d, 1]).permutation(rows) for d in range(first, end)]
    ).astype(np.int64)


def _picks(rng: np.random.Generator, sizes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``counts[g]`` distinct rows drawn from each group ``g`` of ``sizes[g]`` rows (the groups
    contiguous, in order): each drawn row's rank in its draw ``0 .. counts[g] - 1``, -1 for the
    rows not drawn."""
    rank = np.full(int(sizes.sum()), -1, dtype=np.int64)
    for start, size, count in zip(np.cumsum(sizes) - sizes, sizes, counts, strict=True):
        rank[start + rng.choice(size, size=count, replace=False)] = np.arange(count)
    return rank


def _stamps(micros: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(micros.astype("datetime64[us]"), tz="UTC")


def _labels(days: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``YYYY-MM-DD`` of day numbers, as a ``str`` column (what the merge's ``_ds`` is)."""
    names = tuple(synth.day(d).isoformat() for d in range(int(days.max(initial=0)) + 1))
    return synth.text_column(names, days)


def _split(frame: pd.DataFrame, sizes: np.ndarray, days: np.ndarray) -> dict[str, pd.DataFrame]:
    """``frame``'s consecutive rows, ``sizes[i]`` of them for ``days[i]``, a fresh index each."""
    ends = np.cumsum(sizes)
    return {
        synth.day(int(d)).isoformat(): frame.iloc[e - n : e].reset_index(drop=True)
        for d, n, e in zip(days, sizes, ends, strict=True)
    }


def differences(dataset: Dataset, merged: Lake, built: Lake) -> list[str]:
    """How a lake :func:`build` wrote differs from one the product's merges wrote for the same
    deliveries: each table's partitions (rows and files of each), Delta schema with its fields'
    metadata, what its runs recorded (each day's metrics, the config) and rows; and the runs
    table's records (but their versions and times). File names are not compared."""
    found: list[str] = []
    tables = {Layer.RAW: Lake.raw, Layer.CLEANED: Lake.cleaned, Layer.QUARANTINE: Lake.quarantine}
    for layer, table in tables.items():
        name = dataset if layer is Layer.CLEANED else dataset.name
        a, b = (table(lake, name) for lake in (merged, built))
        sa, sb = a.snapshot(), b.snapshot()
        found += [f"{layer}: {d}" for d in _table_differences(a, sa, b, sb)]
    records = [_records(lake) for lake in (merged, built)]
    if records[0] != records[1]:
        found.append(f"runs table records {records[0]} != {records[1]}")
    return found


def _table_differences(a: Table, sa: Snapshot, b: Table, sb: Snapshot) -> list[str]:
    layout = [(s.partitions, _files_per_partition(s)) for s in (sa, sb)]
    if layout[0] != layout[1]:
        return [f"partitions (rows, files) {layout[0]} != {layout[1]}"]
    found = []
    if not sa.schema.equals(sb.schema, check_metadata=True):
        found.append(f"Delta schema\n{sa.schema}\n!=\n{sb.schema}")
    metas = [_without_wrote(s.meta) for s in (sa, sb)]
    if metas[0] != metas[1]:
        found.append(f"recorded {metas[0]} != {metas[1]}")
    rows = [_rows(t.read(snapshot=s)) for t, s in ((a, sa), (b, sb))]
    if dict(rows[0].dtypes.astype(str)) != dict(rows[1].dtypes.astype(str)):
        found.append(f"columns {dict(rows[0].dtypes)} != {dict(rows[1].dtypes)}")
    elif not rows[0].equals(rows[1]):
        differ = (rows[0] != rows[1]).any(axis=1).sum()
        found.append(f"{differ} of {len(rows[0])} rows differ")
    return found


def _without_wrote(meta: dict) -> dict:
    """``meta`` without what each run's commit rewrote (``wrote``: its version and partitions),
    which follows the commits, as versions do: a year a commit here, a day a commit in the runs
    (so the history built here records none)."""
    runs = {d: {k: v for k, v in m.items() if k != WROTE} for d, m in meta["runs"].items()}
    return {**meta, "runs": runs}


def _files_per_partition(snap: Snapshot) -> dict[str, int]:
    parts = snap.files[f"partition.{snap.key}"].to_pylist() if snap.files is not None else []
    return {p: parts.count(p) for p in sorted(set(parts))}


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order (a partition's files keep no order a reader may rely on)."""
    order = [c for c in (frame.columns[0], "order_id", "_ds", "_row") if c in frame.columns]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def _records(lake: Lake) -> list[tuple]:
    """The runs table's records of runs and configs (table, day, metrics, config: JSON in one
    spelling), sorted; not the records of what a table holds alone, which follow the commits
    (a year a commit here, a day a commit in the runs)."""
    rows = lake.run_log().rows()
    columns = [rows[c].to_pylist() for c in ("table", "ds", "metrics", "config")]

    def spelled(value):
        if not value or value[0] != "{":
            return value
        said = json.loads(value)
        said.pop(WROTE, None)  # follows the commits (see _without_wrote)
        return json.dumps(said, sort_keys=True)

    return sorted(
        tuple(spelled(v) for v in row)
        for row in zip(*columns, strict=True)
        if row[2] is not None or row[3] is not None
    )
