"""registry.csv -> frozen, validated :class:`Dataset` rows. The only reader of registry.csv.

Every problem is collected as a :class:`~pipelines.exceptions.Problem` naming the physical line and
the column, so one bad row never hides the others: :func:`load_registry` returns the good rows and
the problems; ``strict=True`` raises :class:`~pipelines.exceptions.RegistryError` instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from pipelines.exceptions import Problem, RegistryError
from pipelines.project import sql_source
from pipelines.project.columns import Declaration
from pipelines.project.registry_values import (  # noqa: F401 - re-exported: the registry's contract
    COLUMN_RE,
    COLUMN_RULE,
    NAME_RE,
    PLACEHOLDERS,
    PRESETS,
    Ingestion,
    Reporter,
    SchemaChange,
    SourceOptions,
    check_schedule,
    columns_value,
    dataset_name,
    duration_value,
    enum_value,
    field_value,
    format_value,
    int_value,
    options_value,
    pct_value,
    schedule_value,
    source_value,
    start_date_value,
    tags_value,
)

FILE = "registry.csv"


@dataclass(frozen=True)
class Dataset:
    """One valid registry row. Built only by :func:`load_registry`, so always valid."""

    name: str
    source: str
    format: str
    primary_key: tuple[str, ...]
    incremental_field: str | None
    partition_field: str | None
    ingestion: Ingestion
    schedule: str
    cron: str
    start_date: dt.date
    max_active_runs: int = 1
    owner: str = "pipelines"
    description: str = ""
    tags: tuple[str, ...] = ()
    max_drop_pct: float = 50.0
    max_quarantine_pct: float | None = None  # None: no limit
    on_schema_change: SchemaChange = SchemaChange.APPEND
    options: SourceOptions = SourceOptions()
    freshness: dt.timedelta | None = None  # allowed lateness after the interval ends; None: none
    declared: Declaration | None = None  # its entry in columns.yaml (None: nothing declared)
    line: int = 0
    row: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @cached_property
    def sql(self) -> sql_source.SqlSource | None:
        """The database table or query the source names (None: the source is files)."""
        return sql_source.parse(self.source)[0] if sql_source.is_sql(self.source) else None

    @property
    def per_interval_source(self) -> bool:
        """True when the source names one delivery per interval (``{ds}`` in it)."""
        return any(p in self.source for p in PLACEHOLDERS)

    @property
    def filtered_source(self) -> bool:
        """True when one source holds every interval's rows, each interval filtered out of it
        (a single incremental source)."""
        return self.ingestion.filters_by_interval and not self.per_interval_source


@dataclass(frozen=True)
class Registry:
    """The good rows of a registry file, in file order, and what was wrong with the rest
    (``invalid``: the problems of each skipped row, by the dataset name it gave)."""

    datasets: tuple[Dataset, ...]
    problems: tuple[Problem, ...]
    path: Path
    invalid: dict[str, tuple[Problem, ...]] = field(default_factory=dict, compare=False)

    def get(self, name: str) -> Dataset | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, Dataset]:
        """Names are unique (a second row of a name is invalid): one lookup per aggregate and
        per DAG, not a scan of the registry each (quadratic at 5,000 rows)."""
        return {d.name: d for d in self.datasets}

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.datasets]


COLUMNS = {
    # column: required (True, False, or "incremental" = required for incremental rows)
    "dataset": True,
    "source": True,
    "format": False,
    "primary_key": True,
    "incremental_field": "incremental",
    "partition_field": "incremental",
    "ingestion": True,
    "schedule": False,
    "start_date": True,
    "max_active_runs": False,
    "owner": False,
    "description": False,
    "tags": False,
    "max_drop_pct": False,
    "max_quarantine_pct": False,
    "on_schema_change": False,
    "options": False,
    "freshness": False,
}
HEADER_REQUIRED = [c for c, req in COLUMNS.items() if req is True]
# the registry's check of a run, named first in a failed outcome ("max_drop_pct: ...") as the
# declared table tests are: a full snapshot that shrank too far against the one before it
SHRINK_CHECK = "max_drop_pct"


def load_registry(path: str | os.PathLike | None = None, *, strict: bool = False) -> Registry:
    """Read and validate a registry file.

    :param path: the CSV file; default ``{home}/include/registry.csv``
    :param strict: raise :class:`RegistryError` on any problem instead of skipping bad rows
    """
    if path is None:
        from pipelines.runtime.environment import include_dir

        path = include_dir() / FILE
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        problem = Problem(path.name, 1, "file", f"cannot read {path}: {exc.strerror}", True)
        registry = Registry((), (problem,), path)
    else:
        registry = _load_cached(str(path), stat.st_mtime_ns, stat.st_size)
    if strict and registry.problems:
        raise RegistryError(list(registry.problems))
    return registry


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> Registry:
    """Parse once per file version: DAG files are parsed every few seconds."""
    raw = Path(path).read_bytes()
    return parse_registry(raw, file=Path(path).name, path=Path(path))


def parse_registry(raw: bytes | str, *, file: str = FILE, path: Path | None = None) -> Registry:
    """Parse registry text; never raises for content problems."""
    problems: list[Problem] = []
    text = _decode(raw, file, problems)
    records = _records(text, file, problems) if text is not None else []
    datasets: list[Dataset] = []
    invalid: dict[str, list[Problem]] = {}
    if records:
        header_line, header = records[0]
        columns = _check_header(header, header_line, file, problems)
        if columns is not None:
            datasets = _rows(records[1:], columns, file, problems, invalid)
    elif text is not None and not problems:
        problems.append(Problem(file, 1, "header", "file is empty: a header row is required", True))
    skipped = {name: tuple(found) for name, found in invalid.items()}
    return Registry(tuple(datasets), tuple(problems), path or Path(file), skipped)


def _decode(raw: bytes | str, file: str, problems: list[Problem]) -> str | None:
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(file, line, "encoding", "not valid UTF-8", True))
        return None


def _records(text: str, file: str, problems: list[Problem]) -> list[tuple[int, list[str]]]:
    """CSV records with the physical line each starts on; skips blank and ``#`` lines.

    A malformed record (unclosed or stray quote) is reported and reading resumes on the next
    physical line, so it hides no other row.
    """
    lines = io.StringIO(text, newline="").readlines()  # the lines csv counts in line_num
    records: list[tuple[int, list[str]]] = []
    offset: int | None = 0
    while offset is not None:
        offset = _read_from(lines, offset, file, records, problems)
    return records


def _read_from(
    lines: list[str], offset: int, file: str, records: list, problems: list
) -> int | None:
    """Append the records from physical line ``offset + 1`` on; where to resume after an error."""
    reader = csv.reader(lines[offset:], strict=True)
    next_line = offset + 1
    while True:
        start = next_line
        try:
            record = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            problems.append(Problem(file, start, "csv", f"malformed CSV: {exc}"))
            return start
        next_line = offset + reader.line_num + 1
        if any(cell.strip() for cell in record) and not record[0].lstrip().startswith("#"):
            records.append((start, record))


def _check_header(
    header: list[str], line: int, file: str, problems: list[Problem]
) -> list[str] | None:
    """The header's columns; None when no row can be read (a column missing or twice).

    An unknown column is reported but does not hide the rows: only a row that gives it a value
    is skipped (see :func:`_unknown_values`).
    """
    columns = [h.strip() for h in header]
    ok = True
    seen: set[str] = set()
    for col in columns:
        if col not in COLUMNS:
            known = ", ".join(COLUMNS)
            problems.append(
                Problem(file, line, col or "(empty)", f"unknown column; known: {known}")
            )
        elif col in seen:
            problems.append(Problem(file, line, col, "column appears twice in the header", True))
            ok = False
        seen.add(col)
    for col in HEADER_REQUIRED:
        if col not in seen:
            problems.append(
                Problem(file, line, col, "required column missing from the header", True)
            )
            ok = False
    return columns if ok else None


def _rows(records, columns, file, problems, invalid: dict[str, list[Problem]]) -> list[Dataset]:
    datasets: list[Dataset] = []
    seen: dict[str, tuple[int, str]] = {}
    for line, record in records:
        if len(record) != len(columns):
            problems.append(
                Problem(file, line, "row", f"has {len(record)} fields, header has {len(columns)}")
            )
            continue
        values = {c: v.strip() for c, v in zip(columns, record, strict=True)}
        row_problems: list[Problem] = []
        report = Reporter(file, line, row_problems)
        values = _unknown_values(values, report)
        dataset = _build(values, line, report)
        name = values.get("dataset", "")
        folded = name.casefold()
        first, first_name = seen.get(folded, (0, name))
        if first and (dataset is not None or name != first_name):  # also 'Orders' vs 'orders'
            same = "" if name == first_name else f" (same as {first_name!r} ignoring case)"
            report("dataset", f"duplicate dataset {name!r}{same} (first on line {first})")
        if name and not first:
            seen[folded] = (line, name)
        problems.extend(row_problems)
        if dataset is not None and not row_problems:
            datasets.append(dataset)
        elif name:
            invalid.setdefault(name, []).extend(row_problems)
    return datasets


def _unknown_values(values: dict[str, str], report: Reporter) -> dict[str, str]:
    """The values of known columns; a value given in an unknown column is a problem of the row."""
    for col, value in values.items():
        if col not in COLUMNS and value:
            report(col or "(empty)", "value in a column registry.csv does not know (see header)")
    return {c: v for c, v in values.items() if c in COLUMNS}


def _build(values: dict[str, str], line: int, report: Reporter) -> Dataset | None:
    """Validate one row; report every problem; return the Dataset when there was none."""
    for col, req in COLUMNS.items():
        if req is True and not values.get(col):
            report(col, "required value is empty")
    for col, value in values.items():
        if "\x00" in value:
            report(col, "contains a NUL character")
    ingestion = enum_value(Ingestion, values.get("ingestion", ""), "ingestion", report)
    source = source_value(values.get("source", ""), report)
    get = values.get
    checked = {
        "name": dataset_name(get("dataset", ""), report),
        "source": source,
        "format": format_value(get("format", ""), source, report),
        "primary_key": columns_value(get("primary_key", ""), "primary_key", report),
        "incremental_field": field_value(values, "incremental_field", ingestion, report),
        "partition_field": field_value(values, "partition_field", ingestion, report),
        "ingestion": ingestion,
        "schedule": get("schedule") or "@daily",
        "cron": schedule_value(get("schedule", "") or "@daily", report),
        "start_date": start_date_value(get("start_date", ""), report),
        "max_active_runs": int_value(get("max_active_runs", ""), "max_active_runs", 1, report),
        "owner": get("owner") or "pipelines",
        "description": get("description", ""),
        "tags": tags_value(get("tags", ""), report),
        "max_drop_pct": pct_value(get("max_drop_pct", ""), "max_drop_pct", 50.0, report),
        "max_quarantine_pct": pct_value(
            get("max_quarantine_pct", ""), "max_quarantine_pct", None, report
        ),
        "on_schema_change": enum_value(
            SchemaChange, get("on_schema_change", "") or "append", "on_schema_change", report
        ),
        "options": options_value(get("options", ""), report),
        "freshness": duration_value(get("freshness", ""), "freshness", report),
    }
    if sql_source.is_sql(source):
        _sql_columns(checked, report)
        if get("options", "").strip():
            report(
                "options",
                "a database source takes no options (delimiter, encoding, null and epoch read "
                "files): the database types its columns",
            )
    if report.problems:
        return None
    return Dataset(**checked, line=line, row=dict(values))


def _sql_columns(checked: dict, report: Reporter) -> None:
    """The columns a database source's row names go into its statements (quoted): each must be
    a plain identifier, whatever the quoting would make of it (a name that is no column name at
    all is reported once, by :func:`columns_value`)."""
    named = {
        "primary_key": checked["primary_key"],
        "incremental_field": (checked["incremental_field"],),
        "partition_field": (checked["partition_field"],),
    }
    for column, names in named.items():
        for name in filter(None, names):
            if not COLUMN_RE.fullmatch(name):
                continue
            problem = sql_source.column_problem(name)
            if problem:
                report(column, problem)
