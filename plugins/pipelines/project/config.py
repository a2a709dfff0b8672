"""The project's configuration: registry rows, aggregates.yaml, workflows.yaml and cookbooks.yaml,
checked together.

The YAML files are each a top-level YAML list. A bad entry is reported as
``aggregates.yaml: NAME: message`` and skipped; the other entries still load. Names are unique
across datasets, aggregates, workflows and cookbooks.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from pipelines.exceptions import ConfigError, Problem, UnknownNameError
from pipelines.lake.lake import Lake
from pipelines.project.namespaces import (
    NAMESPACES,
    NamespaceKind,
    NamespaceSpec,
    load_rules,
    namespace_spec,
)
from pipelines.project.registry import (
    COLUMN_RE,
    COLUMN_RULE,
    FILE,
    NAME_RE,
    Dataset,
    Registry,
    check_schedule,
    load_registry,
)
from pipelines.project.workflows import (
    WORKFLOWS,
    Tables,
    WorkflowSpec,
    check_inputs,
    parse_workflow,
)
from pipelines.runtime.environment import (
    cookbook_dag_id,
    dataset_dag_id,
    include_dir,
    workflow_dag_id,
)

AGGREGATES = "aggregates.yaml"
COOKBOOKS = "cookbooks.yaml"
METRIC_RE = re.compile(r"^(?P<fn>[a-z_]+)(?::(?P<col>.+))?$")
METRIC_FUNCTIONS = ("count", "sum", "mean", "min", "max", "count_distinct")


class Kind(enum.StrEnum):
    """What a name of the project is; names are unique across the kinds."""

    DATASET = "dataset"
    AGGREGATE = "aggregate"
    WORKFLOW = "workflow"
    COOKBOOK = "cookbook"

    @property
    def file(self) -> str:
        """The file that declares entries of this kind."""
        files = {Kind.DATASET: FILE, Kind.AGGREGATE: AGGREGATES, Kind.WORKFLOW: WORKFLOWS}
        return files.get(self, COOKBOOKS)


RUNNABLE = (Kind.DATASET, Kind.WORKFLOW, Kind.COOKBOOK)  # what has a DAG of its own, and can run
_DAG_IDS = {
    Kind.DATASET: dataset_dag_id,
    Kind.WORKFLOW: workflow_dag_id,
    Kind.COOKBOOK: cookbook_dag_id,
}


@dataclass(frozen=True)
class AggregateSpec:
    """A business table: ``dataset`` grouped by partition date plus ``group_by``."""

    name: str
    dataset: str
    group_by: tuple[str, ...]
    metrics: tuple[tuple[str, str, str | None], ...]  # (output, function, column)

    @property
    def metric_map(self) -> dict[str, tuple[str, str | None]]:
        return {out: (fn, col) for out, fn, col in self.metrics}

    @property
    def columns(self) -> set[str]:
        """Source columns the aggregate needs."""
        return set(self.group_by) | {col for _, _, col in self.metrics if col}


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


@dataclass(frozen=True)
class Project:
    """Everything the factory builds DAGs from, plus every problem found."""

    registry: Registry
    aggregates: tuple[AggregateSpec, ...]
    cookbooks: tuple[CookbookSpec, ...]
    problems: tuple[Problem, ...]
    workflows: tuple[WorkflowSpec, ...] = ()
    include: str = ""  # the include/ folder it was read from

    @property
    def _include(self) -> Path:
        return Path(self.include) if self.include else include_dir()

    def namespace(self, name: str | None = None) -> NamespaceSpec:
        """The namespace ``name`` (default: this process's) with its kind and settings
        (``include/namespaces.yaml``, see :mod:`pipelines.project.namespaces`)."""
        return namespace_spec(self._include, name)

    def e2e_of(self, cookbook: str, where: NamespaceSpec) -> tuple[str, str] | None:
        """``(cron, day)`` when ``cookbook`` is the master namespace ``where``'s e2e cookbook:
        its schedule, and the sample day its scheduled runs replay (default: the registry's
        first ``start_date``); None for any other cookbook or kind."""
        if where.e2e is None or where.e2e[0] != cookbook:
            return None
        days = sorted(d.start_date.isoformat() for d in self.datasets)
        return where.e2e[1], where.e2e[2] or (days[0] if days else "2024-01-01")

    def namespace_problems(self) -> list[Problem]:
        """What is wrong with ``namespaces.yaml`` (validate reports it with the other files)."""
        try:
            rules = load_rules(self._include)
        except ConfigError as exc:
            return list(exc.problems)
        named = rules.of(NamespaceKind.MASTER).cookbook
        if named is not None and self.cookbook(named) is None:
            known = ", ".join(c.name for c in self.cookbooks) or "none"
            why = f"no cookbook {named!r} in cookbooks.yaml; known: {known}"
            return [Problem(NAMESPACES, None, "master.cookbook", why)]
        return []

    def lake(self, namespace: str | NamespaceSpec | None = None) -> Lake:
        """The lake of ``namespace`` (a name or its spec; default: this process's), reading its
        upstream's raw layer in place when it has one (research)."""
        spec = namespace if isinstance(namespace, NamespaceSpec) else self.namespace(namespace)
        return Lake.from_env(
            spec.name, upstream=spec.upstream, branch=spec.branch, kind=str(spec.kind)
        )

    @property
    def datasets(self) -> tuple[Dataset, ...]:
        return self.registry.datasets

    def dataset(self, name: str) -> Dataset | None:
        return self.registry.get(name)

    def aggregate(self, name: str) -> AggregateSpec | None:
        return next((a for a in self.aggregates if a.name == name), None)

    def cookbook(self, name: str) -> CookbookSpec | None:
        return next((c for c in self.cookbooks if c.name == name), None)

    def workflow(self, name: str) -> WorkflowSpec | None:
        return next((w for w in self.workflows if w.name == name), None)

    @cached_property
    def tables(self) -> Tables:
        """What workflows may read, by layer (see :meth:`Tables.dataset_of`)."""
        return Tables({d.name: d for d in self.datasets}, {a.name: a for a in self.aggregates})

    def readers_of(self, layer: str, table: str) -> list[WorkflowSpec]:
        """The workflows that read ``table`` of ``layer``, in file order."""
        return list(self._readers.get((layer, table), ()))

    def aggregates_of(self, dataset: str) -> list[AggregateSpec]:
        """The dataset's aggregates, in file order."""
        return list(self._aggregates_by_dataset.get(dataset, ()))

    @cached_property
    def _readers(self) -> dict[tuple[str, str], list[WorkflowSpec]]:
        """(layer, table) -> its readers: the factory asks once per table, so a scan of every
        workflow per question would make parsing quadratic in the registry."""
        readers: dict[tuple[str, str], list[WorkflowSpec]] = {}
        for spec in self.workflows:
            for key in dict.fromkeys((i.layer, i.table) for i in spec.inputs):
                readers.setdefault(key, []).append(spec)
        return readers

    @cached_property
    def _aggregates_by_dataset(self) -> dict[str, list[AggregateSpec]]:
        by_dataset: dict[str, list[AggregateSpec]] = {}
        for spec in self.aggregates:
            by_dataset.setdefault(spec.dataset, []).append(spec)
        return by_dataset

    def entries(self, kind: Kind) -> tuple[Dataset | AggregateSpec | CookbookSpec, ...]:
        """Every valid entry of one kind, in file order."""
        by_kind = {
            Kind.DATASET: self.datasets,
            Kind.AGGREGATE: self.aggregates,
            Kind.WORKFLOW: self.workflows,
        }
        return by_kind.get(kind, self.cookbooks)

    def kind_of(self, name: str) -> Kind | None:
        """Whether ``name`` is a dataset, an aggregate, a workflow or a cookbook (None: none)."""
        found = self._find(name)
        return found[0] if found else None

    def _find(self, name: str) -> tuple[Kind, Dataset | AggregateSpec | CookbookSpec] | None:
        for kind in Kind:
            entry = next((e for e in self.entries(kind) if e.name == name), None)
            if entry is not None:
                return kind, entry
        return None

    def skipped(self, name: str) -> str:
        """Why an entry called ``name`` was skipped ("" when none was)."""
        found = list(self.registry.invalid.get(name, ()))
        found += [p for p in self.problems if p.line is None and p.column == name]
        return "; ".join(map(str, found))

    def require_readable(self) -> None:
        """Raise :class:`ConfigError` when a config file cannot be read as a whole: a run would
        silently go without every entry of it."""
        unreadable = [p for p in self.problems if p.whole_file]
        if unreadable:
            raise ConfigError(unreadable)

    def dag_id(self, name: str, namespace: str | None = None) -> str:
        """The DAG id of a dataset, a workflow or a cookbook (see :data:`RUNNABLE`)."""
        self.require(name, *RUNNABLE)
        return _DAG_IDS[self.kind_of(name)](name, namespace)

    def require(self, name: str, *kinds: Kind) -> Dataset | AggregateSpec | CookbookSpec:
        """The entry called ``name`` when it is of one of ``kinds`` (default: any kind).

        :raises UnknownNameError: saying what ``name`` is instead, or that it is nothing, and
            which names of the wanted kinds exist (every entry point that takes a name asks here,
            so all of them answer a wrong name alike)
        """
        kinds = kinds or tuple(Kind)
        found, entry = self._find(name) or (None, None)
        if found in kinds:
            return entry
        wanted = _either([str(k) for k in kinds])
        names = [e.name for k in kinds for e in self.entries(k)]
        known = ", ".join(names) or "none"
        skipped = self.skipped(name)
        if found is None and skipped:
            raise UnknownNameError(f"{name!r} is not valid, so it was skipped: {skipped}")
        if found is None:
            files = _either(list(dict.fromkeys(k.file for k in kinds)))
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
            hint = f"did you mean {_either(close)}? " if close else ""
            raise UnknownNameError(f"no {wanted} named {name!r} in {files}; {hint}known: {known}")
        raise UnknownNameError(
            f"{name!r} is {_a(found)} {found} ({found.file}), not {_a(wanted)} {wanted}; "
            f"known: {known}"
        )


def _either(words: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join(filter(None, [", ".join(words[:-1]), words[-1]]))


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def load_project(include: str | os.PathLike | None = None, *, strict: bool = False) -> Project:
    """Load and cross-check the four config files of ``include/`` (cached per file version).

    :param strict: raise :class:`ConfigError` listing every problem instead of skipping
    """
    include = Path(include) if include is not None else include_dir()
    files = ("registry.csv", AGGREGATES, WORKFLOWS, COOKBOOKS)
    stamps = tuple(_stamp(include / f) for f in files)
    project = _load(str(include), stamps)
    if strict and project.problems:
        raise ConfigError(list(project.problems))
    return project


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _load(include: str, stamps: tuple) -> Project:
    registry = load_registry(Path(include) / "registry.csv")
    problems = list(registry.problems)
    taken = {d.name: Kind.DATASET for d in registry.datasets}
    aggregates = _entries(
        Path(include) / AGGREGATES,
        problems,
        taken,
        lambda e, name, p: _aggregate(e, name, p, registry),
        Kind.AGGREGATE,
    )
    workflows = _entries(
        Path(include) / WORKFLOWS,
        problems,
        taken,
        lambda e, name, report: parse_workflow(e, name, report),
        Kind.WORKFLOW,
    )
    tables = Tables({d.name: d for d in registry.datasets}, {a.name: a for a in aggregates})
    workflows = check_inputs(workflows, tables, problems)
    for spec in set(taken) - {w.name for w in workflows}:
        if taken[spec] is Kind.WORKFLOW:
            del taken[spec]  # skipped: a cookbook step naming it is unknown
    cookbooks = _entries(Path(include) / COOKBOOKS, problems, taken, _cookbook, Kind.COOKBOOK)
    cookbooks = _check_cookbook_children(cookbooks, taken, problems)
    return Project(
        registry, tuple(aggregates), tuple(cookbooks), tuple(problems), tuple(workflows), include
    )


def _entries(path: Path, problems: list[Problem], taken: dict[str, Kind], build, kind: Kind):
    """Parse a YAML list file into specs with ``build(entry, name, problems)``."""
    import yaml

    if not path.exists():
        return []
    try:
        # libyaml's safe loader when PyYAML has it: a third of the parse of 1,000 aggregates
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=loader)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        said = [getattr(exc, "context", None), getattr(exc, "problem", None)]
        detail = ": ".join(filter(None, said)) or str(exc).splitlines()[0]  # one line
        problems.append(Problem(path.name, None, "yaml", f"cannot parse{where}: {detail}", True))
        return []
    if data is None:
        return []
    if not isinstance(data, list):
        problems.append(Problem(path.name, None, "file", "must be a YAML list of entries", True))
        return []
    specs = []
    for i, entry in enumerate(data, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = str(name) if name else f"entry {i}"
        entry_problems: list[Problem] = []
        report = _Reporter(path.name, label, entry_problems)
        if not isinstance(entry, dict):
            report("must be a mapping with a name")
        elif not isinstance(name, str) or not NAME_RE.match(name):
            report(f"name {name!r} must match {NAME_RE.pattern}")
        elif name in taken:
            report(f"name {name!r} is already used by a {taken[name]}")
        spec = build(entry, name, report) if not entry_problems else None
        problems.extend(entry_problems)
        if spec is not None and not entry_problems:
            taken[name] = kind
            specs.append(spec)
    return specs


@dataclass
class _Reporter:
    file: str
    name: str
    problems: list[Problem]

    def __call__(self, message: str) -> None:
        self.problems.append(Problem(self.file, None, self.name, message))


def _aggregate(entry: dict[str, Any], name: str, report: _Reporter, registry: Registry):
    unknown = set(entry) - {"name", "dataset", "group_by", "metrics", "description"}
    if unknown:
        report(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    dataset = entry.get("dataset")
    if registry.get(str(dataset)) is None:
        report(f"dataset {dataset!r} is not a valid dataset of registry.csv")
    group_by = entry.get("group_by") or []
    if not isinstance(group_by, list) or not all(
        isinstance(c, str) and COLUMN_RE.match(c) for c in group_by
    ):
        report("group_by must be a list of column names")
        group_by = []
    metrics = _metrics(entry.get("metrics"), report)
    if report.problems:
        return None
    return AggregateSpec(name, dataset, tuple(group_by), metrics)


def _metrics(raw: Any, report: _Reporter) -> tuple[tuple[str, str, str | None], ...]:
    if not isinstance(raw, dict) or not raw:
        report("metrics must be a mapping {output_column: 'function:column'}")
        return ()
    out = []
    for output, spec in raw.items():
        match = METRIC_RE.match(str(spec)) if isinstance(spec, str) else None
        fn, col = (match["fn"], match["col"]) if match else (None, None)
        if not isinstance(output, str) or not COLUMN_RE.match(output):
            report(f"metric output {output!r} is not a valid column name ({COLUMN_RULE})")
        elif fn not in METRIC_FUNCTIONS:
            report(
                f"metric {output}: {spec!r}: function must be one of: {', '.join(METRIC_FUNCTIONS)}"
            )
        elif fn == "count" and col:
            report(f"metric {output}: 'count' takes no column (it counts rows)")
        elif fn != "count" and not col:
            report(f"metric {output}: {fn!r} needs a column, as '{fn}:column'")
        elif col and not COLUMN_RE.match(col):
            report(f"metric {output}: {col!r} is not a valid column name ({COLUMN_RULE})")
        else:
            out.append((output, fn, col))
    return tuple(out)


def _cookbook(entry: dict[str, Any], name: str, report: _Reporter):
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
    checks = entry.get("checks") or {}
    if not isinstance(checks, dict) or not all(_check_ok(v) for v in checks.values()):
        report(
            "checks must map a step to {min_rows: N} (a workflow also to "
            "metrics: {NAME: {min: X, max: Y}})"
        )
        checks = {}
    if report.problems:
        return None
    description = str(entry.get("description", ""))
    return CookbookSpec(name, schedule, children, checks, description, cron)


def _check_ok(check: Any) -> bool:
    """``{min_rows: N, metrics: {name: {min: X, max: Y}}}``, each part optional."""
    if not isinstance(check, dict) or set(check) - {"min_rows", "metrics"}:
        return False
    if not isinstance(check.get("min_rows", 0), int):
        return False
    metrics = check.get("metrics", {})
    return isinstance(metrics, dict) and all(
        isinstance(bounds, dict)
        and bounds
        and set(bounds) <= {"min", "max"}
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bounds.values())
        for bounds in metrics.values()
    )


def _children(raw: Any, report: _Reporter) -> tuple[Child, ...]:
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


def _check_cookbook_children(
    cookbooks: list[CookbookSpec], taken: dict[str, Kind], problems: list[Problem]
) -> list[CookbookSpec]:
    """Drop cookbooks that name unknown children or form a cycle through other cookbooks."""
    by_name = {c.name: c for c in cookbooks}
    good: list[CookbookSpec] = []
    for book in cookbooks:
        bad = [c.name for c in book.children if taken.get(c.name) not in RUNNABLE]
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


def _cycle(name: str, books: dict[str, CookbookSpec], path: tuple[str, ...]) -> bool:
    if name in path:
        return True
    book = books.get(name)
    return book is not None and any(_cycle(c.name, books, (*path, name)) for c in book.children)
