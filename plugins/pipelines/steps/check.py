"""The quality gate of a dataset's run, after the merge: keys unique and not null where it wrote,
counts that reconcile, no more quarantined than allowed; its outcome is kept with the day's run
(only a day whose checks passed has landed for the workflows that read it)."""

from __future__ import annotations

from pipelines.common import transforms
from pipelines.common.partitions import Interval
from pipelines.exceptions import QualityCheckFailed
from pipelines.lake.lake import Lake
from pipelines.lake.tables import PASSED, Snapshot, Table, commit_with_retry
from pipelines.project.registry import Dataset
from pipelines.steps import table_tests
from pipelines.steps.merge import MergeResult


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
    failures += table_tests.failures(dataset, interval, lake, merged)
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
