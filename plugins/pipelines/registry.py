"""registry.csv -> frozen, validated :class:`Dataset` rows. The only reader of registry.csv.

Every problem is collected as a :class:`~pipelines.exceptions.Problem` naming the physical line and
the column, so one bad row never hides the others: :func:`load_registry` returns the good rows and
the problems; ``strict=True`` raises :class:`~pipelines.exceptions.RegistryError` instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from pipelines.exceptions import Problem, RegistryError

FILE = "registry.csv"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
COLUMN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
PLACEHOLDERS = ("{ds}", "{ds_nodash}")
FORMATS = {"csv": "csv", "parquet": "parquet", "pq": "parquet", "jsonl": "jsonl", "ndjson": "jsonl"}
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
SECRET_QUERY_KEYS = {
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "key",
    "access_key",
    "secret_key",
    "aws_secret_access_key",
    "aws_access_key_id",
    "sig",
    "signature",
}


class Ingestion(enum.StrEnum):
    """How a source is read for one interval (SQLMesh-style kind)."""

    INCREMENTAL = "incremental"
    FULL = "full"


class SchemaChange(enum.StrEnum):
    """What a run does when the source's columns differ from the cleaned table's."""

    APPEND = "append"
    FAIL = "fail"


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
    on_schema_change: SchemaChange = SchemaChange.APPEND
    line: int = 0
    row: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def per_interval_source(self) -> bool:
        """True when the source names one delivery per interval (``{ds}`` in it)."""
        return any(p in self.source for p in PLACEHOLDERS)


@dataclass(frozen=True)
class Registry:
    """The good rows of a registry file, in file order, and what was wrong with the rest."""

    datasets: tuple[Dataset, ...]
    problems: tuple[Problem, ...]
    path: Path

    def get(self, name: str) -> Dataset | None:
        return next((d for d in self.datasets if d.name == name), None)

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
    "on_schema_change": False,
}
HEADER_REQUIRED = [c for c, req in COLUMNS.items() if req is True]


def load_registry(path: str | os.PathLike | None = None, *, strict: bool = False) -> Registry:
    """Read and validate a registry file.

    :param path: the CSV file; default ``{home}/include/registry.csv``
    :param strict: raise :class:`RegistryError` on any problem instead of skipping bad rows
    """
    if path is None:
        from pipelines.components.environment import include_dir

        path = include_dir() / FILE
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        problem = Problem(path.name, 1, "file", f"cannot read {path}: {exc.strerror}")
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
    if records:
        header_line, header = records[0]
        columns = _check_header(header, header_line, file, problems)
        if columns is not None:
            datasets = _rows(records[1:], columns, file, problems)
    elif text is not None and not problems:
        problems.append(Problem(file, 1, "header", "file is empty: a header row is required"))
    return Registry(tuple(datasets), tuple(problems), path or Path(file))


def _decode(raw: bytes | str, file: str, problems: list[Problem]) -> str | None:
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(file, line, "encoding", "not valid UTF-8"))
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
            problems.append(Problem(file, line, col, "column appears twice in the header"))
            ok = False
        seen.add(col)
    for col in HEADER_REQUIRED:
        if col not in seen:
            problems.append(Problem(file, line, col, "required column missing from the header"))
            ok = False
    return columns if ok else None


def _rows(records, columns, file, problems) -> list[Dataset]:
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
        report = _Reporter(file, line, row_problems)
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
    return datasets


def _unknown_values(values: dict[str, str], report: _Reporter) -> dict[str, str]:
    """The values of known columns; a value given in an unknown column is a problem of the row."""
    for col, value in values.items():
        if col not in COLUMNS and value:
            report(col or "(empty)", "value in a column registry.csv does not know (see header)")
    return {c: v for c, v in values.items() if c in COLUMNS}


@dataclass
class _Reporter:
    file: str
    line: int
    problems: list[Problem]

    def __call__(self, column: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.line, column, message))


def _build(values: dict[str, str], line: int, report: _Reporter) -> Dataset | None:
    """Validate one row; report every problem; return the Dataset when there was none."""
    for col, req in COLUMNS.items():
        if req is True and not values.get(col):
            report(col, "required value is empty")
    for col, value in values.items():
        if "\x00" in value:
            report(col, "contains a NUL character")
    ingestion = _enum(Ingestion, values.get("ingestion", ""), "ingestion", report)
    name = _dataset_name(values.get("dataset", ""), report)
    source = _source(values.get("source", ""), report)
    fmt = _format(values.get("format", ""), source, report)
    pk = _columns(values.get("primary_key", ""), "primary_key", report)
    inc = _field(values, "incremental_field", ingestion, report)
    part = _field(values, "partition_field", ingestion, report)
    cron = _schedule(values.get("schedule", "") or "@daily", report)
    start = _start_date(values.get("start_date", ""), report)
    mar = _int(values.get("max_active_runs", ""), "max_active_runs", 1, report)
    drop = _pct(values.get("max_drop_pct", ""), report)
    osc = _enum(
        SchemaChange, values.get("on_schema_change", "") or "append", "on_schema_change", report
    )
    tags = tuple(t.strip() for t in values.get("tags", "").split("|") if t.strip())
    if any(len(t) > 100 for t in tags):
        report("tags", "a tag is longer than 100 characters")
    if report.problems:
        return None
    return Dataset(
        name=name,
        source=source,
        format=fmt,
        primary_key=pk,
        incremental_field=inc,
        partition_field=part,
        ingestion=ingestion,
        schedule=values.get("schedule") or "@daily",
        cron=cron,
        start_date=start,
        max_active_runs=mar,
        owner=values.get("owner") or "pipelines",
        description=values.get("description", ""),
        tags=tags,
        max_drop_pct=drop,
        on_schema_change=osc,
        line=line,
        row=dict(values),
    )


def _enum(kind, value: str, column: str, report: _Reporter):
    try:
        return kind(value.strip().lower())
    except ValueError:
        if value:
            choices = ", ".join(sorted(m.value for m in kind))
            report(column, f"{value!r} is not one of: {choices}")
        return None


def _dataset_name(value: str, report: _Reporter) -> str:
    if value and not NAME_RE.match(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        report(
            "dataset",
            f"{shown!r} must match {NAME_RE.pattern} "
            "(lowercase letter, then lowercase letters, digits or _, at most 63)",
        )
    return value


def _source(value: str, report: _Reporter) -> str:
    if not value:
        return value
    parts = urlsplit(value) if "://" in value else None
    if parts is not None:
        if parts.scheme not in ("file", "s3"):
            report(
                "source", f"scheme {parts.scheme!r} is not supported; use a path, file:// or s3://"
            )
        if parts.username or parts.password or "@" in parts.netloc:
            report(
                "source",
                "credentials must not be written in the URI; put them in an Airflow "
                "connection (PIPELINES_LAKE_CONN_ID / aws connection) instead",
            )
        elif any(k.lower() in SECRET_QUERY_KEYS for k, _ in parse_qsl(parts.query)):
            report("source", "the URI query carries a secret; use an Airflow connection instead")
    elif Path(value).is_absolute():
        report(
            "source",
            "absolute paths are not allowed; use a path relative to include/ or a file:// URI",
        )
    elif ".." in Path(value).parts:
        report("source", "relative source must stay inside include/ (no '..')")
    stripped = value
    for ph in PLACEHOLDERS:
        stripped = stripped.replace(ph, "")
    if "{" in stripped or "}" in stripped:
        report("source", "only the placeholders {ds} and {ds_nodash} are allowed")
    return value


def _format(value: str, source: str, report: _Reporter) -> str:
    if value:
        if value.lower() not in ("csv", "parquet", "jsonl"):
            report("format", f"{value!r} is not one of: csv, jsonl, parquet")
        return value.lower()
    name = (urlsplit(source).path if "://" in source else source).rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if source and ext not in FORMATS:
        from pipelines.components.secrets import redact

        report(
            "format",
            f"cannot tell the format from {redact(source)!r}; set format to csv, jsonl or parquet",
        )
    return FORMATS.get(ext, "")


def _columns(value: str, column: str, report: _Reporter) -> tuple[str, ...]:
    cols = tuple(c.strip() for c in value.split("|")) if value else ()
    for col in cols:
        if not COLUMN_RE.match(col):
            report(
                column,
                f"{col!r} is not a valid column name (letters, digits, _; "
                "must start with a letter)",
            )
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        report(column, f"column {', '.join(map(repr, dupes))} listed twice")
    return cols


def _field(values, column, ingestion, report) -> str | None:
    value = values.get(column, "")
    if not value:
        if ingestion is Ingestion.INCREMENTAL:
            report(column, "required when ingestion is incremental")
        return None
    _columns(value, column, report)
    if "|" in value:
        report(column, "takes one column")
    return value


def _schedule(value: str, report: _Reporter) -> str:
    cron, problem = check_schedule(value)
    if problem:
        report("schedule", problem)
    return cron


@lru_cache(maxsize=256)
def check_schedule(value: str) -> tuple[str, str | None]:
    """(cron, None) for a valid schedule, ("", why) otherwise. Cached: a registry of 1,000 rows
    has a handful of distinct schedules, and checking one walks its next 60 points."""
    from croniter import croniter

    from pipelines.partitions import shortest_gap

    if value.startswith("@") and value not in PRESETS:
        return (
            "",
            f"{value!r} is not a preset; use one of: {', '.join(PRESETS)} or a cron expression",
        )
    cron = PRESETS.get(value, value)
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        return "", f"{value!r} is not a valid 5-field cron expression or preset"
    if shortest_gap(cron) < dt.timedelta(days=1):
        return "", (
            f"{cron!r} runs more than once a day; partitions are keyed by day "
            "(ds=YYYY-MM-DD), so use a daily or longer schedule"
        )
    return cron, None


def _start_date(value: str, report: _Reporter) -> dt.date | None:
    if not value:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        date = dt.date.fromisoformat(value)
    except ValueError:
        report("start_date", f"{value!r} is not a date in the form YYYY-MM-DD")
        return None
    if date > dt.datetime.now(dt.UTC).date():
        report("start_date", f"{value} is in the future")
    return date


def _int(value: str, column: str, default: int, report: _Reporter) -> int:
    if not value:
        return default
    if not value.isdigit() or int(value) < 1 or int(value) > 1000:
        report(column, f"{value!r} must be a whole number from 1 to 1000")
        return default
    return int(value)


def _pct(value: str, report: _Reporter) -> float:
    if not value:
        return 50.0
    try:
        pct = float(value)
    except ValueError:
        pct = -1.0
    if not 0 <= pct <= 100:
        report("max_drop_pct", f"{value!r} must be a number from 0 to 100")
        return 50.0
    return pct
