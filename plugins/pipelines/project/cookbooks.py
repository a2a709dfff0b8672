"""cookbooks.yaml -> :class:`CookbookSpec`: a parent DAG that triggers its children (datasets,
workflows, cookbooks) for the same logical date, then checks their outputs (a bad entry is
reported and skipped; so is one that names an unknown child or triggers itself through others)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.exceptions import Problem
from pipelines.project.registry import check_schedule

COOKBOOKS = "cookbooks.yaml"


@dataclass(frozen=True)
class Child:
    """One child of a cookbook (a dataset, a workflow or a cookbook) and the children it waits
    for."""

    name: str
    after: tuple[str, ...]


@dataclass(frozen=True)
class CookbookSpec:
    """A parent DAG that triggers children (datasets, workflows or cookbooks) for the same
    logical date.

    ``children`` are the entries of the YAML key ``steps``; ``cron`` is ``schedule`` with a
    preset spelled out (None: triggered only).
    """

    name: str
    schedule: str | None
    children: tuple[Child, ...]
    checks: dict[str, dict[str, Any]]  # step -> {min_rows: N, metrics: {name: {min, max}}}
    description: str = ""
    cron: str | None = None


def parse_cookbook(entry: dict[str, Any], name: str, report):
    """One entry of cookbooks.yaml (its name already checked), or None after reporting."""
    unknown = set(entry) - {"name", "schedule", "steps", "checks", "description"}
    if unknown:
        report(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    schedule, cron = entry.get("schedule"), None
    if schedule is not None and not isinstance(schedule, str):
        report(f"schedule: {schedule!r} is not a cron expression or preset")
    elif schedule is not None:
        cron, problem = check_schedule(schedule, writes_partitions=False)
        if problem:
            report(f"schedule: {problem}")
    children = _children(entry.get("steps"), report)
    checks = entry.get("checks") or {}
    if not isinstance(checks, dict) or not all(_check_ok(v) for v in checks.values()):
        report(
            "checks must map a step to {min_rows: N} (a workflow also to "
            "metrics: {NAME: {min: X, max: Y}})"
        )
        checks = {}
    if report.problems:
        return None
    description = str(entry.get("description", ""))
    return CookbookSpec(name, schedule, children, checks, description, cron)


def _check_ok(check: Any) -> bool:
    """``{min_rows: N, metrics: {name: {min: X, max: Y}}}``, each part optional."""
    if not isinstance(check, dict) or set(check) - {"min_rows", "metrics"}:
        return False
    if not isinstance(check.get("min_rows", 0), int):
        return False
    metrics = check.get("metrics", {})
    return isinstance(metrics, dict) and all(
        isinstance(bounds, dict)
        and bounds
        and set(bounds) <= {"min", "max"}
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bounds.values())
        for bounds in metrics.values()
    )


def _children(raw: Any, report) -> tuple[Child, ...]:
    """The YAML ``steps``: strings run one after the other; ``{name, after: [...]}`` names its
    own dependencies."""
    if not isinstance(raw, list) or not raw:
        report("steps must be a non-empty list")
        return ()
    children: list[Child] = []
    for item in raw:
        if isinstance(item, str):
            after = (children[-1].name,) if children else ()
            children.append(Child(item, after))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            after = item.get("after", [])
            if isinstance(after, str):
                after = [after]
            children.append(Child(item["name"], tuple(after)))
        else:
            report(f"step {item!r} must be a name or {{name: ..., after: [...]}}")
    names = [c.name for c in children]
    for child in children:
        if names.count(child.name) > 1:
            report(f"step {child.name!r} appears twice")
        for dep in child.after:
            if dep not in names:
                report(f"step {child.name!r} waits for {dep!r}, which is not a step")
    return tuple(children)


def check_children(
    cookbooks: list[CookbookSpec], runnable: set[str], problems: list[Problem]
) -> list[CookbookSpec]:
    """Drop cookbooks that name a child outside ``runnable`` (the valid datasets, workflows and
    cookbooks) or form a cycle through other cookbooks."""
    by_name = {c.name: c for c in cookbooks}
    good: list[CookbookSpec] = []
    for book in cookbooks:
        bad = [c.name for c in book.children if c.name not in runnable]
        if bad:
            problems.append(
                Problem(
                    COOKBOOKS,
                    None,
                    book.name,
                    f"unknown dataset, workflow or cookbook: {', '.join(map(repr, bad))}",
                )
            )
        elif _cycle(book.name, by_name, ()):
            problems.append(
                Problem(COOKBOOKS, None, book.name, "cookbooks trigger each other in a cycle")
            )
        else:
            good.append(book)
    return good


def _cycle(name: str, books: dict[str, CookbookSpec], path: tuple[str, ...]) -> bool:
    if name in path:
        return True
    book = books.get(name)
    return book is not None and any(_cycle(c.name, books, (*path, name)) for c in book.children)
