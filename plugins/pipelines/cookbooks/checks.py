"""What a cookbook asserts after its children ran: every dataset step's cleaned table has unique,
non-null keys and at least ``min_rows`` rows, and each of its aggregates has rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.components.lake import Lake
from pipelines.config import Project
from pipelines.exceptions import QualityCheckFailed
from pipelines.merge import cleaned_key
from pipelines.partitions import Layer


@dataclass
class Report:
    """Pass/fail lines of one verification."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def expect(self, ok: bool, message: str) -> None:
        (self.passed if ok else self.failed).append(message)

    def lines(self) -> list[str]:
        return [f"ok   {m}" for m in self.passed] + [f"FAIL {m}" for m in self.failed]

    def raise_for_failures(self) -> None:
        if self.failed:
            raise QualityCheckFailed("; ".join(self.failed))

    def as_dict(self) -> dict:
        return {"passed": len(self.passed), "failed": len(self.failed)}


def verify(project: Project, cookbook: str, lake: Lake) -> Report:
    """Check the outputs of every dataset the cookbook (and its sub-cookbooks) ran."""
    book = project.cookbook(cookbook)
    report = Report()
    for name in datasets_of(project, cookbook):
        dataset = project.dataset(name)
        table = lake.table(Layer.CLEANED, name, key=cleaned_key(dataset))
        snap = table.snapshot()
        parts = sorted(snap.partitions)
        if cleaned_key(dataset) == "ds":  # full: the newest snapshot is the current table
            parts = parts[-1:]
        rows = table.read(parts, snap)
        minimum = book.checks.get(name, {}).get("min_rows", 1)
        report.expect(len(rows) >= minimum, f"{name}: cleaned has {len(rows)} rows (>= {minimum})")
        if not rows.empty:
            pk = list(dataset.primary_key)
            dupes = int(rows.duplicated(subset=pk).sum())
            nulls = int(rows[pk].isna().any(axis=1).sum())
            report.expect(dupes == 0, f"{name}: {dupes} duplicate keys")
            report.expect(nulls == 0, f"{name}: {nulls} null keys")
        for spec in project.aggregates_of(name):
            count = lake.table(Layer.AGGREGATED, spec.name).snapshot().rows()
            report.expect(count > 0, f"{spec.name}: aggregated has {count} rows (> 0)")
    return report


def datasets_of(project: Project, cookbook: str) -> list[str]:
    """Dataset names a cookbook runs, through nested cookbooks, in step order, once each."""
    out: list[str] = []
    for step in project.cookbook(cookbook).steps:
        names = datasets_of(project, step.name) if project.cookbook(step.name) else [step.name]
        out.extend(n for n in names if n not in out)
    return out
