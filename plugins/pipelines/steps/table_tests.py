"""A declared dataset's table tests (``columns.yaml``), run by the check stage after the merge.

Row tests send single rows to quarantine (:mod:`.declared`); these decide whether the day has
landed: ``unique`` (a column's values across the whole cleaned table), ``relationships`` (each
value of the day's rows exists in another dataset's cleaned column), and the dataset's
``min_rows`` (rows the day delivered to cleaned), ``max_row_change_pct`` (against the previous
day that ran) and ``max_quarantined_pct``. Each failure is one phrase that starts with the
test's name, so ``status`` and ``--json`` name the test that failed.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from pipelines.common.partitions import Ingestion, Interval
from pipelines.lake import frames
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot, Table
from pipelines.project.columns import Declaration
from pipelines.project.registry import Dataset
from pipelines.steps.merge import MergeResult

SHOWN = 3  # values a failure quotes


def failures(
    dataset: Dataset,
    interval: Interval,
    lake: Lake,
    merged: MergeResult,
    dataset_of: Callable[[str], Dataset | None] | None = None,
) -> list[str]:
    """The day's failed table tests, each in words (none: it passed them, or nothing is
    declared).

    :param merged: what the day's merge did (its counts, the partitions it touched)
    :param dataset_of: another dataset by name (the target of a relationship; default: the
        project's)
    """
    declared = dataset.declared
    if declared is None:
        return []
    if dataset_of is None:
        from pipelines.project.config import load_project

        dataset_of = load_project().dataset
    table = lake.cleaned(dataset)
    snap = table.snapshot()
    counts = (merged.raw_rows, merged.delivered, merged.quarantined)
    found = _counted(declared, interval, snap.meta["runs"], counts)
    for column in declared.columns:
        if column.stored not in snap.kinds:
            continue  # not delivered yet: nothing to test
        if column.test("unique") is not None:  # a full dataset's table is the day's snapshot
            full = dataset.ingestion is Ingestion.FULL
            found += _unique(table, snap, column.stored, merged.touched if full else None)
        related = column.test("relationships")
        if related is not None:
            day = (table, snap, merged.touched)
            found += _related(day, column.stored, related.arg, lake, dataset_of)
    return found


def _counted(
    declared: Declaration, interval: Interval, runs: dict, counts: tuple[int, int, int]
) -> list[str]:
    raw, delivered, quarantined = counts
    found = []
    if declared.min_rows is not None and delivered < declared.min_rows:
        found.append(f"min_rows: {delivered} rows delivered, at least {declared.min_rows} wanted")
    limit = declared.max_quarantined_pct
    if limit is not None and raw and quarantined * 100 / raw > limit:
        share = quarantined * 100 / raw
        found.append(
            f"max_quarantined_pct: {share:.0f}% of {raw} rows quarantined, over {limit:g}%"
        )
    if declared.max_row_change_pct is not None:
        found += _changed(declared.max_row_change_pct, interval, runs, delivered)
    return found


def _changed(limit: float, interval: Interval, runs: dict, rows: int) -> list[str]:
    """The day's rows against those of the newest earlier day that ran (``runs``: the cleaned
    table's run records)."""
    earlier = sorted(d for d in runs if d < interval.ds and "cleaned" in runs[d])
    if not earlier:
        return []
    before = int(runs[earlier[-1]]["cleaned"])
    if not before:
        return []
    change = abs(rows - before) * 100 / before
    if change <= limit:
        return []
    return [
        f"max_row_change_pct: {rows} rows against {before} on {earlier[-1]} "
        f"({change:.0f}% change, over {limit:g}%)"
    ]


def _column(table: Table, snap: Snapshot, column: str, partitions=None) -> pd.Series:
    wanted = sorted(
        snap.partitions if partitions is None else set(partitions) & set(snap.partitions)
    )
    if not wanted:
        return pd.Series([], dtype="string")
    return frames.to_frame(table.arrow(snap, wanted, [column]))[column]


def _unique(table: Table, snap: Snapshot, column: str, partitions=None) -> list[str]:
    values = _column(table, snap, column, partitions).dropna()
    twice = values[values.duplicated(keep=False)]
    if twice.empty:
        return []
    shown = ", ".join(repr(str(v)) for v in twice.drop_duplicates().head(SHOWN))
    return [
        f"unique {column}: {twice.nunique()} values occur more than once in the table ({shown})"
    ]


def _related(
    day: tuple[Table, Snapshot, list[str]],
    column: str,
    target: tuple[str, str],
    lake: Lake,
    dataset_of: Callable[[str], Dataset | None],
) -> list[str]:
    """The values of ``column`` in the partitions the day touched that are missing from
    ``target``'s cleaned column (a dataset not run yet holds none)."""
    table, snap, touched = day
    other, other_column = target
    values = _column(table, snap, column, touched).dropna().drop_duplicates()
    if values.empty:
        return []
    known = pd.Series([], dtype="string")
    referenced = dataset_of(other)
    if referenced is not None:
        target_table = lake.cleaned(referenced)
        target_snap = target_table.snapshot()
        if other_column in target_snap.kinds:
            known = _column(target_table, target_snap, other_column).dropna()
    missing = values[~values.astype("string").isin(known.astype("string"))]
    if missing.empty:
        return []
    shown = ", ".join(repr(str(v)) for v in missing.head(SHOWN))
    return [
        f"relationships {column}: {len(missing)} values not in {other}.{other_column} ({shown})"
    ]
