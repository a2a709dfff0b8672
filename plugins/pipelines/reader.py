"""``pipelines.read``: a layer of a dataset (or an aggregate) as a pandas DataFrame."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pipelines.components.lake import Lake
from pipelines.config import Project, load_project
from pipelines.exceptions import LakeError, PipelinesError
from pipelines.merge import cleaned_key
from pipelines.partitions import Layer, format_date, parse_date
from pipelines.registry import Ingestion

if TYPE_CHECKING:
    import pandas as pd


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
        ``aggregated``
    :param layer: ``raw``, ``cleaned``, ``aggregated`` or ``quarantine``
    :param namespace: default ``PIPELINES_NAMESPACE``
    :param as_of: ``YYYY-MM-DD`` or a date: for raw (and quarantine) that one delivery; for a full
        dataset's cleaned layer that snapshot (default: the newest)
    :return: rows with the partition key as a text column (``ds`` or ``dt``, ``YYYY-MM-DD``)
    """
    try:
        layer = Layer(layer)
    except ValueError:
        raise PipelinesError(
            f"layer {layer!r} is not one of: {', '.join(m.value for m in Layer)}"
        ) from None
    project = project or load_project()
    lake = lake or Lake.from_env(namespace)
    day = format_date(parse_date(as_of)) if as_of is not None else None
    table, partitions = _locate(project, lake, name, layer, day)
    return _read_current(table, partitions, day, name, layer, lake.namespace)


def _read_current(table, partitions, day, name, layer, namespace) -> pd.DataFrame:
    """The partitions of the newest version (re-read when a concurrent commit replaced them)."""
    for attempt in range(3):
        snap = table.snapshot()
        if snap.version == 0:
            raise LakeError(
                f"no {layer} data for {name!r} in namespace {namespace!r} yet "
                f"(run: pipelines run {name} --date YYYY-MM-DD)"
            )
        wanted = sorted(snap.partitions)[-1:] if partitions == "newest" else partitions
        if day is not None and wanted is not None and day not in snap.partitions:
            raise LakeError(
                f"{name}: no {layer} partition {table.key}={day} "
                f"(have: {', '.join(sorted(snap.partitions)) or 'none'})"
            )
        try:
            return table.read(wanted, snap)
        except FileNotFoundError:  # a concurrent commit replaced them: read the new version
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _locate(project: Project, lake: Lake, name: str, layer: Layer, day: str | None):
    """The table and which partitions to read (None = all, "newest" = the latest one)."""
    if layer is Layer.AGGREGATED:
        if project.aggregate(name) is None:
            known = ", ".join(a.name for a in project.aggregates)
            raise PipelinesError(f"no aggregate named {name!r} in aggregates.yaml; known: {known}")
        return lake.table(layer, name), None
    dataset = project.dataset(name)
    if dataset is None:
        raise PipelinesError(
            f"no dataset named {name!r} in registry.csv; known: {', '.join(project.registry.names)}"
        )
    if layer is Layer.CLEANED:
        table = lake.table(layer, name, key=cleaned_key(dataset))
        if dataset.ingestion is Ingestion.FULL:
            return table, [day] if day else "newest"
        return table, None
    return lake.table(layer, name), [day] if day else None
