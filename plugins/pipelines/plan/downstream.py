"""The workflows that follow a plan's reruns of another workflow.

A workflow reading another's output (an input of ``layer: workflows``) reads what a rerun of that
one rewrites: its days whose windows hold a rerun day are computed again after it, so that
``plan --apply`` leaves no output computed from the code it replaced. Every workflow backfill
runs in dependency order (:func:`in_order`: a workflow after the workflows it reads).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipelines.common.partitions import DAILY, Layer
from pipelines.common.windows import Window
from pipelines.plan.changes import Action, Backfill, Change, Key, Recorded, State, span
from pipelines.project.config import Kind


def in_order(want: Mapping[Key, dict[str, Any]]) -> list[str]:
    """The workflows of ``want``, each after the workflows it reads (else in file order)."""
    reads = {
        name: [i["table"] for i in config["inputs"].values() if i["layer"] == Layer.WORKFLOWS]
        for (kind, name), config in want.items()
        if kind is Kind.WORKFLOW
    }
    done: list[str] = []

    def visit(name: str, path: frozenset[str]) -> None:
        if name in done or name not in reads or name in path:  # a cycle is a validate error
            return
        for upstream in reads[name]:
            visit(upstream, path | {name})
        done.append(name)

    for name in reads:
        visit(name, frozenset())
    return done


def follow(changes: list[Change], want: Mapping[Key, dict[str, Any]], state: State) -> list[Change]:
    """``changes`` with the days of each workflow whose windows hold a day that a workflow it
    reads is rerun for: added to its own change, or in a change of its own; the workflow rerun
    says who follows it."""
    by_name = {c.name: c for c in changes if c.kind is Kind.WORKFLOW}
    followers: dict[str, list[str]] = {}
    for name in in_order(want):
        found = state.tables.get((Kind.WORKFLOW, name))
        config = want[(Kind.WORKFLOW, name)]
        reached = _reached(config, found, by_name) if found else {}
        if not reached:
            continue
        by_name[name] = _followed(by_name.get(name), name, config, reached)
        for upstream in reached:
            followers.setdefault(upstream, []).append(name)
    for upstream, names in followers.items():
        said = f"the workflows reading it follow: {', '.join(names)}"
        change = by_name[upstream]
        by_name[upstream] = replace(change, implications=(*change.implications, said))
    out = [by_name.pop(c.name) if c.kind is Kind.WORKFLOW else c for c in changes]
    return out + list(by_name.values())


def _reached(config: dict, found: Recorded, by_name: Mapping[str, Change]) -> dict[str, list]:
    """Per workflow input rerun by the plan, the landed days whose windows hold a rerun day."""
    reached: dict[str, list[str]] = {}
    for item in config["inputs"].values():
        upstream = by_name.get(item["table"]) if item["layer"] == Layer.WORKFLOWS else None
        if upstream is None or upstream.backfill is None:
            continue
        rerun, window = sorted(set(upstream.backfill.days)), Window.parse(item["window"])
        days = [day for day in found.landed if _holds(window, day, rerun)]
        if days:
            reached[item["table"]] = days
    return reached


def _holds(window: Window, day: str, rerun: list[str]) -> bool:
    """Whether day ``day``'s window holds one of the ``rerun`` days (sorted)."""
    reads = window.reads(day)
    at = bisect.bisect_left(rerun, reads.first) if reads.first else 0
    return at < len(rerun) and rerun[at] <= day


def _followed(change: Change | None, name: str, config: dict, reached: dict) -> Change:
    """``change`` (None: none of its own) with the reached days added to its backfill."""
    days = tuple(sorted({d for found in reached.values() for d in found}))
    said = (
        f"reads {', '.join(reached)}, rerun before it: the {span(days, 'day')} whose windows "
        "hold a rerun day are computed again after it"
    )
    if change is None:
        backfill = Backfill(name, config["cron"] or DAILY, days)
        return Change(Kind.WORKFLOW, name, Action.CHANGE, (), (said,), backfill)
    days = tuple(sorted({*days, *(change.backfill.days if change.backfill else ())}))
    backfill = Backfill(name, config["cron"] or DAILY, days)
    return replace(change, implications=(*change.implications, said), backfill=backfill)
