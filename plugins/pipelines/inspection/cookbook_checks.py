"""What a cookbook asserts after its children ran: every dataset step's cleaned table has unique,
non-null keys and at least ``min_rows`` rows, each of its aggregates has rows, and every workflow
step wrote the day with at least ``min_rows`` rows and metrics within their bounds."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.common import transforms
from pipelines.exceptions import QualityCheckFailed
from pipelines.lake.lake import Lake
from pipelines.project.config import Entry, Kind, Project


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


def verify(project: Project, cookbook: Entry | str, lake: Lake, ds: str | None = None) -> Report:
    """Check the outputs of every dataset and workflow the cookbook (and its sub-cookbooks) ran.

    :param cookbook: the cookbook's entry (or its name, resolved here)
    :param ds: the day the cookbook ran for (its workflows' outputs of that day are checked)
    """
    book = project.resolve(cookbook, Kind.COOKBOOK)
    checks = book.spec.checks
    report = Report()
    for workflow in book.runs(Kind.WORKFLOW):
        _verify_workflow(report, lake, workflow.name, ds, checks.get(workflow.name, {}))
    for entry in book.runs(Kind.DATASET):
        dataset, name = entry.spec, entry.name
        table = lake.cleaned(dataset)
        rows = table.read_current(dataset.ingestion.current_partitions(table.snapshot().partitions))
        minimum = checks.get(name, {}).get("min_rows", 1)
        report.expect(
            len(rows) >= minimum,
            f"{name}: cleaned has {len(rows)} rows, expected at least {minimum}",
        )
        if not rows.empty:
            nulls, dupes = transforms.key_faults(rows, dataset.primary_key)
            report.expect(dupes == 0, f"{name}: {dupes} duplicate keys")
            report.expect(nulls == 0, f"{name}: {nulls} null keys")
        for spec in project.aggregates_of(name):
            count = lake.aggregated(spec.name).snapshot().rows()
            report.expect(
                count > 0, f"{spec.name}: aggregated has {count} rows, expected at least 1"
            )
    return report


def _verify_workflow(report: Report, lake: Lake, name: str, ds: str | None, check: dict) -> None:
    snap = lake.workflow(name).snapshot()
    day = ds or max(snap.partitions, default=None)
    entry = snap.partitions.get(day or "", {})
    minimum = check.get("min_rows", 0)  # a workflow may write an empty day; it must write it
    rows = int(entry.get("rows", 0))
    report.expect(
        day in snap.partitions and rows >= minimum,
        f"{name}: workflows ds={day} has {rows} rows, expected at least {minimum}",
    )
    metrics = snap.run_metrics(day or "").get("metrics", {})
    for metric, bounds in check.get("metrics", {}).items():
        value = metrics.get(metric)
        low, high = bounds.get("min"), bounds.get("max")
        inside = isinstance(value, int | float) and (low is None or value >= low)
        inside = inside and (high is None or value <= high)
        report.expect(inside, f"{name}: metric {metric} = {value} (expected {_bounds(low, high)})")


def _bounds(low, high) -> str:
    return " and ".join(
        filter(
            None, [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
        )
    )
