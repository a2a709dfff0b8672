"""What a workflow function returns, and the checks every return value passes before it is kept.

A function returns a DataFrame, or ``Output(table=frame, metrics={...})`` with metrics a flat
mapping of names to numbers or short strings. :func:`validated` is the one gate: the real run and
:func:`pipelines.testing.run_workflow` both go through it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.common import transforms
from pipelines.exceptions import WorkflowError

MAX_TEXT = 200  # a metric that is text: a short label, not a payload
Metric = int | float | str


@dataclass(frozen=True)
class Output:
    """A workflow's table for the day and the numbers it reports about it.

    :param table: the rows to write (a pandas DataFrame)
    :param metrics: ``{"accuracy": 0.91, "rows_trained": 120}``; stored with the day's version,
        attached to the Airflow asset event, returned by ``Client.submit(...).outputs``
    """

    table: Any
    metrics: Mapping[str, Metric] = field(default_factory=dict)


def validated(name: str, value: Any, primary_key: tuple[str, ...] = ()):
    """``(frame, metrics)`` of what a workflow returned, or a :class:`WorkflowError` saying what
    is wrong with it.

    A named index (what a ``groupby`` leaves) becomes columns. The frame must have non-empty,
    unique, text column names, none starting with ``_`` and no ``ds`` (the day is the
    partition's); the declared key, unique and never null; metrics, a flat mapping of names to
    finite numbers or text up to :data:`MAX_TEXT` characters.
    """
    import pandas as pd

    frame, metrics = (value.table, value.metrics) if isinstance(value, Output) else (value, {})
    if not isinstance(frame, pd.DataFrame):
        raise WorkflowError(
            f"{name}: returned {type(frame).__name__}; return a pandas DataFrame or "
            "pipelines.Output(table=frame, metrics={...})"
        )
    if any(level is not None for level in frame.index.names):
        frame = frame.reset_index()  # a named index (a groupby's keys) is data: keep it
    else:
        frame = frame.reset_index(drop=True)
    _check_columns(name, frame)
    if primary_key:
        missing = [c for c in primary_key if c not in frame.columns]
        if missing:
            raise WorkflowError(
                f"{name}: primary_key column {missing[0]!r} is not in the result "
                f"(columns: {', '.join(map(str, frame.columns)) or 'none'})"
            )
        nulls, dupes = transforms.key_faults(frame, primary_key)
        if nulls or dupes:
            raise WorkflowError(
                f"{name}: primary_key {'|'.join(primary_key)}: {dupes} duplicate and {nulls} null "
                "keys in the result; nothing was written"
            )
    return frame, _metrics(name, metrics)


def _check_columns(name: str, frame) -> None:
    columns = list(frame.columns)
    bad = [c for c in columns if not isinstance(c, str) or not c.strip()]
    if bad:
        raise WorkflowError(f"{name}: column names must be non-empty text; got {bad[0]!r}")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise WorkflowError(f"{name}: column {twice[0]!r} appears twice in the result")
    hidden = [c for c in columns if c.startswith("_")]
    if hidden:
        raise WorkflowError(
            f"{name}: column {hidden[0]!r} starts with '_', which the lake keeps for its own "
            "bookkeeping (a reader would not get it back); rename it"
        )
    if "ds" in columns:
        raise WorkflowError(
            f"{name}: the result has a 'ds' column; the day is the partition's (ds=D), drop it"
        )


def _metrics(name: str, metrics: Any) -> dict[str, Metric]:
    if not isinstance(metrics, Mapping):
        raise WorkflowError(f"{name}: metrics must be a mapping of names to values")
    out: dict[str, Metric] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key.strip():
            raise WorkflowError(f"{name}: metric names must be non-empty text; got {key!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
            raise WorkflowError(
                f"{name}: metric {key!r} is {type(value).__name__}; a metric is a number or "
                "short text"
            )
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise WorkflowError(f"{name}: metric {key!r} is text over {MAX_TEXT} characters")
        if isinstance(value, numbers.Real) and not isinstance(value, str):
            value = int(value) if isinstance(value, numbers.Integral) else float(value)
            if isinstance(value, float) and not math.isfinite(value):
                raise WorkflowError(f"{name}: metric {key!r} is {value}, not a finite number")
        out[key] = value
    return out
