"""``pipelines.read``: a layer of a dataset (or an aggregate) as a pandas DataFrame."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pipelines.common.partitions import Layer, date_option, format_date
from pipelines.exceptions import LakeError, PipelinesError
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Table
from pipelines.project.config import Kind, Project, load_project

if TYPE_CHECKING:
    import pandas as pd

# which partitions of the newest version to read (None: all of them)
Selection = Callable[[Iterable[str]], list[str] | None]


def read(
    name: str,
    layer: str = "cleaned",
    namespace: str | None = None,
    as_of: str | dt.date | None = None,
    *,
    project: Project | None = None,
    lake: Lake | None = None,
) -> pd.DataFrame:
    """Read a table of the lake.

    :param name: a dataset for ``raw``, ``cleaned`` and ``quarantine``; an aggregate's name for
        ``aggregated``; a workflow's for ``workflows``
    :param layer: ``raw``, ``cleaned``, ``aggregated``, ``quarantine`` or ``workflows``
    :param namespace: default ``PIPELINES_NAMESPACE``
    :param as_of: ``YYYY-MM-DD`` or a date: for raw (and quarantine) that one delivery; for a full
        dataset's cleaned layer that snapshot (default: the newest); for a workflow, that day
        (default: every day); for an incremental cleaned table and an aggregate, the whole table
        as the newest run for that day left it (a Delta version of the table)
    :return: rows with the partition key as a text column (``ds`` or ``dt``, ``YYYY-MM-DD``)
    :raises UnknownNameError: ``name`` is not an aggregate (``aggregated``) or a dataset (the
        other layers)
    """
    layer = _layer(layer)
    project = project or load_project()
    lake = lake or project.lake(namespace)
    day = format_date(date_option(as_of, "as_of")) if as_of is not None else None
    table, select = _locate(project, lake, name, layer, day)
    spec = project.aggregate(name) if layer is Layer.AGGREGATED else None
    if select is AS_IT_STOOD:
        return _read_as_it_stood(table, day, name, layer)
    return _read_current(table, select, day, name, layer, lake.namespace, spec and spec.dataset)


AS_IT_STOOD: Any = object()  # what _locate selects for the whole table at a day's version


def _read_as_it_stood(table: Table, day: str, name: str, layer: Layer) -> pd.DataFrame:
    """The whole table as the newest run for ``day`` left it (the Delta version it recorded)."""
    now = table.snapshot()
    version = now.version_of(day)
    if version is None:
        days = ", ".join(sorted(now.meta["runs"])) or "none"
        raise LakeError(f"as_of: no run of {name} recorded for {day} in {layer} (days: {days})")
    snap = table.snapshot(version) if version >= 0 else now
    if not snap.exists:
        return snap.as_stored(table.read([], snap))
    return snap.as_stored(table.read(None, snap))


def read_deliveries(
    name: str, layer: str, days: Iterable[str], namespace: str | None = None
) -> pd.DataFrame:
    """The raw (or quarantine) partitions of the given days of a dataset, with their ``ds``;
    days with no partition add no rows."""
    layer = _layer(layer)
    if layer not in (Layer.RAW, Layer.QUARANTINE):
        raise PipelinesError(f"deliveries are in the raw and quarantine layers, not {layer}")
    wanted = [format_date(date_option(d, "days")) for d in days]
    project = load_project()
    lake = project.lake(namespace)
    table, _ = _locate(project, lake, name, layer, None)
    return _read_current(table, lambda partitions: wanted, None, name, layer, lake.namespace)


def _layer(value: str) -> Layer:
    try:
        return Layer(value)
    except ValueError:
        raise PipelinesError(
            f"layer {value!r} is not one of: {', '.join(m.value for m in Layer)}"
        ) from None


def _read_current(
    table: Table,
    select: Selection,
    day: str | None,
    name: str,
    layer: Layer,
    namespace: str,
    runs: str | None = None,
) -> pd.DataFrame:
    """The selected partitions of the newest version (re-read when a concurrent commit replaced
    them).

    :param runs: the dataset whose runs write the table, when it is not ``name`` (an aggregate)
    """
    hint = " its dataset" if runs else ""
    for attempt in range(3):
        snap = table.snapshot()
        if not snap.written:
            raise LakeError(
                f"no {layer} data for {name!r} in namespace {namespace!r} yet "
                f"(run{hint}: pipelines run {runs or name} --date YYYY-MM-DD)"
            )
        wanted = select(snap.partitions)
        if wanted == [day] and day not in snap.partitions:
            raise LakeError(
                f"{name}: no {layer} partition {table.key}={day} "
                f"(have: {', '.join(sorted(snap.partitions)) or 'none'})"
            )
        try:
            rows = snap.as_stored(table.read(wanted, snap))
        except FileNotFoundError:  # a concurrent commit replaced them: read the new version
            if attempt == 2:
                raise
            continue
        return _in_delivery_order(rows) if layer is Layer.RAW else rows
    raise AssertionError("unreachable")


def _in_delivery_order(rows: pd.DataFrame) -> pd.DataFrame:
    """Raw deliveries in the order they were delivered: a large delivery is written to several
    files, which the table's log lists in no particular order. (Quarantine keeps the order it
    was written in: by reason, then delivery order.)"""
    order = [c for c in ("ds", "_row") if c in rows.columns]
    if len(order) < 2:
        return rows
    return rows.sort_values(order, kind="stable", ignore_index=True)


def _locate(
    project: Project, lake: Lake, name: str, layer: Layer, day: str | None
) -> tuple[Table, Selection]:
    """The table, and which of its partitions make up what was asked for."""
    if layer is Layer.AGGREGATED:
        project.require(name, Kind.AGGREGATE)
        return lake.aggregated(name), AS_IT_STOOD if day else (lambda partitions: None)
    if layer is Layer.WORKFLOWS:
        project.require(name, Kind.WORKFLOW)
        return lake.workflow(name), lambda partitions: [day] if day else None
    kind = project.require(name, Kind.DATASET).spec.ingestion
    if layer is Layer.CLEANED and day is not None and not kind.keeps_snapshots:
        return lake.table(layer, name, project), AS_IT_STOOD  # one table, over time
    if layer is Layer.CLEANED and day is None:
        return lake.table(layer, name, project), kind.current_partitions
    return lake.table(layer, name, project), lambda partitions: [day] if day else None
