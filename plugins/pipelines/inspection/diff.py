"""What differs between the tables of two namespaces (``pipelines namespace diff OTHER``).

A research branch shows what its change does to the data before it is merged: for every table
both namespaces have, the rows only in one, only in the other, and changed, by primary key, per
partition, with a few example keys. Columns starting with ``_`` are bookkeeping and ignored; two
nulls are equal. Rows are read as :func:`pipelines.read` gives them (in the kinds of each side's
schema), one table at a time.

What a row's key is depends on the table:

- cleaned: the dataset's primary key. The partition (``dt``) is a value, so a key whose date
  changed is *changed* ("moved"); a full dataset compares the newest snapshot of each side.
- raw: the delivery (``ds``) plus the primary key; only when both namespaces ingest their own
  (a research namespace reads serving's raw in place: comparing it with itself says nothing).
- aggregated: ``dt`` plus ``group_by``; workflows: ``ds`` plus the workflow's primary key.
- quarantine, and a workflow without a primary key: no key; rows are compared as multisets of
  their columns, so a row is only ever on one side or the same, never changed.

Duplicate keys (raw deliveries hold them) are paired in the order of their values and compared
as multisets: the second copy of a key is its own row (shown as ``#2``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pipelines.common.partitions import Ingestion, Layer, partition_key
from pipelines.lake.lake import Lake
from pipelines.project.config import Kind, Project

CATEGORIES = ("only_left", "only_right", "changed")
RIGHT = "~right"  # suffix of the right side's columns in the merged frame (no column has a ~)
OCCURRENCE = "_occurrence"  # which copy of a duplicated key (dropped with the other _ columns)


@dataclass(frozen=True)
class Example:
    """One differing row: its key and, for a changed row, the columns that differ and, when its
    partition differs, the partition on each side (``moved``: the left's, the right's)."""

    key: tuple[tuple[str, Any], ...]
    occurrence: int = 0  # the copy of a duplicated key (0: the first)
    columns: tuple[str, ...] = ()
    moved: tuple[str, str] | None = None

    def describe(self, partition_key: str, left: str, right: str) -> str:
        """``order_id=17``, ``order_id=9 (status)``, ``order_id=4 (moved: dt=... in research,
        dt=... in serving)``."""
        text = " ".join(f"{col}={_text(value)}" for col, value in self.key)
        text += f" #{self.occurrence + 1}" if self.occurrence else ""
        details = list(self.columns)
        if self.moved:
            where = zip((left, right), self.moved, strict=True)
            details.insert(
                0, "moved: " + ", ".join(f"{partition_key}={p} in {ns}" for ns, p in where)
            )
        return f"{text} ({', '.join(details)})" if details else text

    def as_dict(self) -> dict[str, Any]:
        moved = dict(zip(("left", "right"), self.moved, strict=True)) if self.moved else None
        return {
            "key": dict(self.key),
            "occurrence": self.occurrence,
            "columns": list(self.columns),
            "moved": moved,
        }


class PartitionCounts(NamedTuple):
    """What differs in one partition (a row is counted in its left side's partition)."""

    only_left: int = 0
    only_right: int = 0
    changed: int = 0


@dataclass(frozen=True)
class TableDiff:
    """One table compared in both namespaces.

    :param key: the columns a row is matched by (empty: rows compared as multisets)
    :param partitions: partition value -> counts, for the partitions where something differs
    :param added_columns: columns only the left side's table has (a branch added them)
    :param removed_columns: columns only the right side's table has
    :param snapshots: a full dataset's cleaned table: the newest snapshot compared on each side
    """

    layer: Layer
    name: str
    partition_key: str
    key: tuple[str, ...]
    only_left: int = 0
    only_right: int = 0
    changed: int = 0
    same: int = 0
    partitions: dict[str, PartitionCounts] = field(default_factory=dict)
    examples: dict[str, tuple[Example, ...]] = field(default_factory=dict)
    added_columns: tuple[str, ...] = ()
    removed_columns: tuple[str, ...] = ()
    snapshots: tuple[str | None, str | None] | None = None

    @property
    def label(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def identical(self) -> bool:
        differs = self.only_left or self.only_right or self.changed
        return not (differs or self.added_columns or self.removed_columns)

    def lines(self, left: str, right: str) -> list[str]:
        """The header line, then indented details, naming the namespaces."""
        out = [f"{self.label}: {_counts(self, left, right)}, {self.same} same"]
        if self.snapshots:
            l_snap, r_snap = (f"{self.partition_key}={s}" if s else "none" for s in self.snapshots)
            out.append(f"  newest snapshots compared: {l_snap} in {left}, {r_snap} in {right}")
        for side, columns in ((left, self.added_columns), (right, self.removed_columns)):
            if columns:
                out.append(f"  columns only in {side}: {', '.join(columns)}")
        for value, counts in sorted(self.partitions.items()):
            out.append(f"  {self.partition_key}={value}: {_counts(counts, left, right)}")
        names = {"only_left": f"only in {left}", "only_right": f"only in {right}"}
        for category in CATEGORIES:
            if self.examples.get(category):
                shown = ", ".join(
                    e.describe(self.partition_key, left, right) for e in self.examples[category]
                )
                out.append(f"  e.g. {names.get(category, category)}: {shown}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": str(self.layer),
            "name": self.name,
            "partition_key": self.partition_key,
            "key": list(self.key),
            "only_left": self.only_left,
            "only_right": self.only_right,
            "changed": self.changed,
            "same": self.same,
            "partitions": {p: c._asdict() for p, c in sorted(self.partitions.items())},
            "examples": {c: [e.as_dict() for e in self.examples.get(c, ())] for c in CATEGORIES},
            "added_columns": list(self.added_columns),
            "removed_columns": list(self.removed_columns),
            "snapshots": dict(zip(("left", "right"), self.snapshots, strict=True))
            if self.snapshots
            else None,
        }


@dataclass(frozen=True)
class NamespaceDiff:
    """Every table of the project compared between namespace ``left`` and ``right``.

    :param only_in_left: tables (``layer.name``) that exist only in ``left``: not compared
    :param notes: what was left out, and why (the raw layer of a namespace that reads another's)
    """

    left: str
    right: str
    tables: tuple[TableDiff, ...] = ()
    only_in_left: tuple[str, ...] = ()
    only_in_right: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        one_sided = self.only_in_left or self.only_in_right
        return not one_sided and all(t.identical for t in self.tables)

    def lines(self) -> list[str]:
        """The report: each compared table, the one-sided tables, the notes, a summary."""
        out = [line for t in self.tables for line in t.lines(self.left, self.right)]
        for side, labels in ((self.left, self.only_in_left), (self.right, self.only_in_right)):
            out += [f"{label}: only in {side} (not compared)" for label in labels]
        out += list(self.notes)
        compared = len(self.tables)
        if self.identical:
            out.append(f"{self.left} and {self.right} are identical (tables compared: {compared})")
            return out
        differ = sum(not t.identical for t in self.tables)
        out.append(
            f"{self.left} vs {self.right}: tables differing: {differ} of {compared}; "
            f"only in {self.left}: {len(self.only_in_left)}; "
            f"only in {self.right}: {len(self.only_in_right)}"
        )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "left": self.left,
            "right": self.right,
            "identical": self.identical,
            "tables": [t.as_dict() for t in self.tables],
            "only_in_left": list(self.only_in_left),
            "only_in_right": list(self.only_in_right),
            "notes": list(self.notes),
        }


class _Spec(NamedTuple):
    """How one table is compared: its key (empty: as a multiset) and, for a cleaned table, the
    dataset's ingestion kind."""

    layer: Layer
    name: str
    key: tuple[str, ...]
    kind: Ingestion | None = None

    @property
    def partition(self) -> str:
        return partition_key(self.layer, self.kind)

    @property
    def snapshot_only(self) -> bool:
        """A full dataset's cleaned table: the newest snapshot is the table."""
        return self.kind is not None and self.kind.keeps_snapshots


def diff_namespaces(
    left: Lake, right: Lake, project: Project, *, table: str | None = None, examples: int = 3
) -> NamespaceDiff:
    """Compare every table of ``project`` that both namespaces have (or only those of ``table``).

    :param table: a dataset (its raw, cleaned and quarantine tables), an aggregate or a workflow
    :param examples: at most this many example keys per table and kind of difference
    :raises UnknownNameError: ``table`` is not a dataset, aggregate or workflow of the project
    """
    if table is not None:
        project.require(table, Kind.DATASET, Kind.AGGREGATE, Kind.WORKFLOW)
    raw = left.owns(Layer.RAW) and right.owns(Layer.RAW)
    specs = [s for s in _specs(project, raw) if table is None or s.name == table]
    tables: list[TableDiff] = []
    one_sided: dict[str, list[str]] = {left.namespace: [], right.namespace: []}
    for spec in specs:
        rows = _read(left, spec, project), _read(right, spec, project)
        if rows[0] is not None and rows[1] is not None:
            tables.append(_compare(spec, rows[0], rows[1], examples))
        elif rows[0] is not None or rows[1] is not None:
            side = left if rows[0] is not None else right
            one_sided[side.namespace].append(f"{spec.layer}.{spec.name}")
    notes = tuple(
        f"raw not compared: {lake.namespace} reads {lake.home_of(Layer.RAW)}'s raw layer in place"
        for lake in (left, right)
        if not raw and not lake.owns(Layer.RAW) and any(s.layer is Layer.CLEANED for s in specs)
    )
    return NamespaceDiff(
        left.namespace,
        right.namespace,
        tuple(tables),
        tuple(one_sided[left.namespace]),
        tuple(one_sided[right.namespace]),
        notes,
    )


def _specs(project: Project, raw: bool) -> list[_Spec]:
    """Every table the project can have, in the order ``pipelines lake show`` lists them."""
    specs: list[_Spec] = []
    for d in project.datasets:
        if raw:
            specs.append(_Spec(Layer.RAW, d.name, (partition_key(Layer.RAW), *d.primary_key)))
        specs.append(_Spec(Layer.CLEANED, d.name, d.primary_key, d.ingestion))
        specs.append(_Spec(Layer.QUARANTINE, d.name, ()))
    for a in project.aggregates:
        specs.append(
            _Spec(Layer.AGGREGATED, a.name, (partition_key(Layer.AGGREGATED), *a.group_by))
        )
    for w in project.workflows:
        key = (partition_key(Layer.WORKFLOWS), *w.primary_key) if w.primary_key else ()
        specs.append(_Spec(Layer.WORKFLOWS, w.name, key))
    return specs


def _read(lake: Lake, spec: _Spec, project: Project) -> tuple[pd.DataFrame, str | None] | None:
    """The table's rows as they stand (None: no such table), and the snapshot read when the
    table is a full dataset's."""
    table = lake.table(spec.layer, spec.name, project)
    for attempt in range(3):
        snap = table.snapshot()
        if not snap.written:
            return None
        wanted = spec.kind.current_partitions(snap.partitions) if spec.kind else None
        try:
            rows = snap.as_stored(table.read(wanted, snap))
        except FileNotFoundError:  # a concurrent commit vacuumed them: read the new version
            if attempt == 2:
                raise
            continue
        if rows.empty:  # no rows: compared as a table with nothing in it, whatever its columns
            rows = pd.DataFrame()
        data = [c for c in rows.columns if not str(c).startswith("_")]
        return rows[data], (wanted[0] if spec.snapshot_only and wanted else None)
    raise AssertionError("unreachable")


def _compare(
    spec: _Spec,
    left: tuple[pd.DataFrame, str | None],
    right: tuple[pd.DataFrame, str | None],
    examples: int,
) -> TableDiff:
    """Match the rows of both sides by key and count what differs, per partition."""
    (lrows, lsnap), (rrows, rsnap) = left, right
    lrows, rrows = _with_columns(lrows, rrows), _with_columns(rrows, lrows)
    if not len(lrows.columns):  # no rows on either side
        return TableDiff(spec.layer, spec.name, spec.partition, spec.key)
    added = tuple(c for c in lrows.columns if c not in rrows.columns)
    removed = tuple(c for c in rrows.columns if c not in lrows.columns)
    merged, key = _merge(spec, lrows, rrows)
    where = merged["_merge"].astype(str).to_numpy()
    both = where == "both"
    values = [c for c in lrows.columns if c + RIGHT in merged.columns]
    if spec.snapshot_only:  # each side's snapshot day, not a value of the row
        values.remove(spec.partition)
    differs = {c: _unequal(merged[c], merged[c + RIGHT]) & both for c in values}
    differs.update({c: merged[c].notna().to_numpy(bool) & both for c in (*added, *removed)})
    changed = np.logical_or.reduce([np.zeros(len(merged), bool), *differs.values()])
    category = np.select(
        [where == "left_only", where == "right_only", changed], list(CATEGORIES), "same"
    )
    part = spec.partition
    home = merged[part]
    if part not in key:  # a row is counted in its left side's partition (where it moved from)
        home = home.where(where != "right_only", merged[part + RIGHT])
    return TableDiff(
        spec.layer,
        spec.name,
        part,
        spec.key,
        **{c: int((category == c).sum()) for c in (*CATEGORIES, "same")},
        partitions=_partitions(home, category),
        examples={
            c: _examples(merged, np.flatnonzero(category == c)[:examples], key, differs, part)
            for c in CATEGORIES
        },
        added_columns=added,
        removed_columns=removed,
        snapshots=(lsnap, rsnap) if spec.snapshot_only else None,
    )


def _with_columns(rows: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``rows``; for a side with no rows (read back without columns), no rows with ``other``'s
    columns: every row is then on the other side only, and no column counts as removed."""
    return rows if len(rows.columns) else other.iloc[0:0].copy()


def _merge(spec: _Spec, lrows: pd.DataFrame, rrows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Both sides outer-joined on the key plus the copy number of a duplicated key (the right
    side's other columns get :data:`RIGHT` appended), sorted by key; and that key. A table
    without one is matched on every column both sides have."""
    key = list(spec.key) or [c for c in lrows.columns if c in rrows.columns]
    for col in key:  # written by the same code, yet a side may have widened a column
        numeric = all(pd.api.types.is_numeric_dtype(f[col]) for f in (lrows, rrows))
        if lrows[col].dtype != rrows[col].dtype and not numeric:
            lrows[col], rrows[col] = lrows[col].astype("string"), rrows[col].astype("string")
    lrows[OCCURRENCE], rrows[OCCURRENCE] = _occurrence(lrows, key), _occurrence(rrows, key)
    key.append(OCCURRENCE)
    merged = lrows.merge(rrows, on=key, how="outer", suffixes=("", RIGHT), indicator=True)
    return merged.reset_index(drop=True), key


def _occurrence(rows: pd.DataFrame, key: list[str]) -> np.ndarray:
    """0 for the first row of a key, 1 for its second copy ...; copies are numbered in the
    order of their values, so two equal multisets of copies pair up row for row."""
    if not len(rows) or not rows.duplicated(key).any():
        return np.zeros(len(rows), dtype="int64")
    order = rows.index
    with contextlib.suppress(TypeError):  # values of mixed types: number copies as read
        rows = rows.sort_values(list(rows.columns), kind="stable")
    numbers = rows.groupby(key, dropna=False, sort=False).cumcount()
    return numbers.reindex(order).to_numpy()


def _unequal(left: pd.Series, right: pd.Series) -> np.ndarray:
    """Where two aligned columns differ; two nulls are equal."""
    nulls = left.isna().to_numpy(bool) & right.isna().to_numpy(bool)
    try:
        equal = left == right
    except TypeError:  # kinds that do not compare (a widened column): compare their text
        equal = left.astype("string") == right.astype("string")
    return ~(equal.fillna(False).to_numpy(bool) | nulls)


def _partitions(home: pd.Series, category: np.ndarray) -> dict[str, PartitionCounts]:
    """Partition -> counts, for the partitions where something differs."""
    rows = pd.DataFrame({"partition": home.astype(str).to_numpy(), "category": category})
    rows = rows[rows["category"] != "same"]
    found: dict[str, dict[str, int]] = {}
    for (partition, cat), n in rows.groupby(["partition", "category"]).size().items():
        found.setdefault(partition, {})[cat] = int(n)
    return {p: PartitionCounts(**counts) for p, counts in sorted(found.items())}


def _examples(
    merged: pd.DataFrame,
    index: np.ndarray,
    key: list[str],
    differs: dict[str, np.ndarray],
    part: str,
) -> tuple[Example, ...]:
    out = []
    for i in index:
        moved = None
        if part in differs and differs[part][i]:
            moved = (str(merged.at[i, part]), str(merged.at[i, part + RIGHT]))
        out.append(
            Example(
                tuple((c, _plain(merged.at[i, c])) for c in key if c != OCCURRENCE),
                int(merged.at[i, OCCURRENCE]),
                tuple(c for c, mask in differs.items() if mask[i] and c != part),
                moved,
            )
        )
    return tuple(out)


def _counts(counts: TableDiff | PartitionCounts, left: str, right: str) -> str:
    return (
        f"{counts.only_left} only in {left}, {counts.only_right} only in {right}, "
        f"{counts.changed} changed"
    )


def _plain(value: Any) -> Any:
    """A key value as JSON: null, a number, text, or a date/timestamp in ISO form."""
    if not pd.api.types.is_list_like(value) and pd.isna(value):
        return None
    if isinstance(value, pd.Timestamp) and value.tz is None and value == value.normalize():
        return value.date().isoformat()  # a date column
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def _text(value: Any) -> str:
    """A key value in an example: quoted only when it would not read as one word."""
    if value is None:
        return "null"
    if isinstance(value, str) and (not value or any(ch in value for ch in " ,=#()")):
        return repr(value)
    return str(value)
