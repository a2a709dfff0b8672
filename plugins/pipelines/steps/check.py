"""The quality gate of a dataset's run, after the merge: keys unique and not null where it wrote,
counts that reconcile (every raw row cleaned or quarantined), no more quarantined than allowed
(by default, not every row); its outcome is kept with the day's run
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
    no more quarantined than the dataset's max_quarantine_pct, and not every row of a non-empty
    delivery unless max_quarantine_pct is 100.

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
    failures += accounting_faults(merged)
    failures += quarantine_faults(dataset, interval, lake, merged)
    failures += table_tests.failures(dataset, interval, lake, merged)
    outcome = f"failed: {'; '.join(failures)}" if failures else PASSED
    record_checks(table, interval.ds, outcome)
    if failures:
        raise QualityCheckFailed(f"{dataset.name} ds={interval.ds}: " + "; ".join(failures))
    return {"rows_checked": len(rows), "partitions": merged.touched, "checks": PASSED}


def accounting_faults(merged: MergeResult) -> list[str]:
    """Whether the merge accounted for every raw row: each is cleaned or quarantined
    (raw = cleaned + quarantined), and the superseded rows are among the quarantined."""
    faults = []
    if merged.raw_rows != merged.delivered + merged.quarantined:
        faults.append(
            f"raw rows {merged.raw_rows} != cleaned {merged.delivered} "
            f"+ quarantined {merged.quarantined}"
        )
    if not 0 <= merged.superseded <= merged.quarantined:
        faults.append(
            f"superseded rows {merged.superseded} are not among the {merged.quarantined} "
            "quarantined"
        )
    return faults


def quarantine_faults(
    dataset: Dataset, interval: Interval, lake: Lake, merged: MergeResult
) -> list[str]:
    """A delivery that quarantined more than max_quarantine_pct of its rows, or every one of
    them: that fails unless the dataset allows it (max_quarantine_pct=100)."""
    limit, share = dataset.max_quarantine_pct, merged.quarantined_pct
    reason = quarantined_whole(dataset, interval, lake, merged) if limit != 100 else None
    if reason is not None:
        rows = merged.raw_rows
        return [f"every one of the {rows} raw rows was quarantined (first reason: {reason})"]
    if limit is not None and share > limit:
        return [
            f"{merged.quarantined} of {merged.raw_rows} raw rows quarantined ({share:.0f}%), "
            f"over max_quarantine_pct={limit:g}"
        ]
    return []


def quarantined_whole(
    dataset: Dataset, interval: Interval, lake: Lake, merged: MergeResult
) -> str | None:
    """The reason of the first row when the merge quarantined every row of the day's delivery
    (None: it did not).

    A single incremental source gives every interval its rows whose field does not parse (they
    belong to none): an interval holding only those, of a source whose other rows are other
    intervals', delivered nothing of its own, and is not a delivery quarantined whole.
    """
    if not merged.raw_rows or merged.quarantined < merged.raw_rows:
        return None
    rows = lake.quarantine(dataset.name).read_partition(interval.ds, columns=["_row", "_reason"])
    if rows.empty:
        return "unknown: the quarantine holds no row of the day"
    if dataset.filtered_source:
        elsewhere = lake.raw(dataset.name).outline().run_metrics(interval.ds).get("elsewhere")
        stray = f"{dataset.incremental_field}: "  # its field unreadable (or not as declared)
        if elsewhere and rows["_reason"].str.startswith(stray).all():
            return None
    return str(rows.sort_values("_row", kind="stable")["_reason"].iloc[0])


def record_checks(table: Table, ds: str, outcome: str) -> None:
    """Keep the checks' outcome with the day's run in the cleaned table's manifest: only a day
    whose checks passed has landed for the workflows that read it."""

    def attempt(base: Snapshot) -> Snapshot:
        return table.commit(base, {}, run=(ds, {**base.run_metrics(ds), "checks": outcome}))

    commit_with_retry(table, attempt)
