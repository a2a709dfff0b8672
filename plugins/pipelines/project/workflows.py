"""``workflows.yaml`` entries -> :class:`WorkflowSpec`: the user's Python steps, as declared.

Each entry names a function (``module:callable``, a module of ``include/workflows/``), the
tables it reads (its inputs, each with a window), its params and key. Parsing never imports the
function: a ``function`` that does not resolve is reported when the workflow first runs and by
``pipelines validate``. What needs the whole project (inputs that exist, windows that fit them,
no cycle between workflows) is checked by :func:`check_inputs`, once every file is parsed.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipelines.common.partitions import DAILY, Layer
from pipelines.common.windows import Window
from pipelines.exceptions import Problem
from pipelines.project.registry_values import COLUMN_RE, COLUMN_RULE, NAME_RE, check_schedule

WORKFLOWS = "workflows.yaml"
FUNCTION_RE = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<name>[A-Za-z_]\w*)$")
# a user module by one of these names would shadow it in the process that runs the workflow
TAKEN_MODULES = frozenset(sys.stdlib_module_names) | {"pipelines", "airflow", "pandas", "numpy"}
INPUT_LAYERS = (Layer.RAW, Layer.CLEANED, Layer.AGGREGATED, Layer.WORKFLOWS)
_KEYS = {"name", "function", "inputs", "params", "primary_key", "schedule", "owner", "description"}


@dataclass(frozen=True)
class WorkflowInput:
    """One input of a workflow: the table the function receives as ``inputs[alias]``."""

    alias: str
    table: str
    layer: Layer = Layer.CLEANED
    window: Window = Window()
    min_days: int | None = None  # a partial window is read when this many of its days landed

    def __str__(self) -> str:
        return f"{self.alias} ({self.layer} {self.table}, {self.window})"


@dataclass(frozen=True)
class WorkflowSpec:
    """A workflow of ``workflows.yaml``: ``function(inputs, params, ds)`` for each day D.

    :param schedule: None: runs on its inputs (a run for D once each has D); else a cron
    :param start_date: the first day every input can have (its datasets' latest start_date);
        set by :func:`check_inputs`
    """

    name: str
    function: str
    inputs: tuple[WorkflowInput, ...]
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    primary_key: tuple[str, ...] = ()
    schedule: str | None = None
    cron: str | None = None
    owner: str = "pipelines"
    description: str = ""
    start_date: dt.date | None = None

    @property
    def module(self) -> str:
        return self.function.split(":", 1)[0]

    @property
    def callable_name(self) -> str:
        return self.function.split(":", 1)[1]

    @property
    def upstream_workflows(self) -> list[str]:
        return [i.table for i in self.inputs if i.layer is Layer.WORKFLOWS]


def parse_workflow(entry: dict[str, Any], name: str, report: Callable[[str], None]):
    """One entry of ``workflows.yaml`` (its name already checked), or None after reporting."""
    problems: list[str] = []

    def say(message: str) -> None:
        problems.append(message)
        report(message)

    unknown = set(entry) - _KEYS
    if unknown:
        known = ", ".join(sorted(_KEYS))
        say(f"unknown keys: {', '.join(sorted(map(str, unknown)))} (known: {known})")
    function = entry.get("function")
    if not isinstance(function, str) or not FUNCTION_RE.fullmatch(function):
        say(
            f"function {function!r} must be 'module:callable', a function of a module in "
            "include/workflows/ (features:customer_features)"
        )
    elif function.split(".")[0].split(":")[0] in TAKEN_MODULES:
        say(
            f"function {function!r}: {function.split(':')[0]} is the name of a Python or "
            "Airflow module; rename the file in include/workflows/ (it would shadow that module)"
        )
    inputs = _inputs(entry.get("inputs"), say)
    params = entry.get("params") if entry.get("params") is not None else {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        say(f"params must be a mapping of names to values, not {params!r}")
    key = _primary_key(entry.get("primary_key"), say)
    schedule = entry.get("schedule")
    cron = _clock(schedule, inputs, say) if schedule is not None else None
    owner, description = entry.get("owner", "pipelines"), entry.get("description", "")
    for label, value in (("owner", owner), ("description", description)):
        if not isinstance(value, str):
            say(f"{label} must be text, not {value!r}")
    if problems:
        return None
    return WorkflowSpec(
        name, function, inputs, params, key, schedule, cron, owner or "pipelines", description
    )


def _primary_key(raw: Any, say: Callable[[str], None]) -> tuple[str, ...]:
    key = [raw] if isinstance(raw, str) else (raw or [])
    if not isinstance(key, list) or not all(
        isinstance(c, str) and COLUMN_RE.fullmatch(c) for c in key
    ):
        say(f"primary_key must be a list of column names ({COLUMN_RULE})")
        return ()
    if len(set(key)) != len(key):
        say(f"primary_key names a column twice: {key}")
    return tuple(key)


def _inputs(raw: Any, say: Callable[[str], None]) -> tuple[WorkflowInput, ...]:
    if not isinstance(raw, dict) or not raw:
        say(
            "inputs must be a non-empty mapping: alias -> "
            "{table: NAME, layer: ..., window: ..., min_days: N}"
        )
        return ()
    out = []
    for alias, value in raw.items():
        if not isinstance(alias, str) or not NAME_RE.fullmatch(alias):
            say(f"input alias {alias!r} must match {NAME_RE.pattern}")
            continue
        value = {"table": value} if isinstance(value, str) else value
        if not isinstance(value, dict) or not isinstance(value.get("table"), str):
            say(f"input {alias}: must be a table name or {{table: NAME, layer: ..., window: ...}}")
            continue
        extra = set(value) - {"table", "layer", "window", "min_days"}
        if extra:
            say(
                f"input {alias}: unknown keys: {', '.join(sorted(map(str, extra)))} "
                "(known: layer, min_days, table, window)"
            )
        layer = value.get("layer", Layer.CLEANED.value)
        if layer not in [str(x) for x in INPUT_LAYERS]:
            say(
                f"input {alias}: layer {layer!r} must be one of: "
                f"{', '.join(map(str, INPUT_LAYERS))}"
            )
            continue
        try:
            window = Window.parse(value.get("window"))
        except ValueError as exc:
            say(f"input {alias}: {exc}")
            continue
        min_days = value.get("min_days")
        if min_days is not None and not _min_days_fit(min_days, window):
            most = f" and at most {window.days}" if window.days else ""
            say(
                f"input {alias}: min_days {min_days!r} must be a whole number of days, at least "
                f"1{most} (window {window}): how many days of the window must have landed"
            )
            continue
        out.append(WorkflowInput(alias, value["table"], Layer(layer), window, min_days))
    return tuple(out)


def _min_days_fit(value: Any, window: Window) -> bool:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return False
    return window.days is None or value <= window.days


def _clock(schedule: Any, inputs: tuple[WorkflowInput, ...], say: Callable[[str], None]):
    """The cron of a workflow run on the clock instead of on its inputs' days."""
    if not isinstance(schedule, str):
        say(f"schedule: {schedule!r} is not a cron expression or preset (or null: on its inputs)")
        return None
    cron, problem = check_schedule(schedule)
    if problem:
        say(f"schedule: {problem}")
        return None
    dated = [str(i) for i in inputs if i.window.days is not None]
    if dated:
        say(
            "schedule: a workflow on a cron does not wait for its inputs' days, so every input "
            f"must have window: all; these do not: {', '.join(dated)}"
        )
        return None
    return cron


@dataclass(frozen=True)
class Tables:
    """What the rest of the project offers a workflow as inputs, by layer."""

    datasets: Mapping[str, Any]  # name -> Dataset
    aggregates: Mapping[str, Any]  # name -> AggregateSpec

    def dataset_of(self, item: WorkflowInput):
        """The dataset whose runs write an input's table (an aggregate's dataset); None for a
        workflow's table. The one place that follows an input to its dataset."""
        if item.layer is Layer.WORKFLOWS:
            return None
        name = item.table
        if item.layer is Layer.AGGREGATED:
            name = self.aggregates[name].dataset
        return self.datasets[name]


def check_inputs(specs: list[WorkflowSpec], tables: Tables, problems: list[Problem]):
    """The workflows whose inputs all exist and fit their windows, with no cycle between them;
    a problem for each of the others. Each kept spec gets its ``start_date``."""

    by_name = {s.name: s for s in specs}
    bad: dict[str, str] = {}
    for spec in specs:
        faults = [f for i in spec.inputs for f in _input_faults(spec, i, tables, by_name)]
        if faults:
            bad[spec.name] = "; ".join(faults)
    for spec in specs:
        loop = _cycle(spec.name, by_name, ())
        if loop and loop[0] == spec.name and spec.name not in bad:  # it is in the loop itself
            bad[spec.name] = f"workflows depend on each other in a cycle: {' -> '.join(loop)}"
    changed = True
    while changed:  # a workflow reading a skipped workflow is skipped too
        changed = False
        for spec in specs:
            skipped = [w for w in spec.upstream_workflows if w in bad]
            if spec.name not in bad and skipped:
                bad[spec.name] = f"input workflow {skipped[0]!r} was skipped: {bad[skipped[0]]}"
                changed = True
    problems.extend(Problem(WORKFLOWS, None, name, why) for name, why in bad.items())
    good = {s.name: s for s in specs if s.name not in bad}
    starts: dict[str, dt.date | None] = {}
    return [replace(s, start_date=_start(s, tables, good, starts)) for s in good.values()]


def _input_faults(
    spec: WorkflowSpec, item: WorkflowInput, tables: Tables, workflows: Mapping[str, WorkflowSpec]
) -> list[str]:
    """What is wrong with one input of ``spec`` (nothing: [])."""
    known = {
        Layer.RAW: tables.datasets,
        Layer.CLEANED: tables.datasets,
        Layer.AGGREGATED: tables.aggregates,
        Layer.WORKFLOWS: workflows,
    }[item.layer]
    if item.table not in known:
        what = {Layer.AGGREGATED: "aggregate", Layer.WORKFLOWS: "workflow"}.get(
            item.layer, "dataset"
        )
        files = {Layer.AGGREGATED: "aggregates.yaml", Layer.WORKFLOWS: WORKFLOWS}
        names = ", ".join(known) or "none"
        return [
            f"input {item.alias}: no {what} named {item.table!r} for layer {item.layer} in "
            f"{files.get(item.layer, 'registry.csv')}; known: {names}"
        ]
    cron = _producer_cron(item, tables, workflows)
    if spec.cron is None and cron != DAILY:
        return [
            f"input {item.alias}: {item.table} runs on {cron!r}, not daily, so it does not land "
            "every day; a workflow on its inputs runs for each day they land: give the workflow "
            "a schedule (a cron) and this input window: all"
        ]
    dataset = tables.datasets.get(item.table) if item.layer is Layer.CLEANED else None
    if dataset and dataset.ingestion.keeps_snapshots and item.window.days not in (1, None):
        return [
            f"input {item.alias}: window {item.window}: {item.table} is a full dataset, whose "
            "cleaned table holds snapshots, not day partitions; use 1d (the snapshot of D) or "
            "all (the newest snapshot at or before D)"
        ]
    if dataset and dataset.ingestion.keeps_snapshots and item.min_days is not None:
        return [
            f"input {item.alias}: min_days: {item.table} is a full dataset, whose window is one "
            "snapshot (D's): there is no partial window to allow"
        ]
    if spec.cron is not None and item.min_days is not None:
        return [
            f"input {item.alias}: min_days: a workflow on a cron waits for no day, so there is "
            "no window to complete"
        ]
    return []


def _producer_cron(
    item: WorkflowInput, tables: Tables, workflows: Mapping[str, WorkflowSpec]
) -> str:
    """The schedule of what writes an input (its dataset, or its workflow)."""
    dataset = tables.dataset_of(item)
    return dataset.cron if dataset else workflows[item.table].cron or DAILY


def _cycle(name: str, specs: Mapping[str, WorkflowSpec], path: tuple[str, ...]) -> tuple[str, ...]:
    """The names of a cycle through ``name``'s workflow inputs (empty: none)."""
    if name in path:
        return (*path[path.index(name) :], name)
    spec = specs.get(name)
    if spec is None:
        return ()
    for up in spec.upstream_workflows:
        found = _cycle(up, specs, (*path, name))
        if found:
            return found
    return ()


def _start(
    spec: WorkflowSpec,
    tables: Tables,
    good: Mapping[str, WorkflowSpec],
    memo: dict[str, dt.date | None],
) -> dt.date | None:
    """The latest start_date of the datasets a workflow reads, through aggregates and workflows."""
    if spec.name not in memo:
        days = []
        for item in spec.inputs:
            dataset = tables.dataset_of(item)
            days.append(
                dataset.start_date if dataset else _start(good[item.table], tables, good, memo)
            )
        memo[spec.name] = max((d for d in days if d is not None), default=None)
    return memo[spec.name]


def readers_of(specs: list[WorkflowSpec], tables: Tables, names: set[str]) -> list[WorkflowSpec]:
    """The workflows that read what ``names`` (datasets or workflows) write, directly or through
    an aggregate or another workflow, each after the workflows it reads (dependency order)."""
    found: dict[str, WorkflowSpec] = {}
    reached = set(names)
    changed = True
    while changed:
        changed = False
        for spec in specs:
            if spec.name in found:
                continue
            producers = {
                item.table if item.layer is Layer.WORKFLOWS else tables.dataset_of(item).name
                for item in spec.inputs
            }
            if producers & reached:
                found[spec.name] = spec
                reached.add(spec.name)
                changed = True
    ordered: list[WorkflowSpec] = []

    def place(spec: WorkflowSpec) -> None:
        if spec in ordered:
            return
        for up in spec.upstream_workflows:
            if up in found:
                place(found[up])
        ordered.append(spec)

    for spec in found.values():
        place(spec)
    return ordered
