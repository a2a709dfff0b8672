"""What kind a namespace is (serving, master, research), and its settings (namespaces.yaml).

The namespace's *name* is resolved by :func:`pipelines.runtime.environment.resolve_namespace`
(variable, DAG bundle, git branch, ``local``); this module decides what follows from it:

- **serving**: the production snapshot; schedules as in the registry, catchup on.
- **master** (e2e): validates the codebase; dataset and workflow DAGs are not scheduled, the e2e
  cookbook is (``schedule``, default hourly), replaying the sample day ``date``.
- **research**: nothing is scheduled; it reads the ``upstream`` namespace's raw layer in place
  (default ``serving``; ``null``: it ingests its own sources) and writes everything else under
  its own prefix.

Any kind may have ``maintenance`` (a schedule): a DAG ``{namespace}__maintenance`` then compacts
and vacuums every table the namespace writes, keeping ``retention_hours`` of versions.

The first rule whose pattern (``fnmatch``, case-insensitive) matches the namespace's branch or its
name gives the kind. Without the file, the rules are :data:`DEFAULT_RULES`.
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass, field, replace
from functools import lru_cache
from math import isfinite
from pathlib import Path
from typing import Any

from pipelines.common.partitions import Layer, date_problem
from pipelines.exceptions import ConfigError, NamespaceError, Problem
from pipelines.lake.delta import DEFAULT_RETENTION_HOURS, LOG, retention_problem
from pipelines.lake.lake import Lake, claimed
from pipelines.lake.storage import Storage
from pipelines.project.registry_values import check_schedule
from pipelines.project.yaml_files import read_yaml
from pipelines.runtime import environment
from pipelines.runtime.environment import NAMESPACE_RE, Resolved
from pipelines.runtime.secrets import redact

NAMESPACES = "namespaces.yaml"
DEFAULT_E2E = "e2e_test"  # the cookbook a master namespace schedules unless told otherwise


class NamespaceKind(enum.StrEnum):
    SERVING = "serving"
    MASTER = "master"
    RESEARCH = "research"

    @property
    def protected(self) -> bool:
        """Whether ``pipelines namespace drop`` refuses namespaces of this kind."""
        return self is not NamespaceKind.RESEARCH


@dataclass(frozen=True)
class Rule:
    """Branches or namespaces matching one of ``patterns`` are of ``kind``."""

    patterns: tuple[str, ...]
    kind: NamespaceKind

    def matches(self, *names: str | None) -> bool:
        return any(
            fnmatch.fnmatchcase(n.lower(), p.lower()) for n in names if n for p in self.patterns
        )


DEFAULT_RULES = (
    Rule(("main", "master"), NamespaceKind.MASTER),
    # local: no variable, no bundle, no git; one machine runs everything itself, as serving does
    Rule(("prod", "production", "serving", "release*", "local"), NamespaceKind.SERVING),
    Rule(("*",), NamespaceKind.RESEARCH),
)


@dataclass(frozen=True)
class Settings:
    """Per-kind settings (a key of another kind is refused when the file is read).

    :param pool: every task's Airflow pool, ``{namespace}`` replaced (None: ``default_pool``)
    :param upstream: research: the namespace whose raw layer it reads (None: its own sources)
    :param cookbook: master: the cookbook the namespace schedules (default ``e2e_test``)
    :param schedule: master: that cookbook's schedule (a preset or cron; kept as cron)
    :param date: master: the sample day its scheduled runs replay (None: the registry's
        earliest ``start_date``)
    :param maintenance: any kind: the schedule of the namespace's maintenance DAG (optimize,
        then vacuum, every table it writes); None: no such DAG
    :param retention_hours: any kind: what its vacuum keeps (every file a version of the last
        N hours needs; at least :data:`~pipelines.lake.delta.MIN_RETENTION_HOURS`)
    """

    pool: str | None = None
    upstream: str | None = "serving"
    cookbook: str | None = None  # None: e2e_test, when the project has it
    schedule: str = "0 * * * *"  # hourly
    date: str | None = None
    maintenance: str | None = None
    retention_hours: float = DEFAULT_RETENTION_HOURS


ANY_KIND = {"pool", "maintenance", "retention_hours"}
KEYS = {
    NamespaceKind.SERVING: ANY_KIND,
    NamespaceKind.MASTER: ANY_KIND | {"cookbook", "schedule", "date"},
    NamespaceKind.RESEARCH: ANY_KIND | {"upstream"},
}
NULLABLE = {"upstream", "maintenance"}  # null: no upstream, no maintenance DAG


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...] = DEFAULT_RULES
    settings: dict[NamespaceKind, Settings] = field(default_factory=dict)

    def kind_of(self, name: str, branch: str | None = None) -> NamespaceKind:
        return next((r.kind for r in self.rules if r.matches(branch, name)), NamespaceKind.RESEARCH)

    def of(self, kind: NamespaceKind) -> Settings:
        return self.settings.get(kind, Settings())


@dataclass(frozen=True)
class NamespaceSpec:
    """One namespace: its name, where the name came from, its kind and settings."""

    name: str
    kind: NamespaceKind
    source: str
    branch: str | None
    settings: Settings

    @property
    def upstream(self) -> str | None:
        """The namespace whose raw layer this one reads in place (research only)."""
        up = self.settings.upstream if self.kind is NamespaceKind.RESEARCH else None
        return up if up != self.name else None

    @property
    def schedules(self) -> bool:
        """Whether dataset and workflow DAGs get their schedules (serving only, and not when
        ``PIPELINES_SCHEDULES=off``)."""
        return self.kind is NamespaceKind.SERVING and environment.schedules_enabled()

    @property
    def pool(self) -> str | None:
        pool = self.settings.pool
        return pool.replace("{namespace}", self.name) if pool else None

    @property
    def e2e(self) -> tuple[str, str, str | None] | None:
        """Master: (cookbook, schedule, replayed day) of the scheduled e2e cookbook."""
        if self.kind is not NamespaceKind.MASTER:
            return None
        s = self.settings
        return s.cookbook or DEFAULT_E2E, s.schedule, s.date

    @property
    def maintenance(self) -> tuple[str, float] | None:
        """(cron, retention hours) of the namespace's maintenance DAG; None: it has none."""
        s = self.settings
        return (s.maintenance, s.retention_hours) if s.maintenance else None


def namespace_spec(include: Path, name: str | None = None) -> NamespaceSpec:
    """The namespace ``name`` (default: this process's, :func:`environment.resolve_namespace`),
    with its kind and settings from ``include/namespaces.yaml``.

    :raises ConfigError: the file cannot be read or holds an unknown kind or setting
    """
    resolved = environment.resolve_namespace()
    if name is not None and name != resolved.name:
        resolved = Resolved(name, "given")
    rules = load_rules(include)
    kind = rules.kind_of(resolved.name, resolved.branch)
    return NamespaceSpec(resolved.name, kind, resolved.source, resolved.branch, rules.of(kind))


@dataclass(frozen=True)
class Present:
    """A namespace that has files in the lake: its kind (as its claim recorded it, else by the
    rules), the branch that claimed it, and what it holds."""

    lake: Lake
    kind: NamespaceKind
    branch: str | None
    tables: int
    files: int
    size: int


def in_lake(include: Path, root: str) -> list[Present]:
    """Every namespace with files under the lake root, by name."""
    rules = load_rules(include)
    names = [n for n in Storage(root).list(root) if NAMESPACE_RE.fullmatch(n)]  # namespace folders
    return [p for p in (_present(rules, root, n) for n in names) if p is not None]


def _present(rules: Rules, root: str, name: str) -> Present | None:
    """What the lake holds of namespace ``name`` (None: nothing)."""
    lake = Lake(root, name)
    files = lake.files()
    if not files:
        return None
    claim = claimed(lake.storage, lake.prefix)
    kind = claim.get("kind")
    logs = {p.rsplit(f"/{LOG}/", 1)[0] for p, _ in files if f"/{LOG}/" in p}
    recorded = {f"{lake.prefix}/{name}" for name in lake.run_log().all()}  # some only empty
    # a table is {prefix}/{layer}/{name}: not the runs table, nor a log a repair kept under
    # _damaged/ or a rebuild left under _rebuild/ (their files still count, and their size)
    layers = {layer.value for layer in Layer}
    tables = {t for t in logs | recorded if _layer_of(t, lake.prefix) in layers}
    return Present(
        lake,
        NamespaceKind(kind) if kind in list(NamespaceKind) else rules.kind_of(name),
        claim.get("branch"),
        len(tables),
        len(files),
        sum(size for _, size in files),
    )


def _layer_of(table: str, prefix: str) -> str | None:
    """The layer folder of a table path ``{prefix}/{layer}/{name}`` (None: not of that form)."""
    parts = table[len(prefix.rstrip("/")) :].strip("/").split("/")
    return parts[0] if len(parts) == 2 else None


def nothing_there(name: str, where: str) -> NamespaceError:
    """The refusal of a command that needs namespace ``name`` to hold something (``where``: its
    prefix), as ``namespace drop``, ``namespace diff`` and the maintenance commands say it."""
    return NamespaceError(f"namespace {name!r} has nothing in the lake ({redact(where)})")


def require_present(lake: Lake) -> None:
    """Refuse a namespace with nothing in the lake, before anything writes there: a maintenance
    command on a mistyped ``--namespace`` would otherwise claim it and create its runs table.

    :raises NamespaceError: nothing under ``lake``'s prefix
    """
    if not lake.storage.list(lake.prefix):
        raise nothing_there(lake.namespace, lake.prefix)


def to_drop(include: Path, root: str, name: str) -> Present:
    """The namespace ``name`` of the lake, when ``pipelines namespace drop`` may delete it.

    :raises NamespaceError: not a namespace name, nothing in the lake, or a serving or master
        namespace (only research namespaces are dropped)
    """
    if not NAMESPACE_RE.fullmatch(name):
        raise NamespaceError(f"{name!r} is not a namespace name ({NAMESPACE_RE.pattern})")
    found = _present(load_rules(include), root, name)
    if found is None:
        raise nothing_there(name, f"{root}/{name}")
    if found.kind.protected:
        raise NamespaceError(
            f"namespace {name!r} is a {found.kind} namespace: drop deletes only research "
            "namespaces' data"
        )
    return found


def load_rules(include: Path) -> Rules:
    path = Path(include) / NAMESPACES
    try:
        st = path.stat()
    except OSError:
        return Rules()
    return _load(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _load(path: str, _mtime: int, _size: int) -> Rules:
    def problem(where: str, message: str) -> ConfigError:
        return ConfigError([Problem(NAMESPACES, None, where, message, True)])

    data = read_yaml(Path(path)) or {}
    if not isinstance(data, dict):
        raise problem("file", "must be a mapping with 'kinds' and per-kind settings")
    unknown = set(data) - {"kinds", *NamespaceKind}
    if unknown:
        raise problem(sorted(unknown)[0], f"unknown key; use kinds, {', '.join(NamespaceKind)}")
    rules = DEFAULT_RULES
    if "kinds" in data:
        rules = tuple(_rule(entry, i, problem) for i, entry in enumerate(data["kinds"] or [], 1))
    settings = {
        kind: _settings(kind, data[str(kind)], problem) for kind in NamespaceKind if kind in data
    }
    return Rules(rules, settings)


def _rule(entry: Any, i: int, problem) -> Rule:
    where = f"kinds entry {i}"
    if not isinstance(entry, dict) or set(entry) != {"match", "kind"}:
        raise problem(where, "must be {match: [patterns], kind: serving|master|research}")
    patterns = entry["match"] if isinstance(entry["match"], list) else [entry["match"]]
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise problem(where, "match must be a pattern or a list of patterns")
    if entry["kind"] not in list(NamespaceKind):
        raise problem(where, f"kind {entry['kind']!r} must be one of {', '.join(NamespaceKind)}")
    return Rule(tuple(patterns), NamespaceKind(entry["kind"]))


def _settings(kind: NamespaceKind, raw: Any, problem) -> Settings:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise problem(str(kind), "must be a mapping of settings")
    unknown = set(raw) - KEYS[kind]
    if unknown:
        allowed = ", ".join(sorted(KEYS[kind]))
        raise problem(f"{kind}.{sorted(unknown)[0]}", f"not a {kind} setting (those: {allowed})")
    values = {key: _value(f"{kind}.{key}", key, value, problem) for key, value in raw.items()}
    return replace(Settings(), **values)


def _value(where: str, key: str, value: Any, problem) -> Any:
    """One setting's value as :class:`Settings` holds it (a schedule as cron)."""
    if key in NULLABLE and value is None:
        return None
    if key == "retention_hours":
        if isinstance(value, bool) or not isinstance(value, int | float) or not isfinite(value):
            raise problem(where, f"{value!r} is not a number of hours")
        why = retention_problem(value)
        if why:
            raise problem(where, why)
        return float(value)
    text = str(value) if key == "date" else value
    if not isinstance(text, str) or not text.strip():
        raise problem(where, "must be text")
    if key == "upstream" and not environment.NAMESPACE_RE.fullmatch(text):
        raise problem(where, f"{text!r} is not a namespace name")
    if key == "date" and date_problem(text) is not None:
        raise problem(where, date_problem(text))
    if key in ("schedule", "maintenance"):
        text, why = check_schedule(text, writes_partitions=False)
        if why:
            raise problem(where, why)
    return text
