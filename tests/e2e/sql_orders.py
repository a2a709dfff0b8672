"""A PostgreSQL table of orders that an e2e dataset reads through an Airflow connection (issue 27):
its rows over two days, the late update between the days' reads, and what a SELECT on it gives
for an interval, to compare with what the lake holds.

The table lives in a database of its own in the session's server (tests/e2e/postgres.py). Its
keys and customer ids are text with leading zeros, its amounts ``numeric(12,2)``, ``updated_at``
a ``timestamptz`` (the incremental field) and ``order_date`` a date (the partition field). Rows on
both bounds of the dataset's first day, one from the day before (never read) and one from the day
after the second (not yet read); order ``0003`` is placed on the first day, updated on the second.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd

from pipelines.inspection.reader import read
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project
from tests.e2e import postgres

CONN_ID = "orders_db"
TABLE = "public.orders"
LATE_KEY = "0003"  # updated on the second day: its new version must win in cleaned
DAY = dt.timedelta(days=1)


def registry_row(name: str, first_day: dt.date) -> str:
    """The dataset's registry row (format implied by ``sql://``; one run at a time: the late update
    comes between the runs)."""
    return (
        f"{name},sql://{CONN_ID}/{TABLE},,order_id,updated_at,order_date,incremental,@daily,"
        f"{first_day},1,sales-data,Orders read from PostgreSQL,,\n"
    )


def create(first_day: dt.date) -> str:
    """A new database holding the table and its rows; its name."""
    server = postgres.server()
    database = server.create_database()
    server.query(
        database,
        f"CREATE TABLE {TABLE} (order_id text PRIMARY KEY, customer_id text, "
        "amount numeric(12,2), updated_at timestamptz NOT NULL, order_date date NOT NULL)",
    )
    d0, d1, d2, d3 = (first_day + n * DAY for n in (-1, 0, 1, 2))
    rows = [
        ("0001", "c01", "10.00", f"{d0} 12:00+00", d0),  # before the first day
        ("0002", "c01", "20.50", f"{d1} 00:00+00", d1),  # the first day's start bound
        (LATE_KEY, "c02", "30.25", f"{d1} 10:00+00", d1),
        ("0004", "c03", "40.00", f"{d1} 23:59:59.999999+00", d1),  # its last instant
        ("0005", "c02", "50.10", f"{d2} 00:00+00", d2),  # the second day's start bound
        ("0006", "c04", "60.00", f"{d2} 15:30+00", d2),
        ("0007", "c01", "70.00", f"{d3} 00:00+00", d3),  # the day after: no run has read it
    ]
    for row in rows:
        server.query(database, f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s, %s)", *row)  # noqa: S608
    return database


def uri(database: str, password: str) -> str:
    """The connection's URI (the server trusts any password: it is there to be kept secret)."""
    server = postgres.server()
    return f"postgresql://{postgres.SUPERUSER}:{password}@{postgres.HOST}:{server.port}/{database}"


def late_update(cursor, first_day: dt.date) -> None:
    """Order 0003 changes on the second day: a new amount, ``updated_at`` in that day."""
    cursor.execute(
        f"UPDATE {TABLE} SET amount = amount + 100, updated_at = %s WHERE order_id = %s",
        (dt.datetime.combine(first_day + DAY, dt.time(11), tzinfo=dt.UTC), LATE_KEY),
    )


def update_late(database: str, first_day: dt.date) -> None:
    con = postgres.server().connect(database)
    try:
        with con.cursor() as cur:
            late_update(cur, first_day)
    finally:
        con.close()


def source_rows(database: str, start: dt.date, end: dt.date) -> list[tuple]:
    """The table's rows whose ``updated_at`` is in ``[start, end)`` (UTC days), by key."""
    rows = postgres.server().query(
        database,
        f"SELECT order_id, customer_id, amount, updated_at, order_date FROM {TABLE} "  # noqa: S608
        "WHERE updated_at >= %s AND updated_at < %s ORDER BY order_id",
        *(dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC) for d in (start, end)),
    )
    return [_comparable(row) for row in rows]


def lake_rows(frame: pd.DataFrame) -> list[tuple]:
    """A lake table's rows as :func:`source_rows` gives them, by key."""
    columns = ["order_id", "customer_id", "amount", "updated_at", "order_date"]
    rows = frame[columns].sort_values("order_id").itertuples(index=False, name=None)
    return [_comparable(row) for row in rows]


def _comparable(row: tuple) -> tuple:
    """Text keys as text, the amount's decimal digits, the instant in UTC, the day: the same
    spelling from psycopg2 and from the lake (whose reader gives a date as a midnight
    timestamp), so a lost leading zero, scale or time zone shows."""
    order_id, customer, amount, updated, day = row
    assert isinstance(amount, Decimal), (row, type(amount))
    day = pd.Timestamp(day)
    assert day == day.normalize(), row
    return order_id, customer, str(amount), pd.Timestamp(updated).isoformat(), str(day.date())


def assert_read_incrementally(
    home: Path, name: str, database: str, first_day: dt.date, first_rows: list[tuple]
) -> None:
    """The dataset ``name`` of the project in ``home`` ran its first two days, the late update
    made between them: raw holds exactly those two days, the first as the SELECT gave it before
    the update (``first_rows``), the second as it gives it now; cleaned holds each order of the
    two days once, as the table holds it now: the late update won. (``PIPELINES_HOME`` is
    ``home``.)"""
    second = first_day + DAY
    project, lake = load_project(home / "include"), Lake(str(home / "lake"), "local")
    assert sorted(lake.raw(name).snapshot().partitions) == [str(first_day), str(second)]
    raw = {
        day: read(name, "raw", as_of=day, project=project, lake=lake) for day in (first_day, second)
    }
    assert lake_rows(raw[first_day]) == first_rows
    assert lake_rows(raw[second]) == source_rows(database, second, second + DAY)
    cleaned = lake_rows(read(name, "cleaned", project=project, lake=lake))
    assert cleaned == source_rows(database, first_day, second + DAY), cleaned
    late = [row for rows in (first_rows, cleaned) for row in rows if row[0] == LATE_KEY]
    assert len(late) == 2 and late[0][2:4] != late[1][2:4], late  # the old version, then the new


class UpdateBetweenReads:
    """The late update, made after the first read of the table (the scheduler's run of the first
    day) and before any later one (the second day's), without timing the runs: a lock queue.

    On creation a gate transaction locks the table (ACCESS EXCLUSIVE), so the first day's read
    waits in the lock queue; once it waits, a second transaction asks for the same lock (queued
    behind that read), then the gate lets go. PostgreSQL grants the queue in order: the first
    read sees the old rows; the update waits for its transaction to end (the extract's whole
    write), and a later read that comes before the update commits queues behind it.
    """

    def __init__(self, database: str, first_day: dt.date, timeout: float = 300):
        self.database, self.first_day, self.timeout = database, first_day, timeout
        server = postgres.server()
        self.relation = server.query(database, f"SELECT '{TABLE}'::regclass::oid")[0][0]
        self.gate = server.connect(database)
        with self.gate.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        self.errors: list[BaseException] = []
        self.updated = threading.Event()
        self.thread = threading.Thread(target=self._open_gate, daemon=True)
        self.thread.start()

    def _open_gate(self) -> None:
        try:
            self._until_waiting("AccessShareLock")  # the first day's read
            threading.Thread(target=self._update, daemon=True).start()
            self._until_waiting("AccessExclusiveLock")  # the update, behind that read
        except BaseException as exc:  # noqa: BLE001 - said by join()
            self.errors.append(exc)
        finally:
            with self.gate.cursor() as cur:
                cur.execute("COMMIT")
            self.gate.close()

    def _until_waiting(self, mode: str) -> None:
        deadline = time.monotonic() + self.timeout
        con = postgres.server().connect(self.database)  # one, not one per look
        try:
            with con.cursor() as cur:
                while time.monotonic() < deadline:
                    cur.execute(
                        "SELECT count(*) FROM pg_locks "
                        "WHERE relation = %s AND mode = %s AND NOT granted",
                        (self.relation, mode),
                    )
                    if cur.fetchone()[0]:
                        return
                    time.sleep(0.3)
        finally:
            con.close()
        raise AssertionError(f"no {mode} waited on {TABLE} in {self.timeout}s")

    def _update(self) -> None:
        try:
            con = postgres.server().connect(self.database)
            try:
                with con.cursor() as cur:
                    cur.execute("BEGIN")
                    cur.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
                    late_update(cur, self.first_day)
                    cur.execute("COMMIT")
            finally:
                con.close()
            self.updated.set()
        except BaseException as exc:  # noqa: BLE001 - said by join()
            self.errors.append(exc)

    def join(self) -> None:
        """Once the update is committed; its error or the gate's, if any."""
        self.thread.join(self.timeout)
        assert not self.errors, self.errors
        self.updated.wait(self.timeout)
        assert not self.errors, self.errors
        assert self.updated.is_set(), f"the late update of {TABLE} was not made"
