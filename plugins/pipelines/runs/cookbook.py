"""A cookbook run without a scheduler: the children in-process, in order, then ``verify``.

``TriggerDagRunOperator`` cannot complete without a scheduler (the child run is queued and nothing
runs it), so this runs each child DAG in-process for the same logical date (the local runner, or
``dag.test()`` with ``full_airflow``), then the parent DAG itself with its trigger tasks marked
successful, so its own checks run for real.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.project.config import Entry, Kind, Project
from pipelines.runs.local import RunOutcome, run_dag
from pipelines.runtime import environment
from pipelines.wiring.task_ids import TRIGGERS


def run_cookbook(
    project: Project,
    cookbook: Entry | str,
    ds: str,
    report: Callable[[RunOutcome], None] = lambda o: None,
    *,
    full_airflow: bool = False,
    conf: dict | None = None,
) -> list[RunOutcome]:
    """Run every child for ``ds`` (nested cookbooks too), stop at the first failure, then verify.

    :param cookbook: the cookbook's entry (or its name, resolved here)
    :param full_airflow: run each DAG through ``dag.test()`` (see
        :func:`pipelines.runs.local.run_dag`)
    :param conf: each run's ``dag_run.conf`` (the trigger tasks pass the parent's on)
    :return: one outcome per DAG run, the parent's last
    """
    book = project.resolve(cookbook, Kind.COOKBOOK)
    ns = environment.namespace()
    outcomes: list[RunOutcome] = []
    for child in book.in_order():
        if child.kind is Kind.COOKBOOK:
            children = run_cookbook(
                project, child, ds, report, full_airflow=full_airflow, conf=conf
            )
            outcomes.extend(children)
            if not children[-1].ok:
                return outcomes
            continue
        outcome = run_dag(child.dag_id(ns), ds, full_airflow=full_airflow, conf=conf)
        report(outcome)
        outcomes.append(outcome)
        if not outcome.ok:
            return outcomes
    parent = run_dag(book.dag_id(ns), ds, skip=TRIGGERS, full_airflow=full_airflow, conf=conf)
    report(parent)
    outcomes.append(parent)
    return outcomes
