"""What each change of ``pipelines plan`` implies, per kind: a dataset's moved start_date
(intervals to backfill, or data that stays), a key, partition field or ingestion change, or a
declared column's type, format or name (the cleaned table is rebuilt), a changed test (the
existing days are rechecked: :mod:`.columns`), an aggregate's new columns, a workflow's days to
compute again (its config changed, or the code its days recorded), a cookbook's steps. Pure
functions of the wanted config, the recorded one, the lake's
:class:`~pipelines.plan.changes.State` and a workflow's :class:`~pipelines.plan.changes.Code`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pipelines.common.partitions import DAILY, Layer, run_days
from pipelines.plan import columns
from pipelines.plan.changes import (
    Action,
    Backfill,
    Change,
    Code,
    FieldChange,
    Recorded,
    State,
    shown,
    span,
)
from pipelines.project.config import Kind

REBUILT_BY = ("primary_key", "partition_field", "incremental_field", "ingestion")


def _days(cron: str, first: str, last: str | None) -> tuple[str, ...]:
    """The logical dates of ``cron``'s intervals from ``first`` to ``last`` (inclusive)."""
    if last is None or last < first:
        return ()
    return tuple(run_days(cron, dt.date.fromisoformat(first), dt.date.fromisoformat(last)))


# --- datasets -------------------------------------------------------------------------------


def _added_dataset(name: str, config: dict, want, state: State) -> Change:
    days = _days(config["cron"], config["start_date"], state.horizon)
    said = [f"new dataset: runs from {config['start_date']} on {config['schedule']}"]
    if days:
        said.append(f"{span(days)} will be backfilled (up to the namespace's newest run)")
    else:
        said.append("nothing to backfill: the namespace has no run on or after its start_date")
    backfill = Backfill(name, config["cron"], days) if days else None
    return Change(Kind.DATASET, name, Action.ADD, (), tuple(said), backfill)


def _changed_dataset(name: str, config: dict, fields, found: Recorded, want, state) -> Change:
    said: list[str] = []
    days: list[str] = []
    reset: list[tuple[Layer, str]] = []
    fields = columns.expand(fields)
    names = {f.name for f in fields}
    if "start_date" in names:
        days += _start_moved(config, fields, found, said)
    rebuilt = sorted(names & set(REBUILT_BY)) + (["columns"] if columns.rebuilds(fields) else [])
    if rebuilt:
        aggregates = [
            n for (k, n), c in want.items() if k is Kind.AGGREGATE and c["dataset"] == name
        ]
        reset = [(Layer.CLEANED, name), *((Layer.AGGREGATED, a) for a in aggregates)]
        days += _existing(config, found)
        said.append(
            f"{', '.join(rebuilt)} changed: the cleaned table must be rebuilt: "
            f"{len(found.partitions)} partitions, re-merged from "
            f"{span(list(found.days), 'delivery')}"
            + (f"; aggregates recomputed: {', '.join(aggregates)}" if aggregates else "")
        )
    elif columns.rechecks(fields):
        days += _existing(config, found)
        which = ", ".join(columns.rechecks(fields))
        said.append(_RECHECK.format(which=which, days=span(_existing(config, found), "day")))
    said += [_DATASET_FIELDS[f.name](f, found) for f in fields if f.name in _DATASET_FIELDS]
    backfill = Backfill(name, config["cron"], tuple(days)) if days else None
    return Change(Kind.DATASET, name, Action.CHANGE, fields, tuple(said), backfill, tuple(reset))


_RECHECK = (
    "{which} changed: recheck: the {days} the lake holds are run again against the tests "
    "(nothing is emptied)"
)


def _existing(config: dict, found: Recorded) -> list[str]:
    """The days the lake holds deliveries of, from the start_date on."""
    return [d for d in found.days if d >= config["start_date"]]


def _start_moved(config: dict, fields, found: Recorded, said: list[str]) -> list[str]:
    moved = next(f for f in fields if f.name == "start_date")
    if moved.before is None:
        said.append(f"start_date is {moved.after} (none was recorded)")
        return []
    if moved.after < moved.before:
        last = (dt.date.fromisoformat(moved.before) - dt.timedelta(days=1)).isoformat()
        days = [d for d in _days(config["cron"], moved.after, last) if d not in found.days]
        said.append(
            f"start_date moved earlier ({moved.before} -> {moved.after}): "
            f"{span(days)} will be backfilled"
        )
        return days
    before = [p for p in found.partitions if p < moved.after]
    said.append(
        f"start_date moved later ({moved.before} -> {moved.after}): the data before it stays "
        f"({len(before)} cleaned partitions); no run deletes it"
    )
    return []


def _said(template: str) -> Callable[[FieldChange, Recorded], str]:
    return lambda f, found: template.format(
        field=f.name, before=shown(f.before), after=shown(f.after), deliveries=len(found.days)
    )


_READ_AGAIN = (
    "{field} changed: new deliveries are read with {after}; the {deliveries} already ingested "
    "are not read again (backfill their days to re-read them)"
)
_CHECKS = "{field} changed ({before} -> {after}): the next runs check against it; data unchanged"
_DATASET_FIELDS = {
    "schedule": _said(
        "schedule changes ({before} -> {after}): runs follow it from the deploy on; the "
        "partitions written already keep their dates"
    ),
    "source": _said(_READ_AGAIN),
    "format": _said(_READ_AGAIN),
    "options": _said(_READ_AGAIN),
    "on_schema_change": _said(_CHECKS),
    "max_drop_pct": _said(_CHECKS),
    "max_quarantine_pct": _said(_CHECKS),
}


# --- aggregates -----------------------------------------------------------------------------


def _added_aggregate(name: str, config: dict, want, state: State) -> Change:
    dataset = state.tables.get((Kind.DATASET, config["dataset"]))
    columns = [*config["group_by"], *config["metrics"]]
    said = [f"new aggregate of {config['dataset']}: columns dt, {', '.join(columns)}"]
    backfill = _of_dataset(config["dataset"], dataset, want, said)
    return Change(Kind.AGGREGATE, name, Action.ADD, (), tuple(said), backfill)


def _of_dataset(dataset: str, found: Recorded | None, want, said: list[str]) -> Backfill | None:
    """Recompute an aggregate: its dataset backfilled over the deliveries the lake holds."""
    source = want.get((Kind.DATASET, dataset))
    if not found or not found.days or source is None:
        said.append(f"built when {dataset} next runs (no delivery of it in the lake yet)")
        return None
    said.append(
        f"computed for {len(found.partitions)} cleaned partitions of {dataset}: "
        f"{dataset} is backfilled over its {span(list(found.days), 'delivery')}"
    )
    return Backfill(dataset, source["cron"], found.days)


def _changed_aggregate(name: str, config: dict, fields, found: Recorded, want, state) -> Change:
    said: list[str] = []
    by_name = {f.name: f for f in fields}
    if "metrics" in by_name:
        said += _metric_changes(by_name["metrics"].before or {}, config["metrics"])
    if "group_by" in by_name:
        f = by_name["group_by"]
        said.append(f"grain changes: group_by {shown(f.before)} -> {shown(f.after)}")
    if "dataset" in by_name:
        said.append(f"now aggregates {config['dataset']} (was {by_name['dataset'].before})")
    dataset = state.tables.get((Kind.DATASET, config["dataset"]))
    backfill = _of_dataset(config["dataset"], dataset, want, said)
    return Change(Kind.AGGREGATE, name, Action.CHANGE, fields, tuple(said), backfill)


def _metric_changes(before: dict, after: dict) -> list[str]:
    """The aggregate's columns gained, lost and computed differently (its metrics are the
    columns it declares besides group_by)."""
    added = [f"{k} ({v})" for k, v in after.items() if k not in before]
    gone = [k for k in before if k not in after]
    redone = [f"{k} ({before[k]} -> {v})" for k, v in after.items() if before.get(k, v) != v]
    said = [f"new columns: {', '.join(added)}"] if added else []
    said += [f"columns no longer written: {', '.join(gone)}"] if gone else []
    said += [f"columns recomputed: {', '.join(redone)}"] if redone else []
    return said


# --- workflows ------------------------------------------------------------------------------

_UNDECLARED = "its columns are what the function returns (not declared): the plan cannot list them"
_RECOMPUTED_BY = ("function", "inputs", "params", "primary_key")


def _added_workflow(name: str, config: dict, want, state: State) -> Change:
    days = _ready_days(config, state)
    said = [f"new workflow: {config['function']}", _UNDECLARED]
    if days:
        said.append(f"{span(days, 'day')} will be computed (the days its inputs have landed)")
    else:
        said.append("nothing to compute yet: its inputs have no day in common in the lake")
    backfill = Backfill(name, config["cron"] or DAILY, days) if days else None
    return Change(Kind.WORKFLOW, name, Action.ADD, (), tuple(said), backfill)


def _ready_days(config: dict, state: State) -> tuple[str, ...]:
    """The days every input of a workflow has landed in the namespace."""
    layers = {"workflows": Kind.WORKFLOW, "aggregated": Kind.AGGREGATE}
    common: set[str] | None = None
    for item in config["inputs"].values():
        found = state.tables.get((layers.get(item["layer"], Kind.DATASET), item["table"]))
        days = set(found.days if item["layer"] == "raw" else found.landed) if found else set()
        common = days if common is None else common & days
    return tuple(sorted(common or ()))


def _changed_workflow(
    name: str, config: dict, fields, found: Recorded, want, state, code: Code | None = None
) -> Change:
    """A workflow's config change, and its code's: the days whose run recorded another hash
    than ``code`` (its module or params changed) are computed again, in one entry with the
    config's change (a params change changes both: it is said once)."""
    said = [f"{f.name} changes: {shown(f.before)} -> {shown(f.after)}" for f in fields]
    changed = {f.name for f in fields}
    days = found.days if changed & set(_RECOMPUTED_BY) else ()
    rewritten = code_changed(found, code)
    if changed & set(_RECOMPUTED_BY) - {"params"}:
        said.append(f"its {span(list(days), 'day')} written are computed again")
    elif days or rewritten:
        days = tuple(sorted({*days, *rewritten}))
        file = code.file if code else config["function"].split(":")[0].replace(".", "/") + ".py"
        said.append(f"code changed ({file} or params): rerun {span(list(days), 'day')}")
    if days:
        said.append(_UNDECLARED)
    if changed & {"schedule", "cron"}:
        said.append("runs follow the new schedule from the deploy on")
    backfill = Backfill(name, config["cron"] or DAILY, days) if days else None
    return Change(Kind.WORKFLOW, name, Action.CHANGE, fields, tuple(said), backfill)


def code_changed(found: Recorded, code: Code | None) -> tuple[str, ...]:
    """The landed days whose run recorded a code hash other than ``code``'s (none: the code
    now is not known, or a day recorded no hash)."""
    if code is None:
        return ()
    return tuple(day for day, recorded in sorted(found.codes.items()) if recorded != code.hash)


# --- cookbooks ------------------------------------------------------------------------------


def cookbook_change(name: str, config: dict, before: dict | None) -> Change | None:
    """A cookbook's steps (its membership) and schedule against what its last run recorded."""
    steps = list(config["steps"])
    if before is None:
        said = (f"new cookbook (or not run in this namespace yet): triggers {', '.join(steps)}",)
        return Change(Kind.COOKBOOK, name, Action.ADD, (), said)
    old = dict(before.get("steps", {}))
    said = [f"now triggers {s}" for s in steps if s not in old]
    said += [f"no longer triggers {s}" for s in old if s not in config["steps"]]
    said += [
        f"{s} now waits for {shown(after) or 'nothing'} (was {shown(old[s]) or 'nothing'})"
        for s, after in config["steps"].items()
        if s in old and old[s] != after
    ]
    if before.get("cron") != config["cron"]:
        said.append(
            f"schedule changes: {shown(before.get('schedule'))} -> {shown(config['schedule'])}"
        )
    if not said:
        return None
    fields = tuple(
        FieldChange(k, before.get(k), config[k]) for k in config if before.get(k) != config[k]
    )
    return Change(Kind.COOKBOOK, name, Action.CHANGE, fields, tuple(said))


ADDED = {
    Kind.DATASET: _added_dataset,
    Kind.AGGREGATE: _added_aggregate,
    Kind.WORKFLOW: _added_workflow,
}
CHANGED = {
    Kind.DATASET: _changed_dataset,
    Kind.AGGREGATE: _changed_aggregate,
    Kind.WORKFLOW: _changed_workflow,
}
