"""Synthetic inputs: registry files (with aggregates and workflows) and daily order deliveries,
deterministic for a seed.

A delivery for day D holds new orders created on D, ~1 % second versions of some of them (same key,
later ``updated_at``) and ~1 % late updates of orders created on earlier days. Every
``updated_at`` lies inside ``[D, D + 1 day)``, as an incremental source for one interval would.
Keys are ``day number * KEY_STRIDE + i``, so a late update names a key that day really delivered.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

EPOCH = dt.date(2024, 1, 1)
KEY_STRIDE = 10_000_000
DUPLICATE_SHARE = 0.01
LATE_SHARE = 0.01
STATUSES = ("new", "paid", "packed", "shipped", "returned")
COUNTRIES = tuple(f"C{i:02d}" for i in range(40))
SKUS = 5_000
SKU_NAMES = tuple(f"SKU-{i}" for i in range(SKUS))
WORKFLOW_EVERY = 50  # registry rows per synthetic workflow
WORKFLOW_MODULE = "bench_flows"  # include/workflows/bench_flows.py
REGISTRY_COLUMNS = (
    "dataset",
    "source",
    "format",
    "primary_key",
    "incremental_field",
    "partition_field",
    "ingestion",
    "schedule",
    "start_date",
    "max_active_runs",
    "owner",
    "description",
    "tags",
)
ORDERS = "orders"


def registry_row(
    dataset: str, *, incremental: bool = True, fmt: str = "parquet", max_active_runs: int = 1
) -> dict[str, str]:
    """One registry row of an orders-shaped dataset (one source file per interval)."""
    return {
        "dataset": dataset,
        "source": f"data/{dataset}_{{ds}}.{fmt}" if incremental else f"data/{dataset}.{fmt}",
        "format": fmt,
        "primary_key": "order_id",
        "incremental_field": "updated_at" if incremental else "",
        "partition_field": "created_at" if incremental else "",
        "ingestion": "incremental" if incremental else "full",
        "schedule": "@daily",
        "start_date": EPOCH.isoformat(),
        "max_active_runs": str(max_active_runs),
        "owner": "bench",
        "description": f"Synthetic {dataset}",
        "tags": "bench|synthetic",
    }


def aggregate_entry(dataset: str) -> dict:
    """One aggregates.yaml entry on an orders-shaped dataset: its DAG gets the aggregate task."""
    return {
        "name": f"{dataset}_by_status",
        "dataset": dataset,
        "group_by": ["status"],
        "metrics": {"orders": "count", "revenue": "sum:amount"},
    }


def write_project(
    include: Path, rows: list[dict[str, str]], workflows: list[dict] | None = None
) -> None:
    """``registry.csv`` of ``rows``, ``aggregates.yaml`` with one aggregate per dataset and, when
    given, ``workflows.yaml`` of ``workflows`` with the module their functions name."""
    write_registry(include, rows)
    entries = [aggregate_entry(row["dataset"]) for row in rows]
    (include / "aggregates.yaml").write_text(yaml.safe_dump(entries, sort_keys=False))
    if workflows:
        (include / "workflows.yaml").write_text(yaml.safe_dump(workflows, sort_keys=False))
        module = include / "workflows" / f"{WORKFLOW_MODULE}.py"
        module.parent.mkdir(exist_ok=True)
        module.write_text(
            '"""Synthetic workflow steps (never imported when DAGs are parsed)."""\n\n\n'
            "def latest(inputs, params, ds):\n"
            '    return inputs["orders"]\n'
        )


def synthetic_workflows(rows: list[dict[str, str]], every: int = WORKFLOW_EVERY) -> list[dict]:
    """One workflow per ``every`` registry rows, on its inputs: the first dataset of its block
    (cleaned, that day) and the aggregate of the second (that day)."""
    return [
        {
            "name": f"w{block // every:04d}",
            "function": f"{WORKFLOW_MODULE}:latest",
            "description": f"Synthetic workflow over {rows[block]['dataset']}",
            "owner": "bench",
            "inputs": {
                "orders": {"table": rows[block]["dataset"], "window": "1d"},
                "by_status": {
                    "table": aggregate_entry(rows[block + 1]["dataset"])["name"],
                    "layer": "aggregated",
                    "window": "1d",
                },
            },
        }
        for block in range(0, len(rows) - 1, every)
    ]


def synthetic_registry(rows: int) -> list[dict[str, str]]:
    """``rows`` datasets, two in three incremental, the rest full; varied max_active_runs."""
    return [
        registry_row(
            f"t{i:05d}",
            incremental=i % 3 != 2,
            fmt=("csv", "parquet")[i % 2],
            max_active_runs=1 + i % 3,
        )
        for i in range(rows)
    ]


def write_registry(include: Path, rows: list[dict[str, str]]) -> Path:
    """Write ``include/registry.csv``; returns its path."""
    path = include / "registry.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REGISTRY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def declaration() -> dict:
    """A ``columns.yaml`` entry of an orders-shaped dataset: each of its ten columns declared
    with the type a delivery gives it, and row tests no synthetic order breaks (a run keeps
    every row)."""
    return {
        "columns": {
            "order_id": {"type": "integer", "tests": ["not_null"]},
            "created_at": {"type": "timestamp"},
            "updated_at": {"type": "timestamp"},
            "customer_id": {"type": "integer", "tests": ["not_null", {"min": 1}]},
            "status": {"type": "text", "tests": [{"accepted_values": list(STATUSES)}]},
            "country": {"type": "text", "tests": ["not_null"]},
            "sku": {"type": "text"},
            "quantity": {"type": "integer", "tests": [{"min": 1}, {"max": 9}]},
            "amount": {"type": "float", "tests": [{"min": 0}]},
            "discount": {"type": "float", "tests": [{"min": 0}, {"max": 1}]},
        }
    }


def write_declarations(include: Path, datasets: list[str]) -> Path:
    """Write ``include/columns.yaml`` declaring each of ``datasets`` (:func:`declaration`)."""
    path = include / "columns.yaml"
    entries = {name: declaration() for name in datasets}
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


@dataclass(frozen=True)
class Delivery:
    """One day's source file and what it holds.

    :param path: the Parquet file
    :param rows: rows in the file
    :param keys: distinct keys in it (rows one merge into an empty table keeps)
    :param new_keys: keys first created that day (rows it adds to a table holding earlier days)
    """

    path: Path
    rows: int
    keys: int
    new_keys: int


def day(index: int) -> dt.date:
    """The date of day number ``index`` (0 = EPOCH)."""
    return EPOCH + dt.timedelta(days=index)


def delivery(index: int, rows: int, *, late_days: int, seed: int = 0) -> pd.DataFrame:
    """The orders delivered on day ``index``: new, second versions, late updates (shuffled).

    :param late_days: late updates go back 1..late_days days (never before EPOCH)
    """
    rng = np.random.default_rng([seed, index])
    late_days = min(late_days, index)
    n_late = round(rows * LATE_SHARE) if late_days else 0
    n_dup = round(rows * DUPLICATE_SHARE)
    n_new = rows - n_late - n_dup
    start = pd.Timestamp(day(index), tz="UTC")
    new = _orders(
        rng,
        index * KEY_STRIDE + np.arange(n_new, dtype=np.int64),
        created=start + _offsets(rng, n_new, hours=20),
    )
    new["updated_at"] = new["created_at"] + _offsets(rng, n_new, hours=1)
    second = new.sample(n=n_dup, random_state=rng).copy()
    second["updated_at"] += _offsets(rng, n_dup, hours=2) + pd.Timedelta(seconds=1)
    second["status"] = "paid"
    frame = pd.concat([new, second, _late(rng, index, n_new, n_late, late_days)])
    return frame.sample(frac=1.0, random_state=rng).reset_index(drop=True)


def write_delivery(
    include: Path, dataset: str, index: int, rows: int, *, late_days: int, seed: int = 0
) -> Delivery:
    """Write day ``index`` of ``dataset`` where :func:`registry_row` says its source is."""
    frame = delivery(index, rows, late_days=late_days, seed=seed)
    path = write_source(include, dataset, index, frame)
    keys = frame["order_id"]
    new_keys = keys[keys // KEY_STRIDE == index].nunique()
    return Delivery(path, len(frame), int(keys.nunique()), int(new_keys))


CHUNK_KEYS = 10**12  # a chunked delivery's chunk c has its keys offset by c * CHUNK_KEYS


def write_chunked_delivery(
    include: Path, dataset: str, index: int, rows: int, *, chunk_rows: int, late_days: int
) -> tuple[Delivery, int]:
    """Day ``index`` of ``dataset`` as :func:`write_delivery` writes it, generated and written
    ``chunk_rows`` rows at a time (fifty million rows would take tens of GiB to generate at
    once): chunk c is :func:`delivery` with seed c and its keys offset by ``c * CHUNK_KEYS``
    (no two chunks share a key; rows are shuffled within a chunk). Returns the delivery and its
    size in pandas."""
    import pyarrow.parquet as pq

    path = include / "data" / f"{dataset}_{day(index).isoformat()}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = new_keys = data_bytes = 0
    writer = None
    try:
        for chunk, start in enumerate(range(0, rows, chunk_rows)):
            frame = delivery(index, min(chunk_rows, rows - start), late_days=late_days, seed=chunk)
            frame["order_id"] += chunk * CHUNK_KEYS
            data_bytes += int(frame.memory_usage(deep=True).sum())
            unique = frame["order_id"].drop_duplicates()
            keys += len(unique)
            new_keys += int((unique % CHUNK_KEYS // KEY_STRIDE == index).sum())
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=1_000_000)
    finally:
        if writer is not None:
            writer.close()
    return Delivery(path, rows, keys, new_keys), data_bytes


def write_source(include: Path, dataset: str, index: int, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as day ``index``'s delivery where :func:`registry_row` says its source is;
    returns the file."""
    path = include / "data" / f"{dataset}_{day(index).isoformat()}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def in_memory_bytes(path: Path) -> int:
    """``DataFrame.memory_usage(deep=True).sum()`` of a source file read with pandas."""
    return int(pd.read_parquet(path).memory_usage(deep=True).sum())


def _late(
    rng: np.random.Generator, index: int, per_day: int, count: int, late_days: int
) -> pd.DataFrame:
    """``count`` updates of distinct orders created 1..late_days days before day ``index``."""
    picks = rng.choice(per_day * max(late_days, 1), size=count, replace=False)
    origin = index - 1 - picks // per_day
    created = pd.to_datetime([day(int(d)) for d in origin], utc=True) + _offsets(rng, count, 20)
    late = _orders(rng, origin * KEY_STRIDE + picks % per_day, created=created)
    late["updated_at"] = pd.Timestamp(day(index), tz="UTC") + _offsets(rng, count, hours=23)
    return late


def _orders(rng: np.random.Generator, keys: np.ndarray, created) -> pd.DataFrame:
    created = pd.DatetimeIndex(created).as_unit("us")
    return orders_frame(keys, created, created, order_values(rng, len(keys)))


LABELS = {"status": STATUSES, "country": COUNTRIES, "sku": SKU_NAMES}  # drawn as codes


def order_values(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The columns of ``n`` orders after their key and timestamps, drawn in column order; the
    text columns of :data:`LABELS` as codes."""
    return {
        "customer_id": rng.integers(1, 200_000, n, dtype=np.int64),
        "status": rng.integers(0, len(STATUSES), n),
        "country": rng.integers(0, len(COUNTRIES), n),
        "sku": rng.integers(0, SKUS, n),
        "quantity": rng.integers(1, 10, n, dtype=np.int64),
        "amount": rng.gamma(2.0, 30.0, n).round(2),
        "discount": rng.choice([0.0, 0.05, 0.1, 0.2], n),
    }


def orders_frame(keys: np.ndarray, created, updated, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Orders as a delivery holds them: ``order_id``, the UTC timestamps ``created_at`` and
    ``updated_at`` (microseconds), then :func:`order_values` with the codes as text; extra
    ``values`` (``_row``) last."""
    stamps = {
        name: pd.DatetimeIndex(value).as_unit("us")
        for name, value in (("created_at", created), ("updated_at", updated))
    }
    return pd.DataFrame(
        {
            "order_id": np.asarray(keys).astype(np.int64),
            **stamps,
            **{k: text_column(LABELS[k], v) if k in LABELS else v for k, v in values.items()},
        }
    )


def text_column(names: tuple[str, ...], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``names[codes]`` as a ``str`` column, taken in Arrow (ten million rows: no Python string
    per row)."""
    return pd.array(pa.array(names).take(pa.array(codes)), dtype="str")


def _offsets(rng: np.random.Generator, n: int, hours: float) -> pd.TimedeltaIndex:
    """``n`` random offsets in ``[0, hours)``, whole microseconds."""
    micros = rng.integers(0, int(hours * 3_600_000_000), n, dtype=np.int64)
    return pd.to_timedelta(micros, unit="us")
