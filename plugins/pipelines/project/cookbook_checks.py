"""The ``checks`` of a cookbooks.yaml entry, made to check what they say: a check's bounds are
parsed with its entry (``min_row`` is named, with "did you mean 'min_rows'?"); its key must be a
dataset or workflow the cookbook runs, directly or through a nested cookbook (only those have rows
to check), which is known only once every file is parsed. What verifies them after a run is
:mod:`pipelines.inspection.cookbook_checks`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

CHECK_KEYS = ("min_rows", "metrics")
BOUND_KEYS = ("min", "max")
SHAPE = (
    "checks must map a step to {min_rows: N} (a workflow also to metrics: {NAME: {min: X, max: Y}})"
)


def parse_checks(raw: Any, report) -> dict[str, dict[str, Any]]:
    """An entry's ``checks`` (``{}`` when it has none), after reporting each bad part with the
    step and key it is about."""
    if not raw:
        return {}
    if not isinstance(raw, dict):
        report(SHAPE)
        return {}
    for step, check in raw.items():
        for why in _check_faults(check):
            report(f"checks: {step}: {why}")
    return raw


def _check_faults(check: Any) -> list[str]:
    """What is wrong with one ``{min_rows: N, metrics: {NAME: {min: X, max: Y}}}``."""
    if not isinstance(check, dict):
        return [f"must be a mapping of {', '.join(CHECK_KEYS)}, got {check!r}"]
    faults = [_unknown(key, CHECK_KEYS) for key in check if key not in CHECK_KEYS]
    rows = check.get("min_rows", 0)
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        faults.append(f"min_rows must be a whole number >= 0, got {rows!r}")
    metrics = check.get("metrics", {})
    if not isinstance(metrics, dict):
        return [*faults, f"metrics must map a metric to {{min: X, max: Y}}, got {metrics!r}"]
    for metric, bounds in metrics.items():
        faults += [f"metrics: {metric}: {why}" for why in _bound_faults(bounds)]
    return faults


def _bound_faults(bounds: Any) -> list[str]:
    """What is wrong with one metric's ``{min: X, max: Y}`` (either or both)."""
    if not isinstance(bounds, dict) or not bounds:
        return [f"must be {{min: X, max: Y}} (either or both), got {bounds!r}"]
    faults = [_unknown(key, BOUND_KEYS) for key in bounds if key not in BOUND_KEYS]
    for key in BOUND_KEYS:
        value = bounds.get(key, 0)
        if not isinstance(value, int | float) or isinstance(value, bool):
            faults.append(f"{key} must be a number, got {value!r}")
    low, high = bounds.get("min"), bounds.get("max")
    if not faults and low is not None and high is not None and low > high:
        faults.append(f"min {low} is above max {high}: no value passes")
    return faults


def _unknown(key: Any, known: tuple[str, ...]) -> str:
    near = difflib.get_close_matches(str(key), known, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"unknown key {key!r}; {hint}known: {', '.join(known)}"


def target_faults(
    book, books: Mapping[str, Any], kinds: Mapping[str, str], dataset_of: Mapping[str, str]
) -> list[str]:
    """Why checks of ``book`` (a :class:`~pipelines.project.cookbooks.CookbookSpec`) name no
    dataset or workflow it runs, or give a dataset metrics; one line each, none when all is well.

    :param books: the cookbooks whose steps are known and form no cycle, by name
    :param kinds: each valid name of the project -> its kind (``dataset``, ``aggregate``,
        ``workflow``, ``cookbook``)
    :param dataset_of: each aggregate -> the dataset that writes it
    """
    runs, whole = _runs(book, books, kinds)
    faults = []
    for key, check in book.checks.items():
        kind = kinds.get(key) if isinstance(key, str) else None
        if key in runs and kind == "dataset" and "metrics" in check:
            faults.append(
                f"checks: {key}: metrics: {key!r} is a dataset; only a workflow has metrics"
            )
        elif key in runs:
            continue
        elif kind == "aggregate":
            faults.append(_aggregate(key, dataset_of[key]))
        elif kind == "cookbook":
            faults.append(
                f"checks: {key!r} is a cookbook, which has no rows or metrics: key each check by "
                "a dataset or workflow it runs"
            )
        elif kind is None or whole:  # else a skipped nested cookbook (reported) may run it
            faults.append(_not_run(key, kind, runs))
    return faults


def _runs(book, books: Mapping[str, Any], kinds: Mapping[str, str]) -> tuple[list[str], bool]:
    """The datasets and workflows a run of ``book`` runs (through its nested cookbooks, in the
    order of its steps), and whether all of them are known (a skipped nested cookbook hides what
    it would run)."""
    found: dict[str, None] = {}
    whole = True
    for child in book.children:
        nested = books.get(child.name)
        if nested is not None:
            inner, known = _runs(nested, books, kinds)
            found.update(dict.fromkeys(inner))
            whole = whole and known
        elif kinds.get(child.name) in ("dataset", "workflow"):
            found[child.name] = None
        else:
            whole = False
    return list(found), whole


def _aggregate(key: str, dataset: str) -> str:
    return (
        f"checks: {key!r} is an aggregate, not a step: the step is its dataset {dataset!r} "
        f"(a check on {dataset!r} bounds its cleaned rows; every aggregate of a dataset step "
        "must have rows)"
    )


def _not_run(key: Any, kind: str | None, runs: list[str]) -> str:
    near = difflib.get_close_matches(str(key), runs, n=1)
    steps = ", ".join(runs) or "none"
    hint = f"did you mean {near[0]!r}?" if near else f"the steps it can check: {steps}"
    what = f"a {kind}, not" if kind else "not"
    return f"checks: {key!r} is {what} a step of this cookbook; {hint}"
