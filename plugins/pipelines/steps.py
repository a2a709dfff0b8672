"""The four steps of a dataset's run, as plain functions of (dataset, interval, lake).

Operators call these inside ``execute``; tests, benchmarks and the crash suite call them directly.
Each step is idempotent: it replaces the partitions it owns, computed from its inputs only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from pipelines import aggregation, sources, transforms
from pipelines import merge as cleaning
from pipelines.components.lake import Lake
from pipelines.components.resources import commit_with_retry
from pipelines.config import Project, load_project
from pipelines.exceptions import ConfigError, Problem, QualityCheckFailed, SchemaDriftError
from pipelines.partitions import Interval, Layer, interval_for
from pipelines.registry import Dataset, Ingestion

log = logging.getLogger(__name__)
STEPS = ("extract", "merge", "check_keys", "aggregate")  # the task ids, in order


def extract(dataset: Dataset, interval: Interval, lake: Lake) -> dict:
    """Source -> ``raw/{dataset}/ds=...``: exactly the rows the source gave for the interval.

    A per-interval source (``{ds}`` in it) is taken whole; a single incremental source is
    filtered to ``start <= incremental_field < end`` (rows whose field cannot be parsed belong
    to no interval: they are kept, so the clean step quarantines them with a reason); a full
    source is the whole snapshot.
    """
    frame = sources.read_source(dataset, interval).reset_index(drop=True)
    frame["_row"] = pd.RangeIndex(len(frame), dtype="int64")
    if dataset.ingestion is Ingestion.INCREMENTAL and not dataset.per_interval_source:
        field = dataset.incremental_field
        if len(frame) and field not in frame.columns:
            raise SchemaDriftError(
                f"{dataset.name}: incremental_field {field!r} is not in the "
                f"source (columns: {', '.join(frame.columns[:-1])})"
            )
        if len(frame):
            inside, unparseable = transforms.filter_interval(
                frame, field, interval.start, interval.end
            )
            frame = pd.concat([inside, unparseable.drop(columns="_reason")]).sort_values("_row")
    table = lake.table(Layer.RAW, dataset.name)
    commit_with_retry(table, lambda base: table.commit(base, {interval.ds: frame}))
    log.info("%s: raw ds=%s: %s rows", dataset.name, interval.ds, len(frame))
    return {"rows": len(frame), "ds": interval.ds}


def merge(dataset: Dataset, interval: Interval, lake: Lake) -> dict:
    """Raw -> cleaned (and quarantine); see :mod:`pipelines.merge`."""
    result = cleaning.clean(dataset, interval, lake).as_dict()
    log.info("%s: cleaned ds=%s: %s", dataset.name, interval.ds, result)
    return result


def check_keys(dataset: Dataset, interval: Interval, lake: Lake, merged: dict) -> dict:
    """Quality gate after clean: keys unique and not null where the run wrote; counts reconcile.

    :raises QualityCheckFailed: downstream aggregates must not run
    """
    table = lake.table(Layer.CLEANED, dataset.name, key=cleaning.cleaned_key(dataset))
    rows = table.read(merged.get("touched", []))
    failures: list[str] = []
    if not rows.empty:
        pk = list(dataset.primary_key)
        nulls = int(rows[pk].isna().any(axis=1).sum())
        dupes = int(rows.duplicated(subset=pk).sum())
        if nulls:
            failures.append(f"{nulls} rows with a null primary key")
        if dupes:
            failures.append(f"{dupes} duplicate primary keys")
    expected = merged.get("delivered", 0) + merged.get("quarantined", 0)
    if merged.get("raw_rows", 0) != expected:
        failures.append(
            f"raw rows {merged.get('raw_rows')} != cleaned {merged.get('delivered')} "
            f"+ quarantined {merged.get('quarantined')}"
        )
    if failures:
        raise QualityCheckFailed(f"{dataset.name} ds={interval.ds}: " + "; ".join(failures))
    return {"rows_checked": len(rows), "partitions": merged.get("touched", [])}


def aggregate(
    dataset: Dataset, interval: Interval, lake: Lake, merged: dict, project: Project
) -> dict:
    """Recompute every aggregate of the dataset for the partitions the run touched.

    An aggregate that names a column the dataset does not have is reported after the others
    were built: one bad entry of aggregates.yaml does not hold back the rest.
    """
    results: dict = {}
    problems: list[Problem] = []
    for spec in project.aggregates_of(dataset.name):
        try:
            results[spec.name] = aggregation.build(
                spec, dataset, interval, lake, merged.get("touched", [])
            )
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return results


def run_interval(
    name: str,
    ds: str,
    steps: Sequence[str] = STEPS,
    *,
    project: Project | None = None,
    lake: Lake | None = None,
) -> dict:
    """Run steps of one dataset for the interval of logical date ``ds``, in-process, no Airflow."""
    project = project or load_project(strict=False)
    dataset = project.dataset(name)
    if dataset is None:
        from pipelines.config import require

        require(project, name)
    lake = lake or Lake.from_env()
    interval = interval_for(dataset.cron, ds)
    out: dict = {}
    for step in steps:
        if step == "extract":
            out[step] = extract(dataset, interval, lake)
        elif step == "merge":
            out[step] = merge(dataset, interval, lake)
        elif step == "check_keys":
            out[step] = check_keys(dataset, interval, lake, out["merge"])
        elif step == "aggregate":
            out[step] = aggregate(dataset, interval, lake, out.get("merge", {}), project)
        else:
            raise ValueError(f"unknown step {step!r}; steps are {', '.join(STEPS)}")
    return out
