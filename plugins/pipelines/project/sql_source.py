"""A registry source that is a database table or query, read through an Airflow connection:
``sql://CONN_ID/schema.table``, ``sql://CONN_ID/table`` or ``sql://CONN_ID/queries/orders.sql``
(a query file under include/, its path ending in ``.sql``).

Nothing of the registry is ever formatted into SQL as written: the connection id, the schema and
table names, and (:func:`column_problem`) every column a database source's row names must be
plain identifiers (a letter or ``_``, then letters, digits or ``_``; at most 63), and are quoted by
the database's own dialect when a statement is built (:mod:`pipelines.steps.sql_extract`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

SCHEME = "sql://"
FORMAT = "sql"
CONN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")  # Airflow's own conn_id rule
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
IDENTIFIER_RULE = "a letter or _, then letters, digits or _ (at most 63)"
QUERY_SUFFIX = ".sql"
# a query file's path: plain names, so the registry's text is one a shell, a log and a message
# quote safely (no quote, ';', space or control character)
QUERY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
QUERY_RULE = "a path under include/ of letters, digits, _ . - and /"


@dataclass(frozen=True)
class SqlSource:
    """Where a database source reads: the Airflow connection, and a table (``schema``, ``name``)
    or a query file (``query``: its path under include/)."""

    conn_id: str
    schema: str | None = None
    name: str | None = None
    query: str | None = None

    @property
    def table(self) -> tuple[str, ...]:
        """The table's name parts, schema first (empty for a query)."""
        return tuple(p for p in (self.schema, self.name) if p)

    def shown(self) -> str:
        """How the source is named in a message (the registry's own spelling)."""
        return f"{SCHEME}{self.conn_id}/{self.query or '.'.join(self.table)}"


def is_sql(source: str) -> bool:
    return source.startswith(SCHEME)


def parse(source: str) -> tuple[SqlSource | None, str | None]:
    """(the source, None), or (None, what is wrong with it) for a ``sql://`` source."""
    rest = source.removeprefix(SCHEME)
    conn_id, sep, where = rest.partition("/")
    if not conn_id or not sep or not where:
        return None, (
            "a database source is sql://CONN_ID/schema.table, sql://CONN_ID/table or "
            "sql://CONN_ID/path/to/query.sql (a query file under include/)"
        )
    if not CONN_RE.fullmatch(conn_id):
        return None, (
            f"connection id {_short(conn_id)!r} must be letters, digits, _ . - "
            "(an Airflow connection id)"
        )
    if where.endswith(QUERY_SUFFIX):
        path = PurePosixPath(where)
        if path.is_absolute() or ".." in path.parts or "\\" in where or "//" in where:
            return None, f"query file {_short(where)!r} must be a path inside include/ (no '..')"
        if any(c in where for c in "{}?*[]"):
            return None, f"query file {_short(where)!r}: no placeholders or wildcards"
        if not QUERY_RE.fullmatch(where):
            return None, f"query file {_short(where)!r} must be {QUERY_RULE}"
        return SqlSource(conn_id, query=where), None
    parts = where.split(".")
    if len(parts) > 2:
        return None, f"table {_short(where)!r} must be schema.table or table"
    for part in parts:
        if not IDENTIFIER_RE.fullmatch(part):
            return None, f"table name part {_short(part)!r} must be {IDENTIFIER_RULE}"
    schema, name = (None, parts[0]) if len(parts) == 1 else parts
    return SqlSource(conn_id, schema, name), None


def column_problem(name: str) -> str | None:
    """Why a column a database source's registry row names cannot be put in a statement."""
    if IDENTIFIER_RE.fullmatch(name):
        return None
    return f"column {_short(name)!r} of a database source must be {IDENTIFIER_RULE}"


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
