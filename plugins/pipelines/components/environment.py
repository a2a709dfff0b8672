"""Where things are: project home, namespace and lake root, all read from the environment.

This is the only module that reads ``PIPELINES_*`` variables, so a later change (for example a
branch-aware namespace) happens in one place.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
DEFAULT_NAMESPACE = "local"
LAKE_CONN_ENV = "PIPELINES_LAKE_CONN_ID"
DEFAULT_LAKE_CONN_ID = "pipelines_lake"


def project_home() -> Path:
    """The folder holding ``include/``: ``PIPELINES_HOME`` or found from the package location."""
    env = os.environ.get("PIPELINES_HOME")
    if env:
        return Path(env).expanduser().resolve()
    # plugins/pipelines/components/environment.py -> repo root
    return Path(__file__).resolve().parents[3]


def include_dir() -> Path:
    """``{home}/include``: registry, aggregates, cookbooks and sample sources."""
    return project_home() / "include"


def namespace() -> str:
    """The namespace every DAG id and lake path of this deployment lives in."""
    from pipelines.exceptions import PipelinesError

    value = os.environ.get("PIPELINES_NAMESPACE", "").strip() or DEFAULT_NAMESPACE
    if not NAMESPACE_RE.match(value):
        raise PipelinesError(
            f"PIPELINES_NAMESPACE: {value!r} must match {NAMESPACE_RE.pattern} "
            "(lowercase letters, digits, underscores)"
        )
    return value


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
