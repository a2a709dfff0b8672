"""A cookbook run without a scheduler: the children in-process, in order, then ``verify``.

``TriggerDagRunOperator`` cannot complete without a scheduler (the child run is queued and nothing
runs it), so this runs each child DAG with ``dag.test()`` for the same logical date, then the
parent DAG itself with its trigger tasks marked successful, so its own checks run for real.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.components import environment
from pipelines.config import Kind, Project
from pipelines.local import RunOutcome, run_dag


def ordered_children(project: Project, cookbook: str) -> list[str]:
    """The children of a cookbook in an order that respects ``after`` (stable: file order
    first)."""
    waiting = list(project.require(cookbook, Kind.COOKBOOK).children)
    done: list[str] = []
    while waiting:
        ready = next(c for c in waiting if all(d in done for d in c.after))
        done.append(ready.name)
        waiting.remove(ready)
    return done


def run_cookbook(
    project: Project, cookbook: str, ds: str, report: Callable[[RunOutcome], None] = lambda o: None
) -> list[RunOutcome]:
    """Run every child for ``ds`` (nested cookbooks too), stop at the first failure, then verify.

    :return: one outcome per DAG run, the parent's last
    """
    ns = environment.namespace()
    outcomes: list[RunOutcome] = []
    for name in ordered_children(project, cookbook):
        if project.cookbook(name) is not None:
            children = run_cookbook(project, name, ds, report)
            outcomes.extend(children)
            if not children[-1].ok:
                return outcomes
            continue
        outcome = run_dag(project.dag_id(name, ns), ds)
        report(outcome)
        outcomes.append(outcome)
        if not outcome.ok:
            return outcomes
    parent = run_dag(environment.cookbook_dag_id(cookbook, ns), ds, skip=r"trigger_.*")
    report(parent)
    outcomes.append(parent)
    return outcomes
