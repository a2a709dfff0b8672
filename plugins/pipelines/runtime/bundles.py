"""Airflow DAG bundles: which one the DAG file of this process is parsed from, and the bundles a
deployment is configured with (one ``GitDagBundle`` per branch, each a namespace).

What this relies on in Airflow 3.3: a bundle is checked out under
``{[dag_processor] dag_bundle_storage_path}/{name}/`` (``tracking_repo/`` for the DAG processor,
``versions/{commit}/`` for a task's run); the bundle's name is the first folder below that root,
and its branch is the ``tracking_ref`` of that name in ``[dag_processor] dag_bundle_config_list``.
A ``LocalDagBundle`` with a ``path`` is the folder it names. A dag-processor parse and a task's
run each load one DAG file per process, so what :func:`bind_dag_file` notes holds for the process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.runtime.branch import normalise

GIT_BUNDLE = "airflow.providers.git.bundles.git.GitDagBundle"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"

_BOUND: dict[str, object] = {}  # "bundle": the Bundle, "home": its checkout's project folder


@dataclass(frozen=True)
class Bundle:
    """An Airflow DAG bundle this deployment is configured with.

    :param name: the bundle's name in ``[dag_processor] dag_bundle_config_list``
    :param ref: its ``tracking_ref`` (the branch a GitDagBundle follows), when it has one
    :param path: a LocalDagBundle's folder, when it names one
    """

    name: str
    ref: str | None = None
    path: str | None = None

    @property
    def namespace(self) -> str:
        """The namespace of the bundle's DAGs: its branch's, else its name's."""
        return normalise(self.ref or self.name)

    @property
    def checkout(self) -> Path:
        """Where Airflow keeps this bundle's files."""
        return Path(self.path).resolve() if self.path else storage_root().resolve() / self.name


def bound() -> Bundle | None:
    """The bundle the DAG file of this process was parsed from (None: not from a bundle)."""
    found = _BOUND.get("bundle")
    return found if isinstance(found, Bundle) else None


def bound_home() -> Path | None:
    """The project folder (the one holding ``include/``) of that bundle's checkout."""
    found = _BOUND.get("home")
    return found if isinstance(found, Path) else None


def bind_dag_file(dag_file: str | os.PathLike) -> Bundle | None:
    """Note the DAG bundle ``dag_file`` is parsed from, if any: its namespace and its checkout
    (the folder above the DAG file holding ``include/``) then hold for this process.

    :raises NamespaceError: another bundle gives the same namespace, the checkout holds no
        ``include/``, or no ``PIPELINES_LAKE`` says where the namespaces' shared lake is
    """
    from pipelines.exceptions import NamespaceError

    _BOUND.clear()
    path = Path(dag_file).resolve()
    configured = configured_bundles()
    bundle = _containing(path, configured)
    if bundle is None:
        return None
    # only the bundles sharing this one's namespace: a clash of two research branches must not
    # take any other bundle's DAGs (serving's) down with them
    check_bundles([b for b in configured if _namespace_or_none(b) == bundle.namespace])
    home = next(
        (d for d in path.parents if (d / "include").is_dir() and d.is_relative_to(bundle.checkout)),
        None,
    )
    if home is None:
        raise NamespaceError(
            f"DAG bundle {bundle.name!r}: no include/ folder above {path} in the bundle's "
            "checkout (its registry, aggregates, workflows and cookbooks)"
        )
    if not os.environ.get("PIPELINES_LAKE", "").strip():
        raise NamespaceError(
            f"DAG bundle {bundle.name!r}: set PIPELINES_LAKE; the namespaces of a deployment "
            "share one lake, which must not be inside a bundle's checkout"
        )
    _BOUND.update(bundle=bundle, home=home)
    return bundle


def _containing(path: Path, configured: list[Bundle]) -> Bundle | None:
    """The bundle whose checkout holds ``path``: a LocalDagBundle's folder, else the storage."""
    for bundle in configured:
        if bundle.path and path.is_relative_to(bundle.checkout):
            return bundle
    try:
        rel = path.relative_to(storage_root().resolve())
    except ValueError:
        return None
    if len(rel.parts) < 2:
        return None
    named = {b.name: b for b in configured}
    return named.get(rel.parts[0], Bundle(rel.parts[0]))


def storage_root() -> Path:
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
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)):
            continue
        kwargs = entry.get("kwargs") if isinstance(entry.get("kwargs"), dict) else {}
        ref = kwargs.get("tracking_ref") if entry.get("classpath") == GIT_BUNDLE else None
        path = kwargs.get("path") if entry.get("classpath") == LOCAL_BUNDLE else None
        out.append(
            Bundle(
                entry["name"],
                ref if isinstance(ref, str) else None,
                path if isinstance(path, str) else None,
            )
        )
    return out


def check_bundles(bundles: list[Bundle]) -> None:
    """Refuse two bundles that give one namespace: their DAG ids would be the same, and the
    last parse would silently win (different branches normalising to one name, or one branch
    tracked twice).

    :raises NamespaceError: naming both bundles and branches
    """
    from pipelines.exceptions import NamespaceError

    seen: dict[str, Bundle] = {}
    for bundle in bundles:
        name = _namespace_or_none(bundle)
        if name is None:
            continue
        other = seen.setdefault(name, bundle)
        if other is not bundle:
            raise NamespaceError(
                f"DAG bundles {other.name!r} (branch {other.ref or other.name!r}) and "
                f"{bundle.name!r} (branch {bundle.ref or bundle.name!r}) both give namespace "
                f"{name!r}: one bundle per branch, and rename a branch that clashes"
            )


def _namespace_or_none(bundle: Bundle) -> str | None:
    from pipelines.exceptions import NamespaceError

    try:
        return bundle.namespace
    except NamespaceError:
        return None
