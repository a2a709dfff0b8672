"""The four steps of a dataset's run, named as their tasks: ``extract``, ``merge``, ``check_keys``
and ``aggregate``, each a plain function of (dataset, interval, lake).

Operators call these inside ``execute``; tests, benchmarks and the crash suite call them directly
(:func:`run_steps`). Each step is idempotent: it replaces the partitions it owns, computed from its
inputs only. ``merge`` and ``aggregate`` are what :mod:`pipelines.steps.merge` and
:mod:`pipelines.steps.aggregate` hold; ``merge`` hands its :class:`MergeResult` to the steps
after it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from pipelines.common import transforms
from pipelines.common.partitions import Interval, Layer, interval_for
from pipelines.exceptions import LakeError, QualityCheckFailed, SchemaDriftError
from pipelines.lake.lake import Lake
from pipelines.lake.tables import PASSED, Snapshot, Table, commit_with_retry
from pipelines.project.config import Kind, Project, load_project
from pipelines.project.registry import Dataset
from pipelines.project.table_config import CONFIG, of_dataset
from pipelines.runtime.secrets import redact
from pipelines.steps import DATASET_STEPS, sources
from pipelines.steps.aggregate import aggregate
from pipelines.steps.merge import MergeResult, merge

__all__ = ["STEPS", "MergeResult", "aggregate", "check_keys", "extract", "merge", "run_steps"]
log = logging.getLogger(__name__)
STEPS = DATASET_STEPS  # their names, in order


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
    frame = sources.read_source(dataset, interval).reset_index(drop=True)
    frame["_row"] = pd.RangeIndex(len(frame), dtype="int64")
    if dataset.ingestion.filters_by_interval and not dataset.per_interval_source:
        field = dataset.incremental_field
        if len(frame) and field not in frame.columns:
            raise SchemaDriftError(
                f"{dataset.name}: incremental_field {field!r} is not in the "
                f"source (columns: {', '.join(frame.columns[:-1])})"
            )
        if len(frame):
            inside, unparseable = transforms.filter_interval(
                frame, field, interval.start, interval.end, dataset.options.epoch
            )
            if len(unparseable):  # kept, in delivery order, for the merge to quarantine
                unparseable = unparseable.drop(columns="_reason")
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
            run=(interval.ds, {"rows": len(frame)}),
        ),
    )
    log.info("%s: raw ds=%s: %s rows", dataset.name, interval.ds, len(frame))
    return {"rows": len(frame), "ds": interval.ds}


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


def check_keys(dataset: Dataset, interval: Interval, lake: Lake, merged: MergeResult) -> dict:
    """Quality gate after the merge: keys unique and not null where it wrote; counts reconcile;
    no more quarantined than the dataset's max_quarantine_pct.

    :raises QualityCheckFailed: downstream aggregates must not run
    """
    table = lake.cleaned(dataset)
    rows = table.read(merged.touched)
    failures: list[str] = []
    if not rows.empty:
        nulls, dupes = transforms.key_faults(rows, dataset.primary_key)
        if nulls:
            failures.append(f"{nulls} rows with a null primary key")
        if dupes:
            failures.append(f"{dupes} duplicate primary keys")
    if merged.raw_rows != merged.delivered + merged.quarantined:
        failures.append(
            f"raw rows {merged.raw_rows} != cleaned {merged.delivered} "
            f"+ quarantined {merged.quarantined}"
        )
    limit, share = dataset.max_quarantine_pct, merged.quarantined_pct
    if limit is not None and share > limit:
        failures.append(
            f"{merged.quarantined} of {merged.raw_rows} raw rows quarantined ({share:.0f}%), "
            f"over max_quarantine_pct={limit:g}"
        )
    outcome = f"failed: {'; '.join(failures)}" if failures else PASSED
    record_checks(table, interval.ds, outcome)
    if failures:
        raise QualityCheckFailed(f"{dataset.name} ds={interval.ds}: " + "; ".join(failures))
    return {"rows_checked": len(rows), "partitions": merged.touched, "checks": PASSED}


def record_checks(table: Table, ds: str, outcome: str) -> None:
    """Keep the checks' outcome with the day's run in the cleaned table's manifest: only a day
    whose checks passed has landed for the workflows that read it."""

    def attempt(base: Snapshot) -> Snapshot:
        return table.commit(base, {}, run=(ds, {**base.run_metrics(ds), "checks": outcome}))

    commit_with_retry(table, attempt)


def run_steps(
    name: str,
    ds: str,
    steps: Sequence[str] = STEPS,
    *,
    project: Project | None = None,
    lake: Lake | None = None,
) -> dict[str, Any]:
    """Run steps of one dataset for the interval of logical date ``ds``, in-process, no Airflow.

    :return: each step's result by step name (``merge``: a :class:`MergeResult`)
    :raises UnknownNameError: ``name`` is not a dataset
    """
    project = project or load_project(strict=False)
    dataset = project.require(name, Kind.DATASET).spec
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step {unknown[0]!r}; steps are {', '.join(STEPS)}")
    lake = lake or project.lake()
    interval = interval_for(dataset.cron, ds)
    out: dict[str, Any] = {}
    for step in steps:
        if step == "extract":
            out[step] = extract(dataset, interval, lake)
        elif step == "merge":
            out[step] = merge(dataset, interval, lake)
        elif step == "check_keys":
            out[step] = check_keys(dataset, interval, lake, out["merge"])
        else:
            out[step] = aggregate(dataset, interval, lake, out.get("merge", MergeResult()), project)
    return out
