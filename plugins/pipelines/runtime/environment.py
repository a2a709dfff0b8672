"""Where things are: project home, namespace and lake root, read from the environment, the DAG
bundle being parsed (:mod:`.bundles`) and the project's git checkout (:mod:`.branch`).

This is the only module that reads ``PIPELINES_*`` variables and decides the namespace's name
(:func:`resolve_namespace`); what kind a namespace is lives in :mod:`pipelines.project.namespaces`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.runtime import bundles
from pipelines.runtime.branch import NAMESPACE_RE, git_branch, normalise

# Where the package is, from this file alone (one owner: a module that moves to another folder
# would otherwise keep a count of parents that no longer holds).
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # plugins/pipelines
CHECKOUT = PACKAGE_DIR.parents[1]  # the checkout holding dags/, plugins/ and include/

DEFAULT_NAMESPACE = "local"
LAKE_CONN_ENV = "PIPELINES_LAKE_CONN_ID"
DEFAULT_LAKE_CONN_ID = "pipelines_lake"


@dataclass(frozen=True)
class Resolved:
    """The namespace of this process, and where its name came from.

    :param source: ``PIPELINES_NAMESPACE``, ``DAG bundle 'x'``, ``git branch 'y'``,
        ``git commit abc1234 (detached HEAD)`` or ``default``
    :param branch: the branch (as git spells it) the name was normalised from, if any
    """

    name: str
    source: str
    branch: str | None = None


def resolve_namespace() -> Resolved:
    """The namespace, in this order: ``PIPELINES_NAMESPACE``; the DAG bundle the DAG file was
    parsed from; the git branch of the project (detached HEAD: the short commit); ``local``."""
    from pipelines.exceptions import PipelinesError

    value = os.environ.get("PIPELINES_NAMESPACE", "").strip()
    if value:
        if not NAMESPACE_RE.fullmatch(value):
            raise PipelinesError(
                f"PIPELINES_NAMESPACE: {value!r} must match {NAMESPACE_RE.pattern} "
                "(lowercase letters, digits, underscores)"
            )
        return Resolved(value, "PIPELINES_NAMESPACE")
    bundle = bundles.bound()
    if bundle is not None:
        return Resolved(bundle.namespace, f"DAG bundle {bundle.name!r}", bundle.ref or bundle.name)
    checkout = git_branch(project_home())
    if checkout is not None:
        name, detached = checkout
        if detached:
            return Resolved(normalise(name), f"git commit {name} (detached HEAD)")
        return Resolved(normalise(name), f"git branch {name!r}", name)
    return Resolved(DEFAULT_NAMESPACE, "default")


def project_home() -> Path:
    """The folder holding ``include/``: ``PIPELINES_HOME``, else the checkout of the DAG bundle
    being parsed, else found from the package location."""
    env = os.environ.get("PIPELINES_HOME")
    if env:
        return Path(env).expanduser().resolve()
    bound = bundles.bound_home()
    if bound is not None:
        return bound
    return CHECKOUT


def include_dir() -> Path:
    """``{home}/include``: registry, aggregates, cookbooks and sample sources."""
    return project_home() / "include"


def namespace() -> str:
    """The namespace every DAG id and lake path of this deployment lives in
    (:func:`resolve_namespace`)."""
    return resolve_namespace().name


def lake_root() -> str:
    """The lake root: ``PIPELINES_LAKE`` (local path or ``s3://bucket/prefix``), else ``.lake/``."""
    value = os.environ.get("PIPELINES_LAKE", "").strip()
    if not value:
        return str(project_home() / ".lake")
    if "://" in value and not value.startswith("file://"):
        _refuse_credentials(value)
        return value.rstrip("/")
    local = value.removeprefix("file://")
    return str(Path(local).expanduser().resolve())


def _refuse_credentials(uri: str) -> None:
    """A lake URI carries no secret: the Airflow connection does (the URI is never echoed)."""
    from urllib.parse import urlsplit

    from pipelines.exceptions import PipelinesError
    from pipelines.runtime.secrets import has_user_info, secret_query_keys

    parts = urlsplit(uri)
    if "@" in parts.netloc or parts.query or has_user_info(uri) or secret_query_keys(uri):
        raise PipelinesError(
            "PIPELINES_LAKE: the lake URI must not carry credentials or query parameters; "
            f"put them in the Airflow connection {lake_conn_id()!r} ({LAKE_CONN_ENV})"
        )


REBUILD_ENV = "PIPELINES_REBUILD"  # NAMESPACE:LAYER/NAME,...: the tables runs write beside


def rebuilt_tables(namespace: str) -> frozenset[str]:
    """The tables (``layer/name``) of ``namespace`` that this process's runs write beside the
    current ones (``PIPELINES_REBUILD``, set by ``plan --apply`` around a rebuild's backfill);
    empty for every other namespace."""
    value = os.environ.get(REBUILD_ENV, "").strip()
    home, _, tables = value.partition(":")
    if home != namespace:
        return frozenset()
    return frozenset(t for t in tables.split(",") if t)


def lake_conn_id() -> str:
    """The Airflow connection used for an object-storage lake."""
    return os.environ.get(LAKE_CONN_ENV, "").strip() or DEFAULT_LAKE_CONN_ID


def schedules_enabled() -> bool:
    """``PIPELINES_SCHEDULES``: ``on`` (default) or ``off``.

    ``off`` gives dataset DAGs no schedule of their own: they run only when triggered (by a
    cookbook, the UI or the CLI), so a namespace driven by cookbooks (e2e) never has a scheduled
    run holding the logical date a cookbook wants to trigger.
    """
    from pipelines.exceptions import PipelinesError

    value = os.environ.get("PIPELINES_SCHEDULES", "").strip().lower() or "on"
    if value not in ("on", "off"):
        raise PipelinesError(f"PIPELINES_SCHEDULES: {value!r} must be 'on' or 'off'")
    return value == "on"


def task_retries() -> int:
    """Retries of every task (``PIPELINES_TASK_RETRIES``, default 2; local runs use 0)."""
    value = os.environ.get("PIPELINES_TASK_RETRIES", "").strip()
    return int(value) if value.isdigit() else 2


TRIGGER_POKE_SECONDS = 10  # how often a cookbook's trigger task asks for its child run's state


def trigger_poke_seconds() -> float:
    """``PIPELINES_TRIGGER_POKE_SECONDS``: how often a cookbook's trigger task checks whether its
    child run ended (default :data:`TRIGGER_POKE_SECONDS`; a positive number of seconds)."""
    from pipelines.exceptions import PipelinesError

    value = os.environ.get("PIPELINES_TRIGGER_POKE_SECONDS", "").strip()
    if not value:
        return TRIGGER_POKE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise PipelinesError(
            f"PIPELINES_TRIGGER_POKE_SECONDS: {value!r} must be a number of seconds in (0, 3600]"
        )
    return int(seconds) if seconds.is_integer() else seconds


MEMORY_LIMIT = "1GB"  # a worker slot's share: DuckDB spills to disk past it
_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$")
_UNITS = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


def memory_limit() -> int:
    """``PIPELINES_MEMORY_LIMIT`` in bytes (``2GB``, ``512MiB``; default :data:`MEMORY_LIMIT`):
    what the engine of one task may hold in memory before it spills to a temp folder."""
    from pipelines.exceptions import PipelinesError

    value = os.environ.get("PIPELINES_MEMORY_LIMIT", "").strip() or MEMORY_LIMIT
    found = _SIZE.match(value)
    if not found:
        raise PipelinesError(
            f"PIPELINES_MEMORY_LIMIT: {value!r} is not a size such as 2GB or 512MiB"
        )
    number, unit = float(found.group(1)), found.group(2).lower()
    scale = _UNITS[unit] if unit in _UNITS else 1024 ** ("kmgt".index(unit[0]) + 1)
    return int(number * scale)


SQL_CHUNK_ROWS = 50_000


def sql_chunk_rows() -> int:
    """``PIPELINES_SQL_CHUNK_ROWS`` (default :data:`SQL_CHUNK_ROWS`): the rows of a database
    source held in memory at a time, whatever the table's size."""
    from pipelines.exceptions import PipelinesError

    value = os.environ.get("PIPELINES_SQL_CHUNK_ROWS", "").strip()
    if not value:
        return SQL_CHUNK_ROWS
    if not value.isdigit() or int(value) < 1:
        raise PipelinesError(f"PIPELINES_SQL_CHUNK_ROWS: {value!r} is not a whole number of rows")
    return int(value)


def late_notifier() -> str | None:
    """``PIPELINES_LATE_NOTIFIER``: the dotted path of a function called, besides the warning
    line, when a run misses its freshness deadline (``None``: the warning only)."""
    return os.environ.get("PIPELINES_LATE_NOTIFIER", "").strip() or None


@dataclass(frozen=True)
class AirflowLogin:
    """Where a client finds a real Airflow, and how it logs in (``PIPELINES_AIRFLOW_*``): a
    password or token never goes on a command line."""

    url: str | None
    username: str | None
    password: str | None
    token: str | None


def airflow_login(url: str | None = None) -> AirflowLogin:
    """``url`` (else ``PIPELINES_AIRFLOW_URL``), and ``PIPELINES_AIRFLOW_USERNAME``,
    ``PIPELINES_AIRFLOW_PASSWORD``, ``PIPELINES_AIRFLOW_TOKEN``."""

    def read(name: str) -> str | None:
        return os.environ.get(f"PIPELINES_AIRFLOW_{name}", "").strip() or None

    return AirflowLogin(url or read("URL"), read("USERNAME"), read("PASSWORD"), read("TOKEN"))


def dataset_dag_id(name: str, ns: str | None = None) -> str:
    """``{namespace}__{dataset}``."""
    return f"{ns or namespace()}__{name}"


def cookbook_dag_id(name: str, ns: str | None = None) -> str:
    """``{namespace}__cookbook__{name}``."""
    return f"{ns or namespace()}__cookbook__{name}"


def child_run_id(parent_dag_id: str, parent_run_id: str) -> str:
    """The run id a cookbook gives a child's run, derived from its own (``{ns}__cookbook__{name}
    __{run id}``, so it carries the namespace): a cleared parent re-runs the same child."""
    return f"{parent_dag_id}__{parent_run_id}"[:250]


def workflow_dag_id(name: str, ns: str | None = None) -> str:
    """``{namespace}__workflow__{name}``."""
    return f"{ns or namespace()}__workflow__{name}"


MAINTENANCE = "maintenance"  # the maintenance DAG's id after the namespace (no dataset's name)


def maintenance_dag_id(ns: str | None = None) -> str:
    """``{namespace}__maintenance``: the DAG that compacts and vacuums the namespace's tables."""
    return f"{ns or namespace()}__{MAINTENANCE}"


@contextlib.contextmanager
def variable(name: str, value: str) -> Iterator[None]:
    """``name`` = ``value`` in this process while inside; the earlier value (or none) after."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
