"""A database reached through an Airflow connection: its hook, a SQLAlchemy engine on it, and
what a failure of it means, in one line that names the connection and never its password.

The connection is found the way the lake's is (:func:`.secrets.require_connection`: inside a
task through the Task SDK, elsewhere through the environment, a secrets backend and the metadata
database). Its ``conn_type`` picks the hook, as Airflow does: the provider of the
database must be installed (``apache-airflow-providers-postgres`` for PostgreSQL, ``-mysql``,
``-snowflake``, …), and its hook must be a ``DbApiHook`` of the common SQL provider.

A failure is :class:`~pipelines.exceptions.SourceRefused` when asking again cannot help (no such
connection, a refused login, an unknown database, table or column, no privilege, a statement the
database rejects): the task fails at once. Anything else (a refused or dropped connection, a
server shutting down, a deadlock, a timeout) is a :class:`~pipelines.exceptions.SourceError`,
which Airflow retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.exceptions import SourceError, SourceRefused
from pipelines.runtime.secrets import redact_known, require_connection

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# SQLSTATE classes (the first two characters) that asking again will not change: invalid
# authorization (28), invalid catalog name (3D), syntax error or access rule violation (42),
# invalid schema name (3F), data exception (22), feature not supported (0A)
REFUSED_CLASSES = ("28", "3D", "3F", "42", "22", "0A")
RETRIED = "; retried: it may pass"  # ends the message of a failure that is not refused
# what drivers say, without a SQLSTATE, of a login or a database that will not be accepted
REFUSED_WORDS = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "access denied",
    "no pg_hba.conf entry",
    "does not exist",
    "unknown database",
    "invalid username",
    "incorrect username or password",
)


def hook(conn_id: str):
    """The ``DbApiHook`` of the Airflow connection ``conn_id``.

    :raises SourceRefused: no such connection, no provider for its type, not a database
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    def missing(why: str) -> SourceRefused:
        return SourceRefused(
            f"no Airflow connection {conn_id!r} ({why}): add it with `airflow connections add "
            f"{conn_id} --conn-type postgres --conn-host HOST --conn-schema DB --conn-login USER "
            f"--conn-password …`, or an AIRFLOW_CONN_{conn_id.upper()} variable or a secrets "
            "backend"
        )

    require_connection(conn_id, missing)
    connection = BaseHook.get_connection(conn_id)
    try:
        found = connection.get_hook()
    except Exception as exc:  # noqa: BLE001 - the provider of its type is not installed
        raise SourceRefused(
            f"connection {conn_id!r}: no hook for its type {connection.conn_type!r} "
            f"({_first_line(exc)}): install the Airflow provider of that database "
            "(apache-airflow-providers-postgres for PostgreSQL)"
        ) from None
    if not isinstance(found, DbApiHook):
        raise SourceRefused(
            f"connection {conn_id!r} is of type {connection.conn_type!r}, not a database an "
            "Airflow SQL hook reads (postgres, mysql, snowflake, …)"
        )
    return found


def engine(conn_id: str) -> Engine:
    """A SQLAlchemy engine on the connection: one database connection at a time, not pooled
    (a step reads once, then the engine is disposed of).

    A PostgreSQL session runs in UTC, whatever the server's, database's or role's ``TimeZone``:
    a ``timestamp without time zone`` is compared with the interval's bounds (UTC instants) as
    the UTC wall time it is read as, not as a wall time of the database's zone.
    """
    from sqlalchemy import event
    from sqlalchemy.pool import NullPool

    found = hook(conn_id)
    try:
        # connections come from the hook itself, as Airflow's own SQL operators get them: every
        # extra of the connection (sslmode, options, IAM tokens, …) applies, not only those
        # the hook puts in its SQLAlchemy URL
        kwargs = {"poolclass": NullPool, "creator": found.get_conn}
        made = found.get_sqlalchemy_engine(engine_kwargs=kwargs)
    except Exception as exc:  # noqa: BLE001 - no SQLAlchemy dialect for it
        raise failure(conn_id, exc, secrets=_secrets(found)) from None
    if made.dialect.name == "postgresql":
        event.listen(made, "connect", _utc_session)
    return made


def _utc_session(dbapi_connection, _record) -> None:
    """Set a new PostgreSQL connection's session time zone to UTC (committed: it outlives the
    transaction it ran in)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET TIME ZONE 'UTC'")
    finally:
        cursor.close()
    dbapi_connection.commit()


def secrets_of(conn_id: str) -> tuple[str, ...]:
    """The connection's password and secret extras, to be cut from any message."""
    from airflow.sdk import BaseHook

    try:
        return _secrets(BaseHook.get_connection(conn_id))
    except Exception:  # noqa: BLE001 - no connection: nothing of it to hide
        return ()


def _secrets(found) -> tuple[str, ...]:
    connection = getattr(found, "connection", None) or found
    password = getattr(connection, "password", None)
    return (password,) if password else ()


def failure(conn_id: str, exc: BaseException, *, doing: str = "", secrets=()) -> SourceError:
    """The one-line error of a database call that failed: refused (no retry) or not (retried).

    :param doing: what was being done, said after the connection (``reading public.orders``)
    """
    original = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    state = _sqlstate(original)
    text = _first_line(original)
    refused = state[:2] in REFUSED_CLASSES if state else _refused_by_words(text)
    if type(original).__name__ in ("ProgrammingError", "NotSupportedError") and not state:
        refused = True  # PEP 249: the statement is wrong, and will be again
    if _not_sent(exc):
        refused = True  # SQLAlchemy refused it before the database saw it: it will again
    where = f"connection {conn_id!r}" + (f", {doing}" if doing else "")
    message = f"{where}: {text}" + (f" (SQLSTATE {state})" if state else "")
    message = redact_known(message, *secrets, limit=500)
    if refused:
        return SourceRefused(message)
    return SourceError(message + RETRIED)


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a failed database call (a SQLAlchemy error or the driver's), or ''."""
    return _sqlstate(getattr(exc, "orig", None) or exc)


def _sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a driver's error (psycopg 3 ``sqlstate``, psycopg2 ``pgcode``,
    others ``sqlstate``), or ''."""
    for name in ("sqlstate", "pgcode"):
        value = getattr(exc, name, None)
        if isinstance(value, str) and len(value) == 5:
            return value
    diag = getattr(exc, "diag", None)
    value = getattr(diag, "sqlstate", None)
    return value if isinstance(value, str) and len(value) == 5 else ""


def _not_sent(exc: BaseException) -> bool:
    """A statement SQLAlchemy would not send (a query file's ``:name`` with no value bound)."""
    from sqlalchemy import exc as sa_exc

    return isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError)


def _refused_by_words(text: str) -> bool:
    lowered = text.lower()
    return any(w in lowered for w in REFUSED_WORDS)


def _first_line(exc: BaseException) -> str:
    """The driver's message without its noise: the line that says what is wrong (PostgreSQL's
    ``FATAL:``/``ERROR:`` line, else the first), no SQLAlchemy background link."""
    text = str(exc).split(" (Background on this error at:")[0]  # SQLAlchemy's link, inline
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("(Background on", "[SQL:", "[parameters:"))]
    for line in lines:
        for mark in ("FATAL:", "ERROR:"):
            if mark in line:
                return line[line.index(mark) :]
    return lines[0] if lines else type(exc).__name__
