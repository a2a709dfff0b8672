"""How each value of a registry row is checked: names, sources, formats, keys, schedules, dates.

Every checker reports through a :class:`Reporter` (file, line, column) and returns the parsed value,
so :mod:`pipelines.project.registry` can collect all the problems of a row at once.
"""

from __future__ import annotations

import codecs
import datetime as dt
import enum
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pipelines.common.partitions import DAILY, Ingestion, date_problem, shortest_gap
from pipelines.exceptions import Problem
from pipelines.project import sql_source
from pipelines.runtime.secrets import has_user_info, redact, secret_query_keys

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# a column as real files name them: letters (any script), digits, spaces and a little punctuation;
# never a separator (|), quote, semicolon or template/shell character
COLUMN_RE = re.compile(r"^[^\W\d_][\w .()\[\]/%#&+-]{0,127}$")
COLUMN_RULE = "letters, digits, spaces, _ . - ( ) [ ] / % # & +; must start with a letter"
PLACEHOLDERS = ("{ds}", "{ds_nodash}")
GLOB_CHARS = "*?["  # in a source's path: many files per interval (every match is read)
QUERY_RE = re.compile(r"\?[A-Za-z_][\w.-]*=")  # "?versionId=3" starts a URI's query, not a glob
FORMATS = {"csv": "csv", "parquet": "parquet", "pq": "parquet", "jsonl": "jsonl", "ndjson": "jsonl"}
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": DAILY,
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


@dataclass(frozen=True)
class SourceOptions:
    """How a dataset's source files are read: the registry's ``options`` column, for example
    ``delimiter=;|encoding=latin-1|null=NA,n/a|epoch=ms``.

    :param delimiter: CSV field separator (``tab`` and ``pipe`` name those two)
    :param encoding: text encoding of CSV and JSON Lines files
    :param nulls: values read as null besides the empty one
    :param epoch: the unit of numbers in the incremental and partition fields (since 1970 UTC)
    """

    delimiter: str = ","
    encoding: str = "utf-8-sig"
    nulls: tuple[str, ...] = ()
    epoch: str = "s"


OPTION_NAMES = {"tab": "\t", "pipe": "|"}  # separators that cannot be written in the column
EPOCH_UNITS = ("s", "ms", "us", "ns")


class SchemaChange(enum.StrEnum):
    """What a run does when the source's columns differ from the cleaned table's."""

    APPEND = "append"
    FAIL = "fail"


@dataclass
class Reporter:
    """Collects the problems of one physical line."""

    file: str
    line: int
    problems: list[Problem]

    def __call__(self, column: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.line, column, message))


def enum_value(kind, value: str, column: str, report: Reporter):
    try:
        return kind(value.strip().lower())
    except ValueError:
        if value:
            choices = ", ".join(sorted(m.value for m in kind))
            report(column, f"{value!r} is not one of: {choices}")
        return None


def dataset_name(value: str, report: Reporter) -> str:
    if value and not NAME_RE.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        report(
            "dataset",
            f"{shown!r} must match {NAME_RE.pattern} "
            "(lowercase letter, then lowercase letters, digits or _, at most 63)",
        )
    return value


def source_value(value: str, report: Reporter) -> str:
    """A path under include/ or a file:// or s3:// URI, with no credential in it: no user info,
    and no query key :func:`~pipelines.runtime.secrets.redact` would hide (as written or
    URL-encoded); the message names the key, never its value."""
    if not value or _sql_source(value, report):
        return value
    parts = urlsplit(value) if "://" in value else None
    if parts is not None and parts.scheme not in ("file", "s3"):
        report(
            "source",
            f"scheme {parts.scheme!r} is not supported; use a path, file://, s3:// or "
            "sql://CONN_ID/schema.table",
        )
    elif parts is None and Path(value).is_absolute():
        report(
            "source",
            "absolute paths are not allowed; use a path relative to include/ or a file:// URI",
        )
    elif parts is None and ".." in Path(value).parts:
        report("source", "relative source must stay inside include/ (no '..')")
    keys = secret_query_keys(value)
    if has_user_info(value):
        report(
            "source",
            "credentials must not be written in the URI; put them in an Airflow "
            "connection (PIPELINES_LAKE_CONN_ID / aws connection) instead",
        )
    elif keys:
        names = ("key " if len(keys) == 1 else "keys ") + ", ".join(map(repr, keys))
        report(
            "source",
            f"the URI query carries a secret; use an Airflow connection instead ({names})",
        )
    stripped = value
    for ph in PLACEHOLDERS:
        stripped = stripped.replace(ph, "")
    if "{" in stripped or "}" in stripped:
        report("source", "only the placeholders {ds} and {ds_nodash} are allowed")
    if is_glob(value):
        _glob_value(value, parts, report)
    return value


def _sql_source(value: str, report: Reporter) -> bool:
    """Whether ``value`` is a database source (``sql://``); what is wrong with it reported."""
    if not sql_source.is_sql(value):
        return False
    problem = sql_source.parse(value)[1]
    if problem:
        report("source", problem)
    return True


def is_glob(source: str) -> bool:
    """Whether a source names many files: ``*``, ``?`` or ``[...]`` in its path (a ``?`` that
    starts a query, ``?name=``, is not one)."""
    path = QUERY_RE.split(source, maxsplit=1)[0]
    return any(c in path for c in GLOB_CHARS)


def _glob_value(value: str, parts, report: Reporter) -> None:
    """A glob matches within one folder level, locally as on S3, under a named bucket."""
    if "**" in value:
        report(
            "source", "'**' is not supported: a glob matches within one folder; write * for each"
        )
    if parts is not None and parts.scheme == "s3" and any(c in parts.netloc for c in GLOB_CHARS):
        report("source", "an s3:// glob must name its bucket; only the key may hold * ? [...]")


def format_value(value: str, source: str, report: Reporter) -> str:
    if sql_source.is_sql(source):
        if value and value.lower() != sql_source.FORMAT:
            report("format", f"a database source (sql://) is read as sql, not {value!r}")
        return sql_source.FORMAT
    if value:
        if value.lower() not in ("csv", "parquet", "jsonl"):
            report("format", f"{value!r} is not one of: csv, jsonl, parquet")
        return value.lower()
    if is_glob(source):  # its ? is a wildcard, not a URI's query
        path = QUERY_RE.split(source, maxsplit=1)[0]
    else:
        path = urlsplit(source).path if "://" in source else source
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if source and ext not in FORMATS:
        report(
            "format",
            f"cannot tell the format from {redact(source)!r}; set format to csv, jsonl or parquet",
        )
    return FORMATS.get(ext, "")


def options_value(value: str, report: Reporter) -> SourceOptions:
    """``key=value`` pairs separated by ``|``: delimiter, encoding, null, epoch."""
    found: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split("|"))):
        key, sep, text = (x.strip() for x in part.partition("="))
        if not sep or key not in ("delimiter", "encoding", "null", "epoch"):
            report("options", f"{part!r} is not one of delimiter=, encoding=, null=, epoch=")
        elif key in found:
            report("options", f"{key} is given twice")
        else:
            found[key] = text
    delimiter = OPTION_NAMES.get(found.get("delimiter", ","), found.get("delimiter", ","))
    if len(delimiter) != 1 or delimiter in '\r\n"':
        report("options", f"delimiter {delimiter!r} must be one character (or tab, pipe)")
    encoding = found.get("encoding", "utf-8-sig")
    try:
        codecs.lookup(encoding)
    except LookupError:
        report("options", f"encoding {encoding!r} is not a text encoding Python knows")
    epoch = found.get("epoch", "s")
    if epoch not in EPOCH_UNITS:
        report("options", f"epoch {epoch!r} is not one of: {', '.join(EPOCH_UNITS)}")
    nulls = tuple(n.strip() for n in found.get("null", "").split(",") if n.strip())
    return SourceOptions(delimiter, encoding, nulls, epoch)


def columns_value(value: str, column: str, report: Reporter) -> tuple[str, ...]:
    cols = tuple(c.strip() for c in value.split("|")) if value else ()
    for col in cols:
        if not COLUMN_RE.fullmatch(col) or col != col.strip():
            report(column, f"{col!r} is not a valid column name ({COLUMN_RULE})")
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        report(column, f"column {', '.join(map(repr, dupes))} listed twice")
    return cols


def field_value(values, column, ingestion: Ingestion | None, report) -> str | None:
    value = values.get(column, "")
    if not value:
        if ingestion is not None and ingestion.needs_date_fields:
            report(column, "required when ingestion is incremental")
        return None
    columns_value(value, column, report)
    if "|" in value:
        report(column, "takes one column")
    return value


def schedule_value(value: str, report: Reporter) -> str:
    cron, problem = check_schedule(value)
    if problem:
        report("schedule", problem)
    return cron


@lru_cache(maxsize=256)
def check_schedule(value: str, *, writes_partitions: bool = True) -> tuple[str, str | None]:
    """(cron, None) for a valid schedule, ("", why) otherwise: the one rule for every schedule.

    A schedule is a preset or a 5-field cron expression. What writes partitions (a dataset) must
    run daily or less often, since partitions are keyed by day; a cookbook writes none (its
    children map its logical date to their own interval), so any valid expression will do.
    Cached: a registry of 1,000 rows has a handful of distinct schedules, and checking one
    walks its next 60 points.
    """
    from croniter import croniter

    if value.startswith("@") and value not in PRESETS:
        return (
            "",
            f"{value!r} is not a preset; use one of: {', '.join(PRESETS)} or a cron expression",
        )
    cron = PRESETS.get(value, value)
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        return "", f"{value!r} is not a valid 5-field cron expression or preset"
    if writes_partitions and shortest_gap(cron) < dt.timedelta(days=1):
        return "", (
            f"{cron!r} runs more than once a day; partitions are keyed by day "
            "(ds=YYYY-MM-DD), so use a daily or longer schedule"
        )
    return cron, None


def start_date_value(value: str, report: Reporter) -> dt.date | None:
    if not value:
        return None
    problem = date_problem(value)
    if problem is not None:
        report("start_date", problem)
        return None
    date = dt.date.fromisoformat(value)
    if date > dt.datetime.now(dt.UTC).date():
        report("start_date", f"{value} is in the future")
    return date


def tags_value(value: str, report: Reporter) -> tuple[str, ...]:
    tags = tuple(t.strip() for t in value.split("|") if t.strip())
    if any(len(t) > 100 for t in tags):
        report("tags", "a tag is longer than 100 characters")
    return tags


def int_value(value: str, column: str, default: int, report: Reporter) -> int:
    if not value:
        return default
    if not value.isdigit() or int(value) < 1 or int(value) > 1000:
        report(column, f"{value!r} must be a whole number from 1 to 1000")
        return default
    return int(value)


DURATION_RE = re.compile(r"^\s*(\d{1,5})\s*(m|min|h|d)\s*$")
DURATION_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days"}


def duration_value(value: str, column: str, report: Reporter) -> dt.timedelta | None:
    """A duration such as ``30m``, ``2h`` or ``1d`` (``None`` when empty: no allowance)."""
    if not value:
        return None
    match = DURATION_RE.fullmatch(value)
    if not match or int(match[1]) == 0:
        report(column, f"{value!r} must be a duration such as 30m, 2h or 1d")
        return None
    return dt.timedelta(**{DURATION_UNITS[match[2]]: int(match[1])})


def pct_value(value: str, column: str, default: float | None, report: Reporter) -> float | None:
    """A percentage from 0 to 100 (``default`` when empty)."""
    if not value:
        return default
    try:
        pct = float(value)
    except ValueError:
        pct = -1.0
    if not 0 <= pct <= 100:
        report(column, f"{value!r} must be a number from 0 to 100")
        return default
    return pct
