"""What ``pipelines plan`` finds: a :class:`Plan` of :class:`Change` entries, each with what it
implies in words and what ``--apply`` must run (a :class:`Backfill`) or rebuild whole (``reset``:
built beside the current tables and switched in once every day succeeded), and the lake's side
of the comparison (:class:`State`, one :class:`Recorded` per entry)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.common.partitions import Layer, interval_for
from pipelines.project.config import Kind

Key = tuple[Kind, str]
TABLES = {
    Kind.DATASET: Layer.CLEANED,
    Kind.AGGREGATE: Layer.AGGREGATED,
    Kind.WORKFLOW: Layer.WORKFLOWS,
}
NOT_RECORDED = "config not recorded (written by an older version)"


class Action(enum.StrEnum):
    """What deploying does to one entry."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"
    UNKNOWN = "unknown"  # its tables record no config: what changes cannot be told

    @property
    def mark(self) -> str:
        return {"add": "+", "change": "~", "remove": "-", "unknown": "?"}[self.value]


@dataclass(frozen=True)
class Recorded:
    """What the namespace's lake holds of one entry.

    :param config: the config its table records (None: written before configs were recorded)
    :param partitions: its main table's partitions (cleaned, aggregated, workflows)
    :param days: the days it was run for: a dataset's raw deliveries, the others' runs
    :param landed: the days whose run landed (checks passed): what a workflow can read
    :param codes: a workflow's landed days and the hash of the code each one's run recorded
        (a day written before hashes were recorded has none)
    """

    config: dict[str, Any] | None
    partitions: tuple[str, ...] = ()
    days: tuple[str, ...] = ()
    landed: tuple[str, ...] = ()
    codes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Code:
    """A workflow's code as the project holds it now.

    :param hash: :func:`pipelines.steps.workflow_code.code_hash` of it (function, module, params)
    :param file: its module's file, as the plan names it (``features.py``)
    """

    hash: str
    file: str


@dataclass(frozen=True)
class State:
    """Every table entry and cookbook the namespace's lake holds, and its newest run day."""

    tables: Mapping[Key, Recorded] = field(default_factory=dict)
    cookbooks: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def horizon(self) -> str | None:
        """The newest day any dataset of the namespace was run for (None: none ran)."""
        days = [d for (kind, _), r in self.tables.items() if kind is Kind.DATASET for d in r.days]
        return max(days, default=None)


@dataclass(frozen=True)
class Backfill:
    """The days ``name`` (a dataset or a workflow) must be run for, as ranges on its schedule."""

    name: str
    cron: str
    days: tuple[str, ...]

    @property
    def ranges(self) -> list[tuple[str, str, int]]:
        """``(first, last, count)`` of each run of consecutive intervals."""
        out: list[list] = []
        for day in sorted(set(self.days)):
            if out and _next_day(self.cron, out[-1][1]) == day:
                out[-1][1:] = [day, out[-1][2] + 1]
            else:
                out.append([day, day, 1])
        return [tuple(r) for r in out]

    def describe(self) -> str:
        return ", ".join(f"{a} .. {b} ({n})" if n > 1 else a for a, b, n in self.ranges)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ranges": [list(r) for r in self.ranges]}


@dataclass(frozen=True)
class FieldChange:
    name: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.name, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Change:
    """One entry deploying adds, changes or removes, and what that implies.

    :param backfill: what ``--apply`` runs for it
    :param reset: the tables ``--apply`` rebuilds whole: its backfill writes them beside the
        current ones, which stay until every day succeeded (:attr:`Plan.rebuilds`)
    """

    kind: Kind
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    implications: tuple[str, ...] = ()
    backfill: Backfill | None = None
    reset: tuple[tuple[Layer, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "name": self.name,
            "action": str(self.action),
            "fields": [f.as_dict() for f in self.fields],
            "implications": list(self.implications),
            "backfill": self.backfill.as_dict() if self.backfill else None,
            "reset": [f"{layer}.{name}" for layer, name in self.reset],
        }


@dataclass(frozen=True)
class Plan:
    """Every change deploying the project to ``namespace`` makes, in kind then project order
    (a workflow after the workflows it reads)."""

    namespace: str
    changes: tuple[Change, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        return {str(a): sum(c.action is a for c in self.changes) for a in Action}

    @property
    def backfills(self) -> list[Backfill]:
        """One backfill per name (the days of all its changes), datasets before workflows,
        workflows in the changes' order (dependency order)."""
        merged: dict[str, Backfill] = {}
        for change in sorted(self.changes, key=_rank):
            if change.backfill:
                b, seen = change.backfill, merged.get(change.backfill.name)
                merged[b.name] = Backfill(b.name, b.cron, (*(seen.days if seen else ()), *b.days))
        return list(merged.values())

    @property
    def rebuilds(self) -> dict[str, tuple[tuple[Layer, str], ...]]:
        """Per dataset whose tables are rebuilt whole (a change with ``reset``), every table its
        runs write but raw: its quarantine, its aggregates, its cleaned table last (the one whose
        recorded config the next plan compares: switched last, a rebuild cut short is planned
        again)."""
        out: dict[str, tuple[tuple[Layer, str], ...]] = {}
        for change in self.changes:
            if change.reset and change.kind is Kind.DATASET:
                tables = [(Layer.QUARANTINE, change.name), *change.reset]
                rest = [t for t in tables if t[0] is not Layer.CLEANED]
                out[change.name] = (*rest, *(t for t in tables if t[0] is Layer.CLEANED))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "nothing_to_do": self.empty,
            "counts": self.counts(),
            "changes": [c.as_dict() for c in self.changes],
            "backfills": [b.as_dict() for b in self.backfills],
        }


def _next_day(cron: str, day: str) -> str:
    """The logical date of ``cron``'s first interval starting after day ``day``."""
    start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.UTC)
    start += dt.timedelta(days=1)
    found = interval_for(cron, start)
    return (found if found.start >= start else interval_for(cron, found.end)).ds


def _rank(change: Change) -> int:
    """Datasets' backfills first: the workflows read what they write."""
    return 0 if change.kind is not Kind.WORKFLOW else 1


def span(days: tuple[str, ...] | list[str], noun: str = "interval") -> str:
    """``3 days (2024-01-01 .. 2024-01-03)``: how many, the first and the last."""
    many = noun[:-1] + "ies" if noun.endswith("y") and noun != "day" else noun + "s"
    count = f"{len(days)} {noun if len(days) == 1 else many}"
    return f"{count} ({days[0]} .. {days[-1]})" if days else count


def shown(value: Any) -> str:
    """A config value as the plan prints it."""
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={shown(v)}" for k, v in value.items())
    return str(value)
