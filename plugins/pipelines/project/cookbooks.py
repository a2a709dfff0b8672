"""cookbooks.yaml -> :class:`CookbookSpec`: a parent DAG that triggers its children (datasets,
workflows, cookbooks) for the same logical date, then checks their outputs (a bad entry is
reported and skipped; so is one that names an unknown child, triggers itself through others, or
checks something it does not run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.exceptions import Problem
from pipelines.project.cookbook_checks import parse_checks, target_faults
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
    checks = parse_checks(entry.get("checks"), report)
    if report.problems:
        return None
    description = str(entry.get("description", ""))
    return CookbookSpec(name, schedule, children, checks, description, cron)


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


def check_targets(
    cookbooks: list[CookbookSpec],
    kinds: Mapping[str, str],
    dataset_of: Mapping[str, str],
    problems: list[Problem],
) -> list[CookbookSpec]:
    """Drop cookbooks a check of which names something other than a dataset or workflow they
    run (a typo, an aggregate, a cookbook), or gives a dataset metrics (see
    :func:`~pipelines.project.cookbook_checks.target_faults` for the arguments).

    :param cookbooks: what :func:`check_children` kept
    """
    by_name = {c.name: c for c in cookbooks}
    good: list[CookbookSpec] = []
    for book in cookbooks:
        faults = target_faults(book, by_name, kinds, dataset_of)
        problems.extend(Problem(COOKBOOKS, None, book.name, why) for why in faults)
        if not faults:
            good.append(book)
    return good


def _cycle(name: str, books: dict[str, CookbookSpec], path: tuple[str, ...]) -> bool:
    if name in path:
        return True
    book = books.get(name)
    return book is not None and any(_cycle(c.name, books, (*path, name)) for c in book.children)
