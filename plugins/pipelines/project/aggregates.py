"""aggregates.yaml -> :class:`AggregateSpec`: a business table grouped from one dataset's cleaned
table (checked against the registry; a bad entry is reported and skipped)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipelines.project.registry import COLUMN_RE, COLUMN_RULE, Registry

AGGREGATES = "aggregates.yaml"
METRIC_RE = re.compile(r"^(?P<fn>[a-z_]+)(?::(?P<col>.+))?$")
METRIC_FUNCTIONS = ("count", "sum", "mean", "min", "max", "count_distinct")


@dataclass(frozen=True)
class AggregateSpec:
    """A business table: ``dataset`` grouped by partition date plus ``group_by``."""

    name: str
    dataset: str
    group_by: tuple[str, ...]
    metrics: tuple[tuple[str, str, str | None], ...]  # (output, function, column)

    @property
    def metric_map(self) -> dict[str, tuple[str, str | None]]:
        return {out: (fn, col) for out, fn, col in self.metrics}

    @property
    def columns(self) -> set[str]:
        """Source columns the aggregate needs."""
        return set(self.group_by) | {col for _, _, col in self.metrics if col}


def parse_aggregate(entry: dict[str, Any], name: str, report, registry: Registry):
    """One entry of aggregates.yaml (its name already checked), or None after reporting: ``report``
    takes a message and keeps the entry's ``problems``."""
    unknown = set(entry) - {"name", "dataset", "group_by", "metrics", "description"}
    if unknown:
        report(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    dataset = entry.get("dataset")
    if registry.get(str(dataset)) is None:
        report(f"dataset {dataset!r} is not a valid dataset of registry.csv")
    group_by = entry.get("group_by") or []
    if not isinstance(group_by, list) or not all(
        isinstance(c, str) and COLUMN_RE.fullmatch(c) for c in group_by
    ):
        report("group_by must be a list of column names")
        group_by = []
    metrics = _metrics(entry.get("metrics"), report)
    if report.problems:
        return None
    return AggregateSpec(name, dataset, tuple(group_by), metrics)


def _metrics(raw: Any, report) -> tuple[tuple[str, str, str | None], ...]:
    if not isinstance(raw, dict) or not raw:
        report("metrics must be a mapping {output_column: 'function:column'}")
        return ()
    out = []
    for output, spec in raw.items():
        match = METRIC_RE.fullmatch(str(spec)) if isinstance(spec, str) else None
        fn, col = (match["fn"], match["col"]) if match else (None, None)
        if not isinstance(output, str) or not COLUMN_RE.fullmatch(output):
            report(f"metric output {output!r} is not a valid column name ({COLUMN_RULE})")
        elif fn not in METRIC_FUNCTIONS:
            report(
                f"metric {output}: {spec!r}: function must be one of: {', '.join(METRIC_FUNCTIONS)}"
            )
        elif fn == "count" and col:
            report(f"metric {output}: 'count' takes no column (it counts rows)")
        elif fn != "count" and not col:
            report(f"metric {output}: {fn!r} needs a column, as '{fn}:column'")
        elif col and not COLUMN_RE.fullmatch(col):
            report(f"metric {output}: {col!r} is not a valid column name ({COLUMN_RULE})")
        else:
            out.append((output, fn, col))
    return tuple(out)
