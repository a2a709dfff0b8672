"""Where things are: project home, namespace and lake root, read from the environment, the DAG
bundle being parsed and the project's git checkout.

This is the only module that reads ``PIPELINES_*`` variables and decides the namespace's name
(:func:`resolve_namespace`); what kind a namespace is lives in :mod:`pipelines.namespaces`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.components.branch import git_branch

NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
MAX_NAMESPACE = 40
DEFAULT_NAMESPACE = "local"
LAKE_CONN_ENV = "PIPELINES_LAKE_CONN_ID"
DEFAULT_LAKE_CONN_ID = "pipelines_lake"
GIT_BUNDLE = "airflow.providers.git.bundles.git.GitDagBundle"

# The DAG bundle the DAG file of this process was parsed from (set by :func:`bind_dag_file`):
# a dag-processor parse and a task's run each load one DAG file per process.
_BOUND: dict[str, object] = {}


@dataclass(frozen=True)
class Bundle:
    """An Airflow DAG bundle this deployment is configured with.

    :param name: the bundle's name in ``[dag_processor] dag_bundle_config_list``
    :param ref: its ``tracking_ref`` (the branch a GitDagBundle follows), when it has one
    """

    name: str
    ref: str | None = None

    @property
    def namespace(self) -> str:
        """The namespace of the bundle's DAGs: its branch's, else its name's."""
        return normalise(self.ref or self.name)


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


def normalise(value: str) -> str:
    """A branch or bundle name as a namespace: lower case, ``[a-z0-9_]``, at most 40 characters
    (``Feature/Big-Change`` -> ``feature_big_change``)."""
    from pipelines.exceptions import NamespaceError

    name = re.sub(r"[^a-z0-9]+", "_", value.strip().lower()).strip("_")[:MAX_NAMESPACE]
    name = name.rstrip("_")
    if not name:
        raise NamespaceError(f"{value!r} has no letter or digit to make a namespace name of")
    return name


def resolve_namespace() -> Resolved:
    """The namespace, in this order: ``PIPELINES_NAMESPACE``; the DAG bundle the DAG file was
    parsed from; the git branch of the project (detached HEAD: the short commit); ``local``."""
    from pipelines.exceptions import PipelinesError

    value = os.environ.get("PIPELINES_NAMESPACE", "").strip()
    if value:
        if not NAMESPACE_RE.match(value):
            raise PipelinesError(
                f"PIPELINES_NAMESPACE: {value!r} must match {NAMESPACE_RE.pattern} "
                "(lowercase letters, digits, underscores)"
            )
        return Resolved(value, "PIPELINES_NAMESPACE")
    bundle = _BOUND.get("bundle")
    if isinstance(bundle, Bundle):
        return Resolved(bundle.namespace, f"DAG bundle {bundle.name!r}", bundle.ref or bundle.name)
    checkout = git_branch(project_home())
    if checkout is not None:
        name, detached = checkout
        if detached:
            return Resolved(normalise(name), f"git commit {name} (detached HEAD)")
        return Resolved(normalise(name), f"git branch {name!r}", name)
    return Resolved(DEFAULT_NAMESPACE, "default")


def bind_dag_file(dag_file: str | os.PathLike) -> Bundle | None:
    """Note the DAG bundle ``dag_file`` is parsed from, if any: its namespace and its checkout
    (the folder above the DAG file holding ``include/``) then hold for this process.

    Airflow 3.3 checks a bundle out under ``{[dag_processor] dag_bundle_storage_path}/{name}/``
    (``tracking_repo/`` for the DAG processor, ``versions/{commit}/`` for a task); the bundle's
    name is the first folder below that root, and its branch is the ``tracking_ref`` of that name
    in ``[dag_processor] dag_bundle_config_list``.

    :raises NamespaceError: two bundles' branches normalise to the same namespace
    """
    _BOUND.clear()
    path = Path(dag_file).resolve()
    try:
        rel = path.relative_to(bundle_storage_root().resolve())
    except ValueError:
        return None
    if len(rel.parts) < 2:
        return None
    bundles = {b.name: b for b in configured_bundles()}
    bundle = bundles.get(rel.parts[0], Bundle(rel.parts[0]))
    # only the bundles sharing this one's namespace: a clash of two research branches must not
    # take any other bundle's DAGs (serving's) down with them
    check_bundles([b for b in bundles.values() if _namespace_or_none(b) == bundle.namespace])
    base = bundle_storage_root().resolve() / bundle.name
    home = next(
        (d for d in path.parents if (d / "include").is_dir() and d.is_relative_to(base)), None
    )
    _BOUND.update(bundle=bundle, home=home)
    return bundle


def bundle_storage_root() -> Path:
    """Where Airflow checks DAG bundles out (``[dag_processor] dag_bundle_storage_path``)."""
    from airflow.sdk.configuration import conf

    configured = conf.get("dag_processor", "dag_bundle_storage_path", fallback=None)
    if configured:
        return Path(configured)
    import tempfile

    return Path(tempfile.gettempdir(), "airflow", "dag_bundles")


def configured_bundles() -> list[Bundle]:
    """The DAG bundles of ``[dag_processor] dag_bundle_config_list`` (none when unreadable)."""
    from airflow.sdk.configuration import conf

    raw = conf.get("dag_processor", "dag_bundle_config_list", fallback="") or "[]"
    try:
        entries = json.loads(raw)
    except ValueError:
        return []
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            kwargs = entry.get("kwargs") if isinstance(entry.get("kwargs"), dict) else {}
            ref = kwargs.get("tracking_ref") if entry.get("classpath") == GIT_BUNDLE else None
            out.append(Bundle(entry["name"], ref if isinstance(ref, str) else None))
    return out


def check_bundles(bundles: list[Bundle]) -> None:
    """Refuse two bundles whose different branches give one namespace (never a silent merge).

    :raises NamespaceError: naming both bundles and branches
    """
    from pipelines.exceptions import NamespaceError

    seen: dict[str, Bundle] = {}
    for bundle in bundles:
        try:
            name = bundle.namespace
        except NamespaceError:
            continue
        other = seen.setdefault(name, bundle)
        if other is not bundle and (other.ref or other.name) != (bundle.ref or bundle.name):
            raise NamespaceError(
                f"DAG bundles {other.name!r} (branch {other.ref or other.name!r}) and "
                f"{bundle.name!r} (branch {bundle.ref or bundle.name!r}) both give namespace "
                f"{name!r}: rename one branch"
            )


def _namespace_or_none(bundle: Bundle) -> str | None:
    from pipelines.exceptions import NamespaceError

    try:
        return bundle.namespace
    except NamespaceError:
        return None


def project_home() -> Path:
    """The folder holding ``include/``: ``PIPELINES_HOME``, else the checkout of the DAG bundle
    being parsed, else found from the package location."""
    env = os.environ.get("PIPELINES_HOME")
    if env:
        return Path(env).expanduser().resolve()
    bound = _BOUND.get("home")
    if isinstance(bound, Path):
        return bound
    # plugins/pipelines/components/environment.py -> repo root
    return Path(__file__).resolve().parents[3]


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

    parts = urlsplit(uri)
    if "@" in parts.netloc or parts.query:
        raise PipelinesError(
            "PIPELINES_LAKE: the lake URI must not carry credentials or query parameters; "
            f"put them in the Airflow connection {lake_conn_id()!r} ({LAKE_CONN_ENV})"
        )


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


def dataset_dag_id(name: str, ns: str | None = None) -> str:
    """``{namespace}__{dataset}``."""
    return f"{ns or namespace()}__{name}"


def cookbook_dag_id(name: str, ns: str | None = None) -> str:
    """``{namespace}__cookbook__{name}``."""
    return f"{ns or namespace()}__cookbook__{name}"


def workflow_dag_id(name: str, ns: str | None = None) -> str:
    """``{namespace}__workflow__{name}``."""
    return f"{ns or namespace()}__workflow__{name}"


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
