"""The four steps of a dataset's run by the names of their tasks: ``extract``, ``merge``,
``check_keys`` and ``aggregate``, each a plain function of (dataset, interval, lake), and
:func:`run_steps`, which runs them in-process.

Operators call these inside ``execute`` (looked up here, by name); tests, benchmarks and the crash
suite call them directly. Each step is idempotent: it replaces the partitions it owns, computed
from its inputs only. Each lives in its own module (:mod:`.extract`, :mod:`.merge`, :mod:`.check`,
:mod:`.aggregate`); ``merge`` hands its :class:`MergeResult` to the steps after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.common.partitions import interval_for
from pipelines.lake.lake import Lake
from pipelines.project.config import Kind, Project, load_project
from pipelines.steps import DATASET_STEPS
from pipelines.steps.aggregate import aggregate
from pipelines.steps.check import check_keys
from pipelines.steps.extract import extract
from pipelines.steps.merge import MergeResult, merge

__all__ = ["STEPS", "MergeResult", "aggregate", "check_keys", "extract", "merge", "run_steps"]
STEPS = DATASET_STEPS  # their names, in order


def run_steps(
    name: str,
    ds: str,
    steps: Sequence[str] = STEPS,
    *,
    project: Project | None = None,
    lake: Lake | None = None,
) -> dict[str, Any]:
    """Run steps of one dataset for the interval of logical date ``ds``, in-process, no Airflow.

    :return: each step's result by step name (``merge``: a :class:`MergeResult`)
    :raises UnknownNameError: ``name`` is not a dataset
    """
    project = project or load_project(strict=False)
    dataset = project.require(name, Kind.DATASET).spec
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step {unknown[0]!r}; steps are {', '.join(STEPS)}")
    lake = lake or project.lake()
    interval = interval_for(dataset.cron, ds)
    out: dict[str, Any] = {}
    for step in steps:
        if step == "extract":
            out[step] = extract(dataset, interval, lake)
        elif step == "merge":
            out[step] = merge(dataset, interval, lake)
        elif step == "check_keys":
            out[step] = check_keys(dataset, interval, lake, out["merge"])
        else:
            out[step] = aggregate(dataset, interval, lake, out.get("merge", MergeResult()), project)
    return out
