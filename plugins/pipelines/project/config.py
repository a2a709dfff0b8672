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
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path

from pipelines.exceptions import ConfigError, Problem, UnknownNameError
from pipelines.lake.lake import Lake
from pipelines.project.aggregates import AGGREGATES, AggregateSpec, parse_aggregate
from pipelines.project.columns import COLUMNS, Declaration, Declarations, load_declarations
from pipelines.project.cookbooks import (
    COOKBOOKS,
    CookbookSpec,
    check_children,
    check_targets,
    parse_cookbook,
)
from pipelines.project.namespaces import (
    NAMESPACES,
    NamespaceKind,
    NamespaceSpec,
    load_rules,
    namespace_spec,
)
from pipelines.project.registry import (
    FILE,
    NAME_RE,
    Dataset,
    Registry,
    load_registry,
)
from pipelines.project.workflows import (
    WORKFLOWS,
    Tables,
    WorkflowSpec,
    check_inputs,
    parse_workflow,
)
from pipelines.project.yaml_files import read_yaml
from pipelines.runtime.environment import (
    MAINTENANCE,
    cookbook_dag_id,
    dataset_dag_id,
    include_dir,
    workflow_dag_id,
)


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


Spec = Dataset | AggregateSpec | WorkflowSpec | CookbookSpec


@dataclass(frozen=True)
class Entry:
    """A name of the project, resolved once (:meth:`Project.require`): what it is, its spec, its
    DAG id and what a run of it runs. Callers pass it on instead of the name.

    :param project: what the entry's children are resolved in
    """

    kind: Kind
    spec: Spec
    project: Project = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def children(self) -> tuple[Entry, ...]:
        """A cookbook's children, as entries, in the file's order (none for the other kinds),
        resolved when first asked for.

        :raises UnknownNameError: a child was skipped (a nested cookbook that names an unknown
            child is itself skipped, but the cookbook naming it stays): the error
            :meth:`Project.require` gives for that name
        """
        if self.kind is not Kind.COOKBOOK:
            return ()
        return tuple(self.project._resolve(child.name, RUNNABLE) for child in self.spec.children)

    def dag_id(self, namespace: str | None = None) -> str:
        """The DAG id of a dataset, a workflow or a cookbook (see :data:`RUNNABLE`)."""
        return _DAG_IDS[self.kind](self.name, namespace)

    def in_order(self) -> list[Entry]:
        """A cookbook's children in an order that respects ``after`` (stable: file order
        first)."""
        by_name = {child.name: child for child in self.children}
        waiting = list(self.spec.children) if self.kind is Kind.COOKBOOK else []
        done: list[str] = []
        while waiting:
            ready = next(c for c in waiting if all(d in done for d in c.after))
            done.append(ready.name)
            waiting.remove(ready)
        return [by_name[name] for name in done]

    def runs(self, kind: Kind) -> list[Entry]:
        """The entries of ``kind`` a run of this one runs: itself, or what a cookbook's children
        run (through nested cookbooks), in the order of its children, once each."""
        if self.kind is not Kind.COOKBOOK:
            return [self] if self.kind is kind else []
        found: dict[str, Entry] = {}
        for child in self.children:
            found.update((e.name, e) for e in child.runs(kind) if e.name not in found)
        return list(found.values())


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
        found = []
        named = rules.of(NamespaceKind.MASTER).cookbook
        if named is not None and self.cookbook(named) is None:
            known = ", ".join(c.name for c in self.cookbooks) or "none"
            why = f"no cookbook {named!r} in cookbooks.yaml; known: {known}"
            found.append(Problem(NAMESPACES, None, "master.cookbook", why))
        clash = self.dataset(MAINTENANCE)
        for kind in NamespaceKind if clash is not None else ():
            if rules.of(kind).maintenance:
                why = (
                    f"the maintenance DAG would take the DAG id of dataset {MAINTENANCE!r} "
                    f"(registry.csv line {clash.line}): rename the dataset to schedule it"
                )
                found.append(Problem(NAMESPACES, None, f"{kind}.maintenance", why))
        return found

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
        return self.require(name, *RUNNABLE).dag_id(namespace)

    def resolve(self, entry: Entry | str, *kinds: Kind) -> Entry:
        """``entry`` itself when a caller resolved it already, else :meth:`require` of its
        name: what a function taking an entry or a name asks (a wrong kind fails alike)."""
        if isinstance(entry, Entry) and entry.kind in (kinds or tuple(Kind)):
            return entry
        return self.require(entry.name if isinstance(entry, Entry) else entry, *kinds)

    def require(self, name: str, *kinds: Kind) -> Entry:
        """The entry called ``name`` when it is of one of ``kinds`` (default: any kind).

        :raises UnknownNameError: saying what ``name`` is instead, or that it is nothing, and
            which names of the wanted kinds exist (every entry point that takes a name asks here,
            so all of them answer a wrong name alike)
        """
        return self._resolve(name, kinds)

    def _resolve(self, name: str, kinds: tuple[Kind, ...]) -> Entry:
        """:meth:`require`'s answer; an entry resolves its children here, without a caller's
        name to resolve."""
        kinds = kinds or tuple(Kind)
        found, spec = self._find(name) or (None, None)
        if found in kinds:
            return Entry(found, spec, self)
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
    files = ("registry.csv", COLUMNS, AGGREGATES, WORKFLOWS, COOKBOOKS)
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
    registry = _declared(registry, load_declarations(Path(include) / COLUMNS), problems)
    taken = {d.name: Kind.DATASET for d in registry.datasets}
    aggregates = _entries(
        Path(include) / AGGREGATES,
        problems,
        taken,
        lambda e, name, p: parse_aggregate(e, name, p, registry),
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
    cookbooks = _entries(Path(include) / COOKBOOKS, problems, taken, parse_cookbook, Kind.COOKBOOK)
    runnable = {name for name, kind in taken.items() if kind in RUNNABLE}
    cookbooks = check_children(cookbooks, runnable, problems)
    dataset_of = {a.name: a.dataset for a in aggregates}
    cookbooks = check_targets(cookbooks, taken, dataset_of, problems)
    return Project(
        registry, tuple(aggregates), tuple(cookbooks), tuple(problems), tuple(workflows), include
    )


def _declared(registry: Registry, declarations: Declarations, problems: list[Problem]) -> Registry:
    """The registry with each dataset's entry of ``columns.yaml``; a problem for an entry that
    names no dataset, a relationship to an unknown dataset, or a registry field that names a
    renamed column by its old header."""
    problems.extend(declarations.problems)
    found = {d.name: d for d in registry.datasets}
    kept: dict[str, Declaration] = {}
    for name, declaration in declarations.by_dataset.items():
        if name in registry.invalid:
            continue  # its registry row is skipped (and reported): nothing to declare for
        faults = _declaration_faults(declaration, found)
        where = f"{name}.{faults[0][0]}" if faults and faults[0][0] else name
        if faults:
            line = faults[0][1] or declaration.line
            problems.append(Problem(COLUMNS, line, where, faults[0][2]))
        else:
            kept[name] = declaration
    if not kept:
        return registry
    datasets = tuple(
        replace(d, declared=kept[d.name]) if d.name in kept else d for d in registry.datasets
    )
    return replace(registry, datasets=datasets)


def _declaration_faults(
    declaration: Declaration, datasets: dict[str, Dataset]
) -> list[tuple[str | None, int, str]]:
    """(column, line, what is wrong) of a declaration checked against the registry."""
    dataset = datasets.get(declaration.dataset)
    if dataset is None:
        near = difflib.get_close_matches(declaration.dataset, list(datasets), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return [(None, declaration.line, f"no dataset of that name in registry.csv{hint}")]
    faults = []
    named = (*dataset.primary_key, dataset.incremental_field, dataset.partition_field)
    for column in declaration.columns:
        if column.rename and column.name in named:
            faults.append(
                (
                    column.name,
                    column.line,
                    f"registry.csv names it by its header; it is renamed: name it "
                    f"{column.rename!r} there",
                )
            )
        for test in column.tests:
            if test.name == "relationships" and test.arg[0] not in datasets:
                why = f"relationships: no dataset {test.arg[0]!r} in registry.csv"
                faults.append((column.name, column.line, why))
    return faults


def _entries(path: Path, problems: list[Problem], taken: dict[str, Kind], build, kind: Kind):
    """Parse a YAML list file into specs with ``build(entry, name, problems)``."""
    if not path.exists():
        return []
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        problems.extend(exc.problems)
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
        elif not isinstance(name, str) or not NAME_RE.fullmatch(name):
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
