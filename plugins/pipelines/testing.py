"""Helpers for the users' own tests: a workflow on frames the test builds, no lake, no Airflow.

    from pipelines.testing import run_workflow
    out = run_workflow("customer_features", inputs={"orders": orders, "customers": customers},
                       ds="2024-01-02")
    out.table, out.metrics

The function is found and called exactly as a real run does (``workflows.yaml``, the module in
``include/workflows/``, its ``params``), and what it returns goes through the same checks; only
the reading of inputs and the writing of the result are left out.

:func:`read_inputs` gives what a real run for a day would read from the lake (the same windows,
the same refusal when one is not whole, never a day that failed), to build those frames from:

    inputs = read_inputs("customer_features", "2024-01-03")
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipelines.common.partitions import date_option, format_date
from pipelines.exceptions import PipelinesError
from pipelines.project.config import Kind, Project, load_project
from pipelines.steps.output import Output
from pipelines.steps.window_inputs import read_inputs as read_windows
from pipelines.steps.workflow import call, resolve


def run_workflow(
    name: str,
    inputs: Mapping[str, Any],
    ds: str | dt.date,
    *,
    params: Mapping[str, Any] | None = None,
    project: Project | None = None,
) -> Output:
    """Call workflow ``name`` for day ``ds`` on ``inputs`` (alias -> DataFrame).

    :param params: replace the declared params (default: those of ``workflows.yaml``)
    :return: the checked table and metrics
    :raises WorkflowError: the function raised, or returned a table that fails its checks
    :raises PipelinesError: ``inputs`` does not name exactly the declared aliases
    """
    project = project or load_project()
    spec = project.require(name, Kind.WORKFLOW).spec
    declared = [i.alias for i in spec.inputs]
    missing = [a for a in declared if a not in inputs]
    unknown = [a for a in inputs if a not in declared]
    if missing or unknown:
        raise PipelinesError(
            f"{name}: inputs must be exactly {', '.join(declared)}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not declared: {', '.join(map(str, unknown))}" if unknown else "")
        )
    if params is not None:
        spec = replace(spec, params=dict(params))
    day = format_date(date_option(ds, "ds"))
    frame, metrics = call(spec, resolve(spec), {a: inputs[a].copy() for a in declared}, day)
    return Output(table=frame, metrics=metrics)


def read_inputs(
    name: str, ds: str | dt.date, *, namespace: str | None = None, project: Project | None = None
) -> dict[str, Any]:
    """What workflow ``name``'s run for ``ds`` would read from the lake: alias -> DataFrame.

    :param namespace: whose lake (default: PIPELINES_NAMESPACE, as everywhere)
    :raises MissingInput: a window is not whole (it names the input and the days to run)
    """
    project = project or load_project()
    spec = project.require(name, Kind.WORKFLOW).spec
    day = format_date(date_option(ds, "ds"))
    inputs, _ = read_windows(spec, day, project.lake(namespace), project)
    return inputs
