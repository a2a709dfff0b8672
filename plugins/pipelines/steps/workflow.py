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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.common.partitions import DAILY, Layer, interval_for
from pipelines.exceptions import ConfigError, LakeError, Problem, WorkflowError
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot, Table, commit_with_retry
from pipelines.project.config import Project
from pipelines.project.table_config import CONFIG, of_workflow
from pipelines.project.workflows import WORKFLOWS, WorkflowInput, WorkflowSpec
from pipelines.runtime import environment
from pipelines.runtime.environment import include_dir
from pipelines.steps.output import validated

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
FOLDER = "workflows"  # include/workflows/: the users' modules
PACKAGE = str(environment.PACKAGE_DIR)  # frames below it are not the user's code


class MissingInput(LakeError):
    """An input of a workflow has not landed for the day the workflow runs for."""

    def __init__(
        self, workflow: str, item: WorkflowInput, day: str, producer: str, checks: str = ""
    ):
        self.workflow, self.input, self.day, self.producer = workflow, item, day, producer
        what = f"{workflow}: input {item.alias} ({item.layer} {item.table})"
        if checks.startswith("failed: "):
            super().__init__(
                f"{what} failed its checks for {day} ({checks.removeprefix('failed: ')}): "
                f"fix it and rerun {producer} for {day}"
            )
            return
        super().__init__(
            f"{what} has no data for {day} yet: run {producer} for {day} first "
            f"(pipelines run {producer} --date {day}), or pass --upstream"
        )

    @classmethod
    def of(cls, workflow: str, item: WorkflowInput, day: str, src: Source, snap: Snapshot):
        """Why ``item`` has not landed ``day`` in ``snap``."""
        checks = str(snap.run_metrics(day).get("checks", ""))
        return cls(workflow, item, day, src.producer, checks)


@dataclass(frozen=True)
class Source:
    """Where one input of a workflow is read from and who writes it."""

    table: Table
    snapshots: bool  # a full dataset's cleaned table: whole snapshots, not days
    producer: str  # the dataset or workflow whose runs write it
    cron: str  # the producer's schedule


def source(project: Project, lake: Lake, item: WorkflowInput) -> Source:
    """The table behind an input (the spec was checked: the name exists in its layer)."""
    if item.layer is Layer.WORKFLOWS:
        upstream = project.workflow(item.table)
        return Source(lake.workflow(item.table), False, item.table, upstream.cron or DAILY)
    dataset = project.tables.dataset_of(item)
    table = lake.table(item.layer, item.table, project)
    snapshots = item.layer is Layer.CLEANED and dataset.ingestion.keeps_snapshots
    return Source(table, snapshots, dataset.name, dataset.cron)


def missing_inputs(spec: WorkflowSpec, ds: str, lake: Lake, project: Project) -> list[MissingInput]:
    """The inputs that have not landed for ``ds`` (a workflow on a cron waits for none)."""
    if spec.cron:
        return []
    missing = []
    for item in spec.inputs:
        src = source(project, lake, item)
        snap = src.table.snapshot()
        if not snap.has_landed(ds):
            missing.append(MissingInput.of(spec.name, item, ds, src, snap))
    return missing


def missing_upstream(spec: WorkflowSpec, ds: str, lake: Lake, project: Project) -> list[str]:
    """What must run for ``ds`` before the workflow can: the datasets and workflows whose day
    has not landed, upstream first, each once."""
    order: list[str] = []
    for gap in missing_inputs(spec, ds, lake, project):
        upstream = project.workflow(gap.producer)
        if upstream is not None:
            order += missing_upstream(upstream, ds, lake, project)
        order.append(gap.producer)
    return list(dict.fromkeys(order))


def rerun_days(
    project: Project, lake: Lake, workflow: str, layer: Layer, table: str, changed: list[str]
) -> list[str]:
    """The days ``workflow`` already wrote whose input windows hold a changed day of ``table``:
    the days to run again (a day it has not written yet waits for its first landing).

    The input's window says which days a changed day C reaches (:meth:`Window.reached_by`): C ..
    C+N-1 (``Nd``), every day from C on that the workflow ran for (``all``), C alone for a
    snapshot (each later day has a snapshot of its own).
    """
    spec = project.workflow(workflow)
    if spec is None:
        return []
    written = lake.workflow(workflow).snapshot()
    ran = written.meta.get("runs", {})
    days: set[str] = set()
    for item in spec.inputs:
        if (item.layer, item.table) != (layer, table):
            continue
        snapshots = source(project, lake, item).snapshots
        for day in changed:
            reached = item.window.reached_by(day, snapshots=snapshots)
            days.update(reached if reached.bounded else reached.of(ran))
    return sorted(d for d in days if written.has_landed(d))


def read_inputs(
    spec: WorkflowSpec, ds: str, lake: Lake, project: Project
) -> dict[str, pd.DataFrame]:
    """``alias -> rows`` of each input's window for ``ds``, with the partition column.

    :raises MissingInput: an input has not landed for ``ds`` (a workflow on its inputs), or has
        nothing at or before ``ds`` (a workflow on a cron)
    """
    inputs = {}
    for item in spec.inputs:
        src = source(project, lake, item)
        snap = src.table.snapshot()
        if not spec.cron and not snap.has_landed(ds):
            raise MissingInput.of(spec.name, item, ds, src, snap)
        wanted = item.window.select(snap.partitions, ds, snapshots=src.snapshots)
        if spec.cron and not wanted:  # on the clock: the input's own latest day, named
            raise MissingInput(spec.name, item, interval_for(src.cron, ds).ds, src.producer)
        inputs[item.alias] = _rows(src.table, wanted, snap)
    return inputs


def _rows(table: Table, partitions: list[str], snap: Snapshot) -> pd.DataFrame:
    """The partitions' rows in the table's kinds; an empty window still has the columns."""
    import pandas as pd

    rows, read_from = table.read_version(partitions, snap)
    rows = read_from.as_stored(rows)  # an empty read gets the cleaned schema's columns here
    rows = rows.drop(columns=[c for c in rows.columns if str(c).startswith("_")])
    if not rows.empty:
        return rows
    kinds = {table.key: "string", **dict(read_from.meta.get("columns", []))}  # a workflow's
    empty = {c: pd.Series(dtype=kinds.get(c, rows[c].dtype if c in rows else "string"))
             for c in dict.fromkeys([*kinds, *rows.columns])}  # fmt: skip
    return pd.DataFrame(empty)


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
    """Run the workflow for day ``ds``: read, call, check, commit ``ds=D`` with its metrics.

    :return: ``{"ds", "rows", "metrics", "inputs": {alias: rows}}``
    """
    function = resolve(spec)
    inputs = read_inputs(spec, ds, lake, project)
    frame, metrics = call(spec, function, inputs, ds)
    table = lake.workflow(spec.name)
    columns = [[str(c), str(t)] for c, t in frame.dtypes.items()]

    def attempt(base: Snapshot) -> Snapshot:
        return table.commit(
            base,
            {ds: frame},
            {"columns": columns, CONFIG: of_workflow(spec)},
            run=(ds, {"rows": len(frame), "metrics": metrics}),
        )

    commit_with_retry(table, attempt)
    log.info("%s: ds=%s: %s rows, metrics %s", spec.name, ds, len(frame), metrics)
    return {
        "ds": ds,
        "rows": len(frame),
        "metrics": metrics,
        "inputs": {alias: len(rows) for alias, rows in inputs.items()},
    }


def metrics_of(name: str, ds: str, lake: Lake) -> dict[str, Any]:
    """The metrics a workflow's run for ``ds`` reported, as the table stands now ({}: none)."""
    recorded = lake.workflow(name).snapshot().run_metrics(ds)
    return dict(recorded.get("metrics", {}))
