"""Freshness allowances, the registry's ``freshness`` column: when a day's data counts as late.

A run for the interval ``[start, end)`` is late when it has not finished ``allowance`` after
``end``. On Airflow each dataset DAG with an allowance carries a deadline alert (Airflow 3
``DeadlineAlert``) on its runs: measured from the run's logical date (the interval's start), at
the schedule's longest interval plus the allowance, so it never fires early. When a run misses
it, the scheduler queues :func:`log_late` on the executor; it logs one warning line and, when
``PIPELINES_LATE_NOTIFIER`` names a function, calls it with the same facts (a team's notifier:
Slack, PagerDuty, e-mail). ``pipelines status`` applies the same rule to what the lake holds.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from typing import TYPE_CHECKING, Any

from pipelines.common.partitions import longest_gap
from pipelines.runtime import environment

if TYPE_CHECKING:
    from airflow.sdk import DeadlineAlert

log = logging.getLogger("pipelines.freshness")  # the late line's logger, as teams route it
CALLBACK = "pipelines.wiring.freshness.log_late"


def deadline_alert(dag_id: str, cron: str, allowance: dt.timedelta) -> DeadlineAlert:
    """The alert of a DAG whose data is due ``allowance`` after each interval ends."""
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=longest_gap(cron) + allowance,
        callback=SyncCallback(
            CALLBACK, kwargs={"dag_id": dag_id, "allowance": describe(allowance)}
        ),
        name="freshness",
    )


def describe(allowance: dt.timedelta) -> str:
    """``2h``, ``1d``, ``90m``: an allowance as the registry writes it."""
    minutes = int(allowance.total_seconds()) // 60
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def late_message(dag_id: str, allowance: str, context: dict[str, Any] | None) -> str:
    """The one line said when a run is late, from the context Airflow passes to callbacks."""
    run = (context or {}).get("dag_run") or {}
    deadline = ((context or {}).get("deadline") or {}).get("deadline_time")
    interval = run.get("data_interval_end") or run.get("logical_date") or "?"
    run_id = run.get("dag_run_id") or run.get("run_id") or "?"  # the REST API's name for it
    return (
        f"late: {dag_id} run {run_id} (interval ending {interval}) had not "
        f"finished {allowance} after its interval ended (deadline {deadline or '?'}, "
        f"state {run.get('state', '?')})"
    )


def log_late(dag_id: str, allowance: str, context: dict[str, Any] | None = None, **_: Any) -> str:
    """The deadline alert's callback: one warning line, then the team's notifier if one is set.

    Only a scheduled run is late: a manual run or a backfill of a past day starts after its
    deadline by design, and says so at info level instead."""
    message = late_message(dag_id, allowance, context)
    run_type = ((context or {}).get("dag_run") or {}).get("run_type", "scheduled")
    if run_type != "scheduled":
        log.info("%s; a %s run, not reported", message, run_type)
        return message
    log.warning("%s", message)
    notifier = environment.late_notifier()
    if notifier:
        module, _, name = notifier.rpartition(".")
        getattr(importlib.import_module(module), name)(
            message=message, dag_id=dag_id, context=context or {}
        )
    return message
