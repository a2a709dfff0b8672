"""The aggregate step: cleaned partitions -> business tables of ``aggregates.yaml``.

Every cleaned partition a run touched is recomputed whole, so reruns and any run order give the
same result. Incremental datasets aggregate by their ``dt`` partitions. Full datasets aggregate
their newest snapshot by the date of partition_field (the table is replaced, so rows that
disappeared from the source disappear here too), or, without a partition_field, each snapshot into
``dt`` = its ``ds``.
"""

from __future__ import annotations

import pandas as pd

from pipelines import transforms
from pipelines.components.lake import Lake
from pipelines.components.resources import Snapshot, commit_with_retry
from pipelines.config import AggregateSpec
from pipelines.exceptions import ConfigError, Problem
from pipelines.merge import cleaned_key
from pipelines.partitions import Interval, Layer
from pipelines.registry import Dataset, Ingestion


def build(
    spec: AggregateSpec, dataset: Dataset, interval: Interval, lake: Lake, touched: list[str]
) -> dict:
    """Recompute the aggregate's partitions for what the run touched; returns row counts."""
    cleaned = lake.table(Layer.CLEANED, dataset.name, key=cleaned_key(dataset))
    out = lake.table(Layer.AGGREGATED, spec.name)
    source = cleaned.snapshot()
    if dataset.ingestion is Ingestion.INCREMENTAL:
        changes = _by_partition(spec, cleaned.read(touched, source), touched)
        replace_all = False
    elif dataset.partition_field:
        newest = max(source.partitions, default=None)
        rows = cleaned.read([newest], source) if newest else pd.DataFrame()
        if not rows.empty:
            rows["dt"] = transforms.date_key(rows[dataset.partition_field])
        changes = _by_partition(spec, rows, sorted(set(rows.get("dt", []))))
        replace_all = True
    else:
        rows = cleaned.read([interval.ds], source).rename(columns={"ds": "dt"})
        changes = _by_partition(spec, rows, [interval.ds])
        replace_all = False

    def attempt(base: Snapshot) -> Snapshot:
        full = dict(changes)
        if replace_all:
            full.update({p: None for p in base.partitions if p not in changes})
        return out.commit(base, full)

    snap = commit_with_retry(out, attempt)
    return {
        "partitions": sorted(p for p, f in changes.items() if f is not None),
        "rows": sum(len(f) for f in changes.values() if f is not None),
        "total_rows": snap.rows(),
    }


def _by_partition(
    spec: AggregateSpec, rows: pd.DataFrame, partitions: list[str]
) -> dict[str, pd.DataFrame | None]:
    if not rows.empty:
        missing = sorted(spec.columns - set(rows.columns))
        if missing:
            raise ConfigError(
                [
                    Problem(
                        "aggregates.yaml",
                        None,
                        spec.name,
                        f"column {missing[0]!r} is not in dataset {spec.dataset!r} "
                        f"(columns: {', '.join(c for c in rows.columns)})",
                    )
                ]
            )
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
