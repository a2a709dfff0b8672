"""The workflow step: a user's function over lake tables, for one day D.

``run`` reads each input's window for D through the lake (the version each table has now, so a
rerun reads what is there now), calls the function, checks what it returned
(:func:`pipelines.steps.output.validated`) and commits ``workflows/{name}/ds=D`` with the same
atomic commit as every layer, the metrics kept with that version (``meta["runs"][D]``). A function
that raises, or a result that fails its checks, leaves the table as it was.

User modules are imported here, at run time, never when DAGs are parsed: ``include/workflows/``
is put on ``sys.path`` first, so ``function: features:customer_features`` finds
``include/workflows/features.py``.
"""

from __future__ import annotations

import copy
import importlib
import logging
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.exceptions import ConfigError, LakeError, PipelinesError, Problem, WorkflowError
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot, commit_with_retry
from pipelines.project.config import Project
from pipelines.project.table_config import CONFIG, of_workflow
from pipelines.project.workflows import WORKFLOWS, WorkflowSpec
from pipelines.runtime import environment
from pipelines.runtime.environment import include_dir
from pipelines.steps.output import validated
from pipelines.steps.window_inputs import DAYS_READ, read_inputs
from pipelines.steps.workflow_code import FOLDER, code_hash

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
PACKAGE = str(environment.PACKAGE_DIR)  # frames below it are not the user's code


def resolve(spec: WorkflowSpec, include: Path | None = None) -> Callable:
    """The workflow's function, imported from ``include/workflows/``.

    :raises ConfigError: ``workflows.yaml: NAME: function ...: why`` (the module cannot be
        imported, with the file and line of a syntax error, or has no such callable)
    """
    folder = str((include or include_dir()) / FOLDER)
    if folder not in sys.path:
        sys.path.insert(0, folder)

    def fail(why: str) -> ConfigError:
        return ConfigError(
            [Problem(WORKFLOWS, None, spec.name, f"function {spec.function!r}: {why}")]
        )

    try:
        module = _import(spec.module, folder)
    except SyntaxError as exc:
        where = f"{Path(exc.filename or '?').name}, line {exc.lineno}, column {exc.offset}"
        raise fail(f"module {spec.module} has a syntax error ({where}): {exc.msg}") from None
    except ImportError as exc:
        if getattr(exc, "name", None) == spec.module:
            raise fail(
                f"no module {spec.module} (looked in {folder} and the Python path)"
            ) from None
        raise fail(f"importing {spec.module} failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module ran code that failed
        raise fail(f"importing {spec.module} failed: {_said(exc)}") from None
    function = getattr(module, spec.callable_name, None)
    if not callable(function):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise fail(
            f"module {spec.module} has no function {spec.callable_name!r} "
            f"(it has: {', '.join(names) or 'none'})"
        )
    return function


_LOADED: dict[str, int] = {}  # module file -> its mtime when it was imported


def _import(name: str, folder: str):
    """The module ``name``, from ``folder`` when it is there; imported again when its file
    changed since (a long-lived process, a notebook with a client, runs the function as the file
    now reads) or when another project's module of that name was imported before."""
    importlib.invalidate_caches()  # a module file created after the first import is found
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None) or ""
    ours = (Path(folder) / f"{name.split('.')[0]}").exists() or Path(folder, f"{name}.py").exists()
    if module is not None and ours and not path.startswith(folder + "/"):
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]  # another folder's module of the same name
        module = None
    if module is not None and path and _LOADED.get(path) != _mtime(path):
        module = importlib.reload(module)
    elif module is None:
        module = importlib.import_module(name)
    path = getattr(module, "__file__", None)
    if path:
        _LOADED[path] = _mtime(path)
    return module


def _mtime(path: str) -> int:
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return -1


def resolve_all(project: Project, include: Path | None = None) -> list[Problem]:
    """Import every workflow's function, as its first run would: a problem for each that does
    not resolve (``pipelines validate``; parsing DAGs never imports user code)."""
    problems: list[Problem] = []
    for spec in project.workflows:
        try:
            resolve(spec, include)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems


def call(
    spec: WorkflowSpec, function: Callable, inputs: Mapping[str, pd.DataFrame], ds: str
) -> tuple[pd.DataFrame, dict]:
    """``function(inputs, params, ds)``, and its result checked; a :class:`WorkflowError` with
    the user's message and the line it came from when the function raises."""
    try:
        value = function(dict(inputs), copy.deepcopy(dict(spec.params)), ds)  # never shared
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raised
        raise WorkflowError(f"{spec.name}: {spec.function} raised {_said(exc)}") from None
    return validated(spec.name, value, spec.primary_key)


def _said(exc: BaseException) -> str:
    """``Type: message (file.py, line N)``, the line being the deepest frame of user code."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(PACKAGE)
    ]
    where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run(spec: WorkflowSpec, ds: str, lake: Lake, project: Project) -> dict:
    """Run the workflow for day ``ds``: read, call, check, commit ``ds=D`` with its metrics,
    what it read of each input and the hash of its code (:func:`code_hash`). A run that fails
    records the day as failed (a later window does not read it) and changes no row.

    :return: ``{"ds", "rows", "metrics", "inputs": {alias: rows}}``
    """
    table = lake.workflow(spec.name)
    try:
        function = resolve(spec)
        inputs, read = read_inputs(spec, ds, lake, project)
        frame, metrics = call(spec, function, inputs, ds)
    except PipelinesError as exc:
        _record_failure(table, ds, str(exc))
        raise
    for item in spec.inputs:
        if item.min_days is not None:  # a partial window says how much of it was read
            metrics.setdefault(DAYS_READ.format(alias=item.alias), read[item.alias]["days"])
    columns = [[str(c), str(t)] for c, t in frame.dtypes.items()]
    recorded = {"rows": len(frame), "metrics": metrics, "read": read, "code": code_hash(spec)}

    def attempt(base: Snapshot) -> Snapshot:
        return table.commit(
            base,
            {ds: frame},
            {"columns": columns, CONFIG: of_workflow(spec)},
            run=(ds, recorded),
        )

    commit_with_retry(table, attempt)
    log.info("%s: ds=%s: %s rows, metrics %s", spec.name, ds, len(frame), metrics)
    return {
        "ds": ds,
        "rows": len(frame),
        "metrics": metrics,
        "inputs": {alias: len(rows) for alias, rows in inputs.items()},
    }


def _record_failure(table, ds: str, why: str) -> None:
    """Record the day's run as failed (``checks: failed: why``): its day has not landed for the
    workflows that read it, and ``status`` shows it failed. A lake that cannot take the record
    leaves the failure to the task's own line."""

    def attempt(base: Snapshot) -> Snapshot:
        return table.commit(base, {}, run=(ds, {"checks": f"failed: {why.splitlines()[0]}"}))

    try:
        commit_with_retry(table, attempt)
    except LakeError as exc:
        log.warning("could not record the failed run of %s: %s", ds, exc)


def metrics_of(name: str, ds: str, lake: Lake) -> dict[str, Any]:
    """The metrics a workflow's run for ``ds`` reported, as the table stands now ({}: none)."""
    recorded = lake.workflow(name).snapshot().run_metrics(ds)
    return dict(recorded.get("metrics", {}))
