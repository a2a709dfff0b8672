"""What deploying the project to a namespace would do (``pipelines plan``): the project's config
against the config each of the namespace's tables was last written with (``meta["config"]``, see
:mod:`pipelines.project.table_config`).

:func:`read_state` reads what the lake holds (manifests only); :func:`compare` is pure: wanted
configs, the workflows' code and a :class:`State` in, a :class:`Plan` out (what each change
implies: :mod:`pipelines.plan.rules`, and the workflows that follow a rerun:
:mod:`pipelines.plan.downstream`); :func:`settle` is what ``--apply`` records once the backfills
ran.

A workflow's code is what its runs hash (:func:`pipelines.steps.workflow_code.code_hash`): the
module file its ``function`` names in ``include/workflows/``, read and never imported, and its
params.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.common.partitions import SEGMENT_RE, Layer
from pipelines.lake.lake import Lake
from pipelines.plan.changes import (  # noqa: F401 - re-exported: what a plan is made of
    NOT_RECORDED,
    TABLES,
    Action,
    Backfill,
    Change,
    Code,
    FieldChange,
    Key,
    Plan,
    Recorded,
    State,
    shown,
)
from pipelines.plan.downstream import follow, in_order
from pipelines.plan.rules import ADDED, CHANGED, code_changed, cookbook_change
from pipelines.project.config import Kind, Project
from pipelines.project.table_config import (
    RETIRED,
    cookbooks_in,
    of_aggregate,
    of_cookbook,
    of_dataset,
    of_workflow,
    record,
    record_cookbook,
    recorded,
    retire_cookbook,
)
from pipelines.runtime.environment import include_dir
from pipelines.steps.workflow_code import FOLDER, code_hash, module_file


def wanted(project: Project) -> dict[Key, dict[str, Any]]:
    """The config every entry of the project would be written with, in kind then file order."""
    out: dict[Key, dict[str, Any]] = {}
    out.update({(Kind.DATASET, d.name): of_dataset(d) for d in project.datasets})
    out.update({(Kind.AGGREGATE, a.name): of_aggregate(a) for a in project.aggregates})
    out.update({(Kind.WORKFLOW, w.name): of_workflow(w) for w in project.workflows})
    out.update({(Kind.COOKBOOK, c.name): of_cookbook(c) for c in project.cookbooks})
    return out


def code_of(project: Project) -> dict[str, Code]:
    """Each workflow's code now: the hash its next run will record, and its module's file."""
    include = Path(project.include) if project.include else None
    folder = (include or include_dir()) / FOLDER
    out: dict[str, Code] = {}
    for spec in project.workflows:
        path = module_file(spec, include)
        file = path.relative_to(folder).as_posix() if path else f"{spec.module}.py"
        out[spec.name] = Code(code_hash(spec, include), file)
    return out


def read_state(project: Project, lake: Lake) -> State:
    """What ``lake`` holds of the project's entries and of any table the project no longer has
    (the folders of the layers the namespace writes). Reads manifests only."""
    tables: dict[Key, Recorded] = {}
    for kind, layers in _FOLDERS.items():
        names = [e.name for e in project.entries(kind)]
        for layer in (layer for layer in layers if lake.owns(layer)):
            found = lake.storage.list(f"{lake.prefix}/{layer}")
            names += [n for n in found if SEGMENT_RE.fullmatch(n) and n not in names]
        for name in names:
            entry = _recorded(lake, kind, name)
            if entry is not None:
                tables[(kind, name)] = entry
    return State(tables, cookbooks_in(lake))


_FOLDERS = {
    Kind.DATASET: (Layer.CLEANED, Layer.RAW),
    Kind.AGGREGATE: (Layer.AGGREGATED,),
    Kind.WORKFLOW: (Layer.WORKFLOWS,),
}


def settle(done: Plan, project: Project, lake: Lake) -> list[str]:
    """After ``--apply`` ran ``done``'s backfills: record the project's config on every table
    of a change that still differs (a change no run writes: a schedule, a check, a config never
    recorded), mark a dropped entry's tables retired, and keep the cookbooks' steps.

    :return: the entries recorded (``kind name``)
    """
    want = wanted(project)
    settled: list[str] = []
    for change in done.changes:
        if change.kind is Kind.COOKBOOK:
            spec = project.cookbook(change.name)
            record_cookbook(lake, spec) if spec else retire_cookbook(lake, change.name)
            settled.append(f"cookbook {change.name}")
            continue
        for table in _tables_of(lake, change.kind, change.name):
            config = recorded(table.snapshot())
            goal = want.get((change.kind, change.name)) or {**(config or {}), RETIRED: True}
            if config != goal:
                record(table, goal)
                settled.append(f"{change.kind} {change.name}")
    return list(dict.fromkeys(settled))


def _tables_of(lake: Lake, kind: Kind, name: str) -> list:
    """The tables of an entry that exist and that the namespace writes itself."""
    layers = [layer for layer in _FOLDERS[kind] if lake.owns(layer)]
    tables = [lake.manifest(layer, name) for layer in layers]
    return [t for t in tables if t.snapshot().written]


def _recorded(lake: Lake, kind: Kind, name: str) -> Recorded | None:
    """One entry's tables (None: it has none in the lake). A dataset's config is its cleaned
    table's, else its raw table's when the namespace ingests its own; its days, its deliveries."""
    main = lake.manifest(TABLES[kind], name).snapshot()
    runs = lake.raw(name).snapshot() if kind is Kind.DATASET else main
    own = main if main.written or not lake.owns(Layer.RAW) else runs
    if not own.written:
        return None
    days = tuple(sorted(runs.partitions if kind is Kind.DATASET else runs.meta.get("runs", {})))
    ran = main.meta.get("runs", {})
    landed = tuple(d for d in sorted(ran) if main.has_landed(d))
    codes = {d: ran[d]["code"] for d in landed if kind is Kind.WORKFLOW and ran[d].get("code")}
    return Recorded(recorded(own), tuple(sorted(main.partitions)), days, landed, codes)


def plan(project: Project, lake: Lake) -> Plan:
    """What deploying ``project`` to ``lake``'s namespace would do."""
    return compare(lake.namespace, wanted(project), read_state(project, lake), code_of(project))


def compare(
    namespace: str,
    want: Mapping[Key, dict[str, Any]],
    state: State,
    code: Mapping[str, Code] | None = None,
) -> Plan:
    """The changes from what ``state`` records to ``want`` (see :func:`wanted`) and to each
    workflow's ``code`` (see :func:`code_of`; None: its code is not compared)."""
    changes: list[Change] = []
    for key, config in want.items():
        if key[0] is Kind.COOKBOOK:
            change = cookbook_change(key[1], config, state.cookbooks.get(key[1]))
        else:
            now = (code or {}).get(key[1]) if key[0] is Kind.WORKFLOW else None
            change = _entry(key, config, state.tables.get(key), want, state, now)
        changes += [change] if change else []
    changes = follow(changes, want, state)
    for key, found in state.tables.items():
        if key not in want and not (found.config or {}).get(RETIRED):
            changes.append(_removed(key, found))
    for name in state.cookbooks:
        if (Kind.COOKBOOK, name) not in want:
            changes.append(Change(Kind.COOKBOOK, name, Action.REMOVE, (), (_NO_TRIGGER,)))
    order = {k: i for i, k in enumerate(Kind)}
    flow = {name: i for i, name in enumerate(in_order(want))}  # a workflow after what it reads

    def rank(change: Change) -> tuple[int, int]:
        after = flow.get(change.name, len(flow)) if change.kind is Kind.WORKFLOW else 0
        return order[change.kind], after

    return Plan(namespace, tuple(sorted(changes, key=rank)))


_NO_TRIGGER = "its DAG is no longer deployed; the tables its runs wrote stay"


def _entry(
    key: Key, config: dict, found: Recorded | None, want, state: State, code: Code | None
) -> Change | None:
    """One table entry's change (None: none): added, config not recorded, or changed (its
    config, or for a workflow the code its days were computed with)."""
    kind, name = key
    if found is None:
        return ADDED[kind](name, config, want, state)
    if found.config is None:
        why = f"{NOT_RECORDED}: --apply records the project's config as its baseline"
        return Change(kind, name, Action.UNKNOWN, (), (why,))
    before = {k: v for k, v in found.config.items() if k != RETIRED}
    fields = tuple(
        FieldChange(k, before.get(k), config.get(k))
        for k in dict.fromkeys([*config, *before])
        if before.get(k) != config.get(k)
    )
    if not fields and not found.config.get(RETIRED) and not code_changed(found, code):
        return None
    extra = {"code": code} if kind is Kind.WORKFLOW else {}
    change = CHANGED[kind](name, config, fields, found, want, state, **extra)
    if found.config.get(RETIRED):
        back = "back in the project: its tables kept from before are written again"
        change = replace(change, implications=(back, *change.implications))
    return change


def _removed(key: Key, found: Recorded) -> Change:
    kind, name = key
    what = {Kind.DATASET: "raw, cleaned and quarantine"}.get(kind, str(TABLES[kind]))
    kept = (
        f"dropped: its {what} tables stay in the lake ({len(found.partitions)} partitions); "
        "no DAG writes them any more and no command deletes one table's data "
        "(`pipelines namespace drop` deletes a whole research namespace); --apply marks them "
        "retired"
    )
    return Change(kind, name, Action.REMOVE, (), (kept,))
