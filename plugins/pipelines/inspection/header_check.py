"""``pipelines validate --sources``: the columns the registry and aggregates.yaml name, against the
header of each dataset's source, before any run.

A per-interval source (``{ds}``) is checked on one interval's file: the one of its start_date, else
the newest file of the pattern that exists (local sources). A column that is not in the header is
reported in the usual form, with the closest names the header has. A dataset's declared columns
(``columns.yaml``) are checked too: the other files name a renamed column by its clean name, and
a declared column the file lacks is a warning (it reads null on the days it is not delivered).
"""

from __future__ import annotations

import csv
import difflib
import glob
import io
import json
from pathlib import Path

from pipelines.common.partitions import interval_for, source_pattern
from pipelines.exceptions import PipelinesError, Problem
from pipelines.project.aggregates import AGGREGATES
from pipelines.project.columns import COLUMNS
from pipelines.project.config import Project
from pipelines.project.registry import Dataset
from pipelines.steps import sources

HEAD_BYTES = 1 << 16  # enough for a header line and the first JSON Lines records


def check_sources(project: Project) -> tuple[list[Problem], int]:
    """Every column problem found, and how many sources were opened."""
    problems: list[Problem] = []
    opened = 0
    for dataset in project.datasets:
        try:
            where, header = source_header(dataset)
        except PipelinesError as exc:
            problems.append(Problem(project.registry.path.name, dataset.line, "source", str(exc)))
            continue
        opened += 1
        problems += _declared_columns(dataset, where, header)
        header = _as_named(dataset, header)
        problems += _registry_columns(project, dataset, where, header)
        problems += _aggregate_columns(project, dataset, header)
    return problems, opened


def source_header(dataset: Dataset) -> tuple[str, list[str]]:
    """(where, the column names) of one file of the dataset's source."""
    where = _one_file(dataset)
    try:
        return where, _columns(dataset, where)
    except FileNotFoundError:
        raise PipelinesError(f"{dataset.name}: no source file at {where}") from None
    except (OSError, ValueError, csv.Error) as exc:  # a folder, no access, not that format
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise PipelinesError(
            f"{dataset.name}: cannot read {where} as {dataset.format} ({reason})"
        ) from None


def _columns(dataset: Dataset, where: str) -> list[str]:
    if dataset.format == "parquet":
        import pyarrow.parquet as pq

        local = "://" not in where  # a local file's footer is read in place
        return list(pq.read_schema(where if local else io.BytesIO(sources.read_bytes(where))).names)
    head = sources.read_bytes(where, limit=HEAD_BYTES).decode(dataset.options.encoding, "replace")
    if dataset.format == "jsonl":
        return _json_keys(head)
    first = next((line for line in head.splitlines() if line.strip()), "")
    return [c.strip() for c in next(csv.reader([first], delimiter=dataset.options.delimiter), [])]


def _one_file(dataset: Dataset) -> str:
    where = sources.location(dataset, interval_for(dataset.cron, dataset.start_date))
    if not dataset.per_interval_source or "://" in where or Path(where).exists():
        return where
    found = sorted(glob.glob(sources.resolve(dataset, source_pattern(dataset.source))))
    return found[-1] if found else where


def _json_keys(head: str) -> list[str]:
    keys: dict[str, None] = {}
    for line in head.splitlines()[:-1] or head.splitlines():  # the last may be cut short
        if line.strip():
            try:
                keys.update(dict.fromkeys(json.loads(line)))
            except (ValueError, TypeError):
                continue
    return list(keys)


def _missing(wanted: str, header: list[str], source: str) -> str | None:
    if wanted in header:
        return None
    close = difflib.get_close_matches(wanted, header, n=2, cutoff=0.6)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f"column {wanted!r} is not in {source}{hint} (columns: {', '.join(header)})"


def _as_named(dataset: Dataset, header: list[str]) -> list[str]:
    """The source's columns by the names the other files use: each declared ``rename`` applied."""
    renames = dataset.declared.renames if dataset.declared is not None else {}
    return [renames.get(column, column) for column in header]


def _declared_columns(dataset: Dataset, where: str, header: list[str]):
    """A warning for each column ``columns.yaml`` declares that the source's file lacks."""
    if dataset.declared is None:
        return
    for column in dataset.declared.columns:
        if column.name not in header:
            message = _missing(column.name, header, f"the source ({Path(where).name})")
            yield Problem(
                COLUMNS,
                column.line,
                f"{dataset.name}.{column.name}",
                f"{message}; it reads null on the days it is not delivered",
                warning=True,
            )


def _registry_columns(project: Project, dataset: Dataset, where: str, header: list[str]):
    named = {"primary_key": dataset.primary_key}
    named |= {c: (getattr(dataset, c),) for c in ("incremental_field", "partition_field")}
    file = project.registry.path.name
    for column, wanted in named.items():
        for name in filter(None, wanted):
            message = _missing(name, header, f"the source ({Path(where).name})")
            if message:
                yield Problem(file, dataset.line, column, message)


def _aggregate_columns(project: Project, dataset: Dataset, header: list[str]):
    for spec in project.aggregates_of(dataset.name):
        for name in sorted(spec.columns):
            message = _missing(name, header, f"the source of dataset {dataset.name}")
            if message:
                yield Problem(AGGREGATES, None, spec.name, message)
