"""``pipelines validate --sources``: the columns the registry and aggregates.yaml name, against the
header of each dataset's source, and its first rows against the merge's rules, before any run.

A per-interval source (``{ds}``) is checked on one interval's file: the one of its start_date, else
the newest file of the pattern that exists (local sources); a glob source on the first file (by
name) of its start_date's files; which one is said. A column that is not
in the header is reported in the usual form, with the closest names the header has: a registry
column is an error; a column an aggregate reads is a warning while the dataset takes new columns
(``on_schema_change=append``: a later delivery may bring it, and the days before read it as null),
an error with ``fail``. A source whose first rows the merge would quarantine every one of is an
error (the run would fail its check), unless the dataset allows it (``max_quarantine_pct=100``).
A dataset's declared columns (``columns.yaml``) are checked too: the other files name a renamed
column by its clean name, and a declared column the file lacks is a warning (it reads null on
the days it is not delivered).

A source a run refuses is refused here in the run's words, through the run's own checks
(:mod:`pipelines.steps.sources`): a file of a local per-interval source, on any day, that resolves
outside include/ (a symlink out of it); a file whose first bytes are not text in its encoding;
first rows (of a file short enough to be read whole) that are not of its format.

A database source (``sql://``) is opened by running its statement for the start_date's interval
to return no row (:func:`.sql_extract.described`): the columns the database says are its header;
what the database refuses (a login, a table, a query) is one line naming the connection. Its first
rows are not sampled (the database types them: the run's check judges them).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.common.partitions import interval_for
from pipelines.exceptions import PipelinesError, Problem, SchemaDriftError
from pipelines.project.aggregates import AGGREGATES
from pipelines.project.columns import COLUMNS
from pipelines.project.config import Project
from pipelines.project.registry import Dataset, SchemaChange
from pipelines.project.sql_source import is_sql
from pipelines.runtime import databases, environment
from pipelines.runtime.secrets import redact
from pipelines.steps import merge, sources, sql_extract

HEAD_BYTES = 1 << 16  # enough for a header line and the first JSON Lines records
SAMPLE_ROWS = 1000  # the first rows of a source the merge's rules are tried on


@dataclass
class SourceCheck:
    """What ``validate --sources`` found: problems (errors), warnings, and the file it opened
    for each dataset (``(dataset, where)``)."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    opened: list[tuple[str, str]] = field(default_factory=list)


def check_sources(project: Project) -> SourceCheck:
    """Every column problem found, and which source file was opened for each dataset."""
    found = SourceCheck()
    for dataset in project.datasets:
        try:
            where, header = source_header(dataset)
        except PipelinesError as exc:
            found.problems.append(
                Problem(project.registry.path.name, dataset.line, "source", str(exc))
            )
            continue
        found.opened.append((dataset.name, shown(where)))
        found.warnings += _declared_columns(dataset, where, header)
        header = _as_named(dataset, header)
        found.problems += _registry_columns(project, dataset, where, header)
        later = dataset.on_schema_change is SchemaChange.APPEND
        aggregates = list(_aggregate_columns(project, dataset, where, header))
        (found.warnings if later else found.problems).extend(aggregates)
        found.problems += _quarantined_sample(project, dataset, where)
    return found


def shown(where: str) -> str:
    """A source location as a user finds it: under include/, relative to it."""
    if "://" in where:
        return redact(where)
    include = environment.include_dir().resolve()
    path = Path(where).resolve()
    return str(path.relative_to(include)) if include in path.parents else where


def source_header(dataset: Dataset) -> tuple[str, list[str]]:
    """(where, the column names) of one file of the dataset's source.

    :raises PipelinesError: the file cannot be read, or not as its format; a file a run refuses
        (outside include/, not text in its encoding) is refused in the run's words
    """
    if dataset.sql is not None:
        return _described(dataset)
    where = _one_file(dataset)
    try:
        return where, _columns(dataset, where)
    except FileNotFoundError:
        raise PipelinesError(f"{dataset.name}: no source file at {where}") from None
    except UnicodeDecodeError as exc:
        raise sources.unreadable(dataset, where, exc) from None
    except (OSError, ValueError, csv.Error) as exc:  # a folder, no access, not that format
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise PipelinesError(
            f"{dataset.name}: cannot read {where} as {dataset.format} ({reason})"
        ) from None


def _described(dataset: Dataset) -> tuple[str, list[str]]:
    """(the ``sql://`` name, the column names) of a database source: its statement for the
    start_date's interval, run to return no row (the database checks the connection, the login,
    the table or query and the incremental field's comparison).

    :raises PipelinesError: what the database (or a missing connection or query file) refused,
        in one line naming the dataset and the connection, never its password
    """
    assert dataset.sql is not None
    interval = interval_for(dataset.cron, dataset.start_date)
    try:
        columns = sql_extract.described(dataset, interval)
    except PipelinesError as exc:
        said = str(exc).removeprefix(f"{dataset.name}: ").removesuffix(databases.RETRIED)
        if repr(dataset.sql.conn_id) not in said:  # a query file's problem: say whose
            said += f" ({dataset.sql.shown()})"
        raise type(exc)(f"{dataset.name}: {said}") from None
    return dataset.sql.shown(), [c.name for c in columns]


def _named(where: str) -> str:
    """A source as a message names it: a database source by its ``sql://`` name, a file by its
    file name."""
    return where if is_sql(where) else Path(where).name


def _columns(dataset: Dataset, where: str) -> list[str]:
    if dataset.format == "parquet":
        import pyarrow.parquet as pq

        local = "://" not in where  # a local file's footer is read in place
        return list(pq.read_schema(where if local else io.BytesIO(sources.read_bytes(where))).names)
    data = sources.read_bytes(where, limit=HEAD_BYTES)
    head = sources.text(data, dataset.options, whole=len(data) < HEAD_BYTES)
    if dataset.format == "jsonl":
        return _json_keys(head)
    first = next((line for line in head.splitlines() if line.strip()), "")
    return [c.strip() for c in next(csv.reader([first], delimiter=dataset.options.delimiter), [])]


def _one_file(dataset: Dataset) -> str:
    """The start_date's file (a glob's first, by name), else the newest of a per-interval
    source's files. Each file of a local per-interval source is judged as a run judges it
    (:func:`sources.deliveries`), so one a run would refuse is refused here, whichever day it
    is."""
    interval = interval_for(dataset.cron, dataset.start_date)
    found = sources.files(dataset, interval)
    where = found[0] if found else sources.location(dataset, interval)
    if not dataset.per_interval_source or "://" in where:
        return where
    found = sources.deliveries(dataset)
    return where if Path(where).exists() or not found else found[-1]


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
            message = _missing(column.name, header, f"the source ({_named(where)})")
            yield Problem(
                COLUMNS,
                column.line,
                f"{dataset.name}.{column.name}",
                f"{message}; it reads null on the days it is not delivered",
            )


def _registry_columns(project: Project, dataset: Dataset, where: str, header: list[str]):
    named = {"primary_key": dataset.primary_key}
    named |= {c: (getattr(dataset, c),) for c in ("incremental_field", "partition_field")}
    file = project.registry.path.name
    for column, wanted in named.items():
        for name in filter(None, wanted):
            message = _missing(name, header, f"the source ({_named(where)})")
            if message:
                yield Problem(file, dataset.line, column, message)


def _aggregate_columns(project: Project, dataset: Dataset, where: str, header: list[str]):
    source = f"the source of dataset {dataset.name} ({_named(where)})"
    for spec in project.aggregates_of(dataset.name):
        for name in sorted(spec.columns):
            message = _missing(name, header, source)
            if message:
                yield Problem(AGGREGATES, None, spec.name, message)


def _quarantined_sample(project: Project, dataset: Dataset, where: str) -> list[Problem]:
    """An error when the merge would quarantine every one of the source's first rows."""
    if dataset.max_quarantine_pct == 100 or dataset.sql is not None:
        return []  # a database's rows come typed by it: the run's check judges them
    try:
        rows = _sample(dataset, where)
    except OSError:
        return []  # the header check said what it could not read
    except (ValueError, csv.Error) as exc:  # not its format: a run fails on it too
        problem = sources.unreadable(dataset, where, exc)
        return [Problem(project.registry.path.name, dataset.line, "source", str(problem))]
    if rows is None or rows.empty:
        return []
    rows["_row"] = range(len(rows))
    interval = interval_for(dataset.cron, dataset.start_date)
    try:
        winners, quarantined, _ = merge.prepare(dataset, rows, interval)
    except SchemaDriftError:
        return []  # a registry column the source lacks: said above
    if len(winners):
        return []
    first = quarantined.sort_values("_row", kind="stable")["_reason"].iloc[0]
    message = (
        f"{dataset.name}: every one of the first {len(rows)} rows of {Path(where).name} would be "
        f"quarantined (first reason: {first}); a run fails its check unless "
        "max_quarantine_pct=100"
    )
    return [Problem(project.registry.path.name, dataset.line, "source", message)]


def _sample(dataset: Dataset, where: str):
    """The source's first rows as the extract reads them (None: not read here: a Parquet file
    not on this machine, or the first rows of a text file too long to sample whole that do not
    parse: a quoted field may go on past the bytes read, so the run judges the file).

    :raises ValueError: the rows are not of the format: a run fails on them
    """
    if dataset.format == "parquet":
        if "://" in where:
            return None
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(where).iter_batches(batch_size=SAMPLE_ROWS), None)
        return batch.to_pandas() if batch is not None else None
    data = sources.read_bytes(where, limit=HEAD_BYTES)
    whole = len(data) < HEAD_BYTES
    if not whole:  # the last line may be cut short
        data = data[: data.rfind(b"\n") + 1]
    try:
        frame = sources.parse(data, dataset.format, dataset.options)
    except (ValueError, csv.Error):
        if whole:
            raise
        return None
    return frame.head(SAMPLE_ROWS).reset_index(drop=True)
