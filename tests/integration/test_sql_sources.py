"""Issue 27: database sources read correctly, against a real PostgreSQL (tests/e2e/postgres.py).

Every dataset here reads ``sql://src/...`` through the Airflow connection ``src``
(``AIRFLOW_CONN_SRC``) and runs through the real command (``pipelines run`` / ``backfill``, the
local runner; one test through ``--airflow``, ``dag.test()``). What the lake holds is compared
with what the database itself answers for the same interval: which rows an interval reads, what
cleaned holds after late updates and deletions, the types and values of each column, and ``_row``
as the rank of the key.

One database for the module, its tables small; each test owns its tables. The database's time
zone is not UTC (Asia/Kolkata, +05:30), as an operational database's may be: a
``timestamp without time zone`` must still be read and filtered as UTC.
"""

from __future__ import annotations

import datetime as dt
import decimal

import pandas as pd
import pyarrow as pa
import pytest

import pipelines
from pipelines.cli import main
from pipelines.project.config import load_project
from pipelines.steps import sql_types
from tests.conftest import write_registry
from tests.e2e import postgres

HEADER = "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date"
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
ZONE = "Asia/Kolkata"  # the database's own time zone: +05:30, not a whole hour off UTC

SCHEMA = f"""
CREATE TABLE public.late_orders (
    order_id text PRIMARY KEY, status text NOT NULL, amount numeric(12,2),
    updated_at timestamptz, order_date date NOT NULL);
INSERT INTO public.late_orders VALUES
    ('A3', 'placed', 30.00, '2024-01-01 08:00+00', '2024-01-01'),
    ('A1', 'placed', 10.00, '2024-01-01 10:00+00', '2024-01-01'),
    ('A2', 'placed', 20.00, '2024-01-01 12:00+00', '2024-01-01'),
    ('B1', 'placed', 40.00, '2024-01-02 09:00+00', '2024-01-02'),
    ('C1', 'placed', 50.00, '2024-01-03 08:00+00', '2024-01-03'),
    ('N1', 'placed', 60.00, NULL, '2024-01-01');

CREATE TABLE crm.customers (
    customer_id integer PRIMARY KEY, name text NOT NULL, country text);
INSERT INTO crm.customers VALUES
    (3, 'Cy', 'FR'), (1, 'Ann', 'DE'), (2, 'Bo', NULL), (4, 'Di', 'IT');

CREATE TABLE public.instants (
    event_id integer PRIMARY KEY, label text NOT NULL,
    at_tz timestamptz NOT NULL, at_naive timestamp NOT NULL);
INSERT INTO public.instants VALUES
    (1, 'start edge', '2024-01-01 00:00:00+00', '2024-01-01 00:00:00'),
    (2, 'last instant', '2024-01-01 23:59:59.999999+00', '2024-01-01 23:59:59.999999'),
    (3, 'next start', '2024-01-02 00:00:00+00', '2024-01-02 00:00:00'),
    (4, 'day before', '2023-12-31 23:59:59.999999+00', '2023-12-31 23:59:59.999999'),
    (5, 'east: 2nd local, 1st UTC', '2024-01-02 01:30:00+02', '2024-01-01 23:30:00'),
    (6, 'west: 1st local, 2nd UTC', '2024-01-01 19:00:00-05', '2024-01-02 00:00:00'),
    (7, 'india: 2nd local, 1st UTC', '2024-01-02 05:29:59.5+05:30', '2024-01-01 23:59:59.5'),
    (8, 'india: 2nd local and UTC', '2024-01-02 05:30:00+05:30', '2024-01-02 05:30:00');

CREATE TABLE public.prices (
    code text PRIMARY KEY, price numeric(12,2), stock integer, big bigint,
    updated_at timestamptz NOT NULL);
INSERT INTO public.prices VALUES
    ('7', 0.10, 3, 9007199254740993, '2024-01-01 01:00+00'),
    ('007', 1234567890.12, NULL, NULL, '2024-01-01 02:00+00'),
    ('07', -0.05, 0, -1, '2024-01-01 03:00+00'),
    ('70', 0.00, NULL, 2, '2024-01-01 04:00+00');
CREATE TABLE public.stock (
    item_id bigint PRIMARY KEY, qty integer, updated_at timestamptz NOT NULL);
INSERT INTO public.stock VALUES
    (10, 5, '2024-01-01 01:00+00'), (2, NULL, '2024-01-01 02:00+00'),
    (9007199254740993, 1, '2024-01-01 03:00+00');

CREATE TABLE public.q_customers (customer_id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO public.q_customers VALUES (1, 'Ann'), (2, 'Bo');
CREATE TABLE public.q_orders (
    order_id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES public.q_customers,
    updated_at timestamptz NOT NULL);
INSERT INTO public.q_orders VALUES
    (11, 1, '2024-01-01 05:00+00'), (12, 2, '2024-01-01 06:00+00'),
    (13, 1, '2024-01-02 07:00+00'), (14, 2, '2024-01-03 08:00+00');
CREATE TABLE public.q_payments (
    payment_id integer PRIMARY KEY, order_id integer NOT NULL, paid_at timestamptz NOT NULL);
INSERT INTO public.q_payments VALUES
    (1, 11, '2024-01-01 05:30+00'), (2, 11, '2024-01-01 07:00+00'),
    (3, 11, '2024-01-02 00:00+00'), (4, 13, '2024-01-02 08:00+00'),
    (5, 12, '2023-12-31 23:59:59.999999+00'), (6, 12, '2024-01-01 00:00+00');

CREATE TABLE public.both_ways (
    id text PRIMARY KEY, amount numeric(12,2), qty integer, updated_at timestamptz,
    placed timestamp NOT NULL);
INSERT INTO public.both_ways VALUES
    ('x9', 9.99, 1, '2024-01-01 23:00+00', '2024-01-01 20:00'),
    ('x1', 1.50, NULL, '2024-01-01 01:00+00', '2024-01-01 00:30'),
    ('x5', 5.00, 2, '2024-01-02 00:00+00', '2024-01-01 23:59:59.999999'),
    ('x0', 0.01, 3, NULL, '2024-01-02 10:00'),
    ('x7', 7.25, 4, '2024-01-02 13:00+00', '2024-01-02 12:00');

CREATE TABLE public.ranked (
    id text PRIMARY KEY, n integer NOT NULL, updated_at timestamptz);
INSERT INTO public.ranked VALUES
    ('k9', 1, '2024-01-01 01:00+00'), ('k10', 2, '2024-01-01 02:00+00'),
    ('k1', 3, '2024-01-01 03:00+00'), ('K5', 4, NULL), ('k5', 5, '2024-01-01 04:00+00'),
    ('k0', 6, '2024-01-02 00:00+00'), ('k2', 7, '2024-01-01 05:00+00');
UPDATE public.ranked SET n = n + 10 WHERE id IN ('k9', 'k1');
CREATE TABLE public.ranked_full (id integer PRIMARY KEY, n integer NOT NULL);
INSERT INTO public.ranked_full VALUES (30, 1), (4, 2), (100, 3), (-1, 4), (21, 5);
UPDATE public.ranked_full SET n = n + 10 WHERE id = 30;
ALTER DATABASE {{db}} SET TimeZone = '{ZONE}';
"""

ORDER_PAYMENTS = """\
-- an order of the interval, its customer, and the payments made in the same interval
SELECT o.order_id, c.name::text AS customer, o.updated_at,
       count(p.payment_id) AS payments_in_interval
FROM public.q_orders AS o
JOIN public.q_customers AS c ON c.customer_id = o.customer_id
LEFT JOIN public.q_payments AS p
  ON p.order_id = o.order_id AND p.paid_at >= :start AND p.paid_at < :end
WHERE o.updated_at >= :start AND o.updated_at < :end
GROUP BY o.order_id, c.name, o.updated_at;
"""


class Source:
    """The module's database: statements on it, and its connection's URI."""

    def __init__(self, server: postgres.PostgresServer, database: str):
        self.server, self.database = server, database

    @property
    def uri(self) -> str:
        return (
            f"postgresql://{postgres.SUPERUSER}@{postgres.HOST}:{self.server.port}/{self.database}"
        )

    def query(self, sql: str, *args) -> list[tuple]:
        """Rows as the database gives them (this connection's time zone is UTC)."""
        return self.server.query(self.database, sql, *args)

    def keys(self, table: str, field: str, day: str, key: str) -> list:
        """The keys of ``table`` whose ``field`` is in the UTC day ``day``, in key order:
        the database's own answer to which rows an interval reads."""
        return [
            row[0]
            for row in self.query(
                f"SELECT {key} FROM {table} WHERE {field} >= %s AND {field} < %s ORDER BY {key}",
                *bounds(day),
            )
        ]


def bounds(day: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


@pytest.fixture(scope="module")
def database():
    """A fresh database of the session's PostgreSQL server, holding every test's tables; the
    server is stopped after the module if the module started it."""
    started = postgres._server is None
    server = postgres.server()
    name = server.create_database()
    server.query(name, "CREATE SCHEMA crm")
    server.query(name, SCHEMA.replace("{db}", f'"{name}"'))
    yield Source(server, name)
    if started:
        postgres.stop_server()
    else:
        server.query("postgres", f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def src(home, database, monkeypatch):
    """The connection ``src`` to the module's database; every read of it in chunks of 2 rows, so
    that each delivery here spans several chunks."""
    monkeypatch.setenv("AIRFLOW_CONN_SRC", database.uri)
    monkeypatch.setenv("PIPELINES_SQL_CHUNK_ROWS", "2")
    return database


def registry(home, *rows: str) -> None:
    write_registry(home, "\n".join([HEADER, *rows]) + "\n")


def ok(*argv: str) -> None:
    assert main(list(argv)) == 0, argv


def read(name: str, layer: str = "cleaned", as_of: str | None = None) -> pd.DataFrame:
    return pipelines.read(name, layer, as_of=as_of)


def plain(value):
    """A value of a DataFrame as the database driver gives it (None for a null)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    return value


def records(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """The frame's rows of ``columns`` as tuples of plain values, sorted by the first (the key:
    in the order of the database's ``ORDER BY``, its collation being C)."""
    rows = [tuple(plain(v) for v in row) for row in frame[columns].itertuples(index=False)]
    return sorted(rows, key=lambda row: row[0])


def schema(name: str, layer: str) -> pa.Schema:
    project = load_project()
    lake = project.lake()
    table = lake.raw(name) if layer == "raw" else lake.cleaned(project.dataset(name))
    return table.snapshot().schema


# 1 -----------------------------------------------------------------------------------------------
def test_a_late_update_is_read_in_its_new_interval_and_wins_the_merge(src, home):
    registry(home, "late_orders,sql://src/public.late_orders,order_id,updated_at,order_date,"
                   "incremental,2024-01-01")  # fmt: skip
    columns = ["order_id", "status", "amount", "updated_at"]
    table = "public.late_orders"

    ok("run", "late_orders", "--date", DAYS[0])
    raw = read("late_orders", "raw", DAYS[0])
    # the interval's rows, and the row with no updated_at (it belongs to no interval)
    assert sorted(raw["order_id"]) == [*src.keys(table, "updated_at", DAYS[0], "order_id"), "N1"]
    assert sorted(raw["order_id"]) == ["A1", "A2", "A3", "N1"]  # not B1, C1: later intervals

    src.query(f"UPDATE {table} SET status = 'shipped', amount = 11.00, "
              "updated_at = '2024-01-02 15:00+00' WHERE order_id = 'A1'")  # fmt: skip
    ok("run", "late_orders", "--date", DAYS[1])
    raw = read("late_orders", "raw", DAYS[1])
    assert sorted(raw["order_id"]) == [*src.keys(table, "updated_at", DAYS[1], "order_id"), "N1"]
    assert sorted(raw["order_id"]) == ["A1", "B1", "N1"]
    assert raw.set_index("order_id").loc["A1", "status"] == "shipped"

    ok("run", "late_orders", "--date", DAYS[2])
    expected = src.query(f"SELECT {', '.join(columns)} FROM {table} "
                         "WHERE updated_at < '2024-01-04+00' ORDER BY order_id")  # fmt: skip
    cleaned = read("late_orders")
    assert cleaned["order_id"].is_unique
    assert records(cleaned, columns) == expected
    assert ("A1", "shipped", decimal.Decimal("11.00")) in [r[:3] for r in expected]
    assert cleaned.set_index("order_id").loc["A1", "dt"] == "2024-01-01"  # its order_date's
    quarantined = read("late_orders", "quarantine")
    assert sorted(quarantined["order_id"]) == ["N1", "N1", "N1"]  # null updated_at, each day

    # day 1 again: A1 left it for day 2, so the rerun's delivery lacks it; cleaned keeps day 2's
    ok("run", "late_orders", "--date", DAYS[0])
    assert sorted(read("late_orders", "raw", DAYS[0])["order_id"]) == ["A2", "A3", "N1"]
    assert records(read("late_orders"), columns) == expected


# 2 -----------------------------------------------------------------------------------------------
def test_a_full_snapshot_follows_the_table_when_a_row_is_deleted(src, home):
    registry(home, "customers,sql://src/crm.customers,customer_id,,,full,2024-01-01")
    columns = ["customer_id", "name", "country"]
    select = "SELECT customer_id, name, country FROM crm.customers ORDER BY customer_id"

    ok("run", "customers", "--date", DAYS[0])
    first = src.query(select)
    assert records(read("customers"), columns) == first

    src.query("DELETE FROM crm.customers WHERE customer_id = 2")
    src.query("UPDATE crm.customers SET country = 'ES' WHERE customer_id = 3")
    ok("run", "customers", "--date", DAYS[1])
    second = src.query(select)
    assert [r[0] for r in second] == [1, 3, 4]
    assert records(read("customers"), columns) == second
    assert records(read("customers", "raw", DAYS[1]), columns) == second
    assert records(read("customers", as_of=DAYS[0]), columns) == first  # day 1's snapshot kept
    for layer in ("raw", "cleaned"):  # an integer key stays an integer
        assert schema("customers", layer).field("customer_id").type == pa.int64()


# 3 -----------------------------------------------------------------------------------------------
def test_instants_with_and_without_time_zone_are_filtered_at_the_day_s_edges(src, home):
    """``at_tz`` is an instant given at several offsets; ``at_naive`` a wall time read as UTC,
    in a database whose own time zone is +05:30. Each day reads exactly the rows the database
    says are in ``[day, next day)`` (asked in UTC), nothing before or after."""
    registry(
        home,
        "by_tz,sql://src/public.instants,event_id,at_tz,at_tz,incremental,2024-01-01",
        "by_naive,sql://src/public.instants,event_id,at_naive,at_naive,incremental,2024-01-01",
    )
    assert src.query("SELECT current_setting('TimeZone')") == [("UTC",)]  # this connection's
    assert src.query(f"SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = "
                     f"(SELECT oid FROM pg_database WHERE datname = '{src.database}')") == [
        ([f"TimeZone={ZONE}"],)]  # fmt: skip
    ok("backfill", "by_tz", "--start", DAYS[0], "--end", DAYS[1])
    ok("backfill", "by_naive", "--start", DAYS[0], "--end", DAYS[1])
    expected = {
        "by_tz": {DAYS[0]: [1, 2, 5, 7], DAYS[1]: [3, 6, 8]},
        "by_naive": {DAYS[0]: [1, 2, 5, 7], DAYS[1]: [3, 6, 8]},
    }
    for name, field in (("by_tz", "at_tz"), ("by_naive", "at_naive")):
        for day in DAYS[:2]:
            raw = read(name, "raw", day)
            got = [int(i) for i in sorted(raw["event_id"])]
            assert got == src.keys("public.instants", field, day, "event_id"), (name, day)
            assert got == expected[name][day], (name, day)
    # the values: each an instant in UTC, to the microsecond
    naive = {i: t.replace(tzinfo=dt.UTC) for i, t in src.query(
        "SELECT event_id, at_naive FROM public.instants")}  # fmt: skip
    instants = dict(src.query("SELECT event_id, at_tz FROM public.instants"))
    for name in ("by_tz", "by_naive"):
        cleaned = read(name)
        assert sorted(cleaned["event_id"]) == [1, 2, 3, 5, 6, 7, 8]
        for row in cleaned.itertuples():
            assert plain(row.at_tz) == instants[row.event_id]
            assert plain(row.at_naive) == naive[row.event_id]
        for layer in ("raw", "cleaned"):
            for field in ("at_tz", "at_naive"):
                assert schema(name, layer).field(field).type == pa.timestamp("us", tz="UTC")
    # the partition field's UTC date: event 5 is the 2nd where it happened, the 1st in UTC
    dates = read("by_tz").set_index("event_id")["dt"]
    assert dates.to_dict() == {1: DAYS[0], 2: DAYS[0], 5: DAYS[0], 7: DAYS[0],
                               3: DAYS[1], 6: DAYS[1], 8: DAYS[1]}  # fmt: skip


# 4 -----------------------------------------------------------------------------------------------
def test_numerics_integers_and_keys_keep_the_database_s_types(src, home):
    registry(
        home,
        "prices,sql://src/public.prices,code,updated_at,updated_at,incremental,2024-01-01",
        "stock,sql://src/public.stock,item_id,updated_at,updated_at,incremental,2024-01-01",
    )
    ok("run", "prices", "--date", DAYS[0])
    ok("run", "stock", "--date", DAYS[0])
    types = {
        "prices": {"code": pa.string(), "price": pa.decimal128(12, 2), "stock": pa.int64(),
                   "big": pa.int64()},
        "stock": {"item_id": pa.int64(), "qty": pa.int64()},
    }  # fmt: skip
    for name, wanted in types.items():
        for layer in ("raw", "cleaned"):
            got = schema(name, layer)
            assert {c: got.field(c).type for c in wanted} == wanted, (name, layer)

    columns = ["code", "price", "stock", "big"]
    expected = src.query(f"SELECT {', '.join(columns)} FROM public.prices ORDER BY code")
    for layer in ("raw", "cleaned"):
        frame = read("prices", layer, DAYS[0] if layer == "raw" else None)
        got = records(frame, columns)
        assert got == expected  # '007', '07', '7' and '70': four keys, as the database has them
        for row in got:  # decimals of scale 2, never floats or text
            assert isinstance(row[1], decimal.Decimal), row
            assert row[1].as_tuple().exponent == -2, row
        assert [type(r[3]) for r in got if r[3] is not None] == [int, int, int]
    assert [r[0] for r in expected] == ["007", "07", "7", "70"]
    assert dict((r[0], r[3]) for r in expected)["7"] == 2**53 + 1  # no float on the way

    expected = src.query("SELECT item_id, qty FROM public.stock ORDER BY item_id")
    assert records(read("stock"), ["item_id", "qty"]) == expected
    assert expected[0] == (2, None) and expected[-1][0] == 2**53 + 1


# 5 -----------------------------------------------------------------------------------------------
def test_a_query_file_joins_and_binds_the_interval_inside(src, home):
    (home / "include" / "queries").mkdir()
    (home / "include" / "queries" / "order_payments.sql").write_text(ORDER_PAYMENTS)
    registry(home, "order_payments,sql://src/queries/order_payments.sql,order_id,updated_at,"
                   "updated_at,incremental,2024-01-01")  # fmt: skip
    ok("backfill", "order_payments", "--start", DAYS[0], "--end", DAYS[2])
    # the same query, bound by the database's driver for each day
    independent = ORDER_PAYMENTS.replace(":start", "%(start)s").replace(":end", "%(end)s")
    columns = ["order_id", "customer", "updated_at", "payments_in_interval"]
    con = src.server.connect(src.database)
    try:
        every = []
        for day in DAYS:
            start, end = bounds(day)
            with con.cursor() as cur:
                cur.execute(independent.rstrip().rstrip(";") + " ORDER BY order_id",
                            {"start": start, "end": end})  # fmt: skip
                rows = cur.fetchall()
            assert records(read("order_payments", "raw", day), columns) == rows, day
            every += rows
    finally:
        con.close()
    assert records(read("order_payments"), columns) == sorted(every)
    # order 11: 2 payments in its day (not the 3rd, at the next day's first instant); 12: the
    # one at its day's first instant (not the one just before)
    assert [(r[0], r[1], r[3]) for r in sorted(every)] == [
        (11, "Ann", 2), (12, "Bo", 1), (13, "Ann", 1), (14, "Bo", 0)]  # fmt: skip


def test_the_connections_extras_reach_the_session_as_airflows_own_hook_connects(
    src, home, monkeypatch
):
    """The engine's connections come from the hook (``get_conn``): an extra of the connection
    that the hook's SQLAlchemy URL leaves out (``application_name``; ``sslmode`` alike) is
    in force in the session that reads."""
    monkeypatch.setenv("AIRFLOW_CONN_SRC", src.uri + "?application_name=pipelines-extract")
    (home / "include" / "queries").mkdir()
    (home / "include" / "queries" / "session.sql").write_text(
        "SELECT 1 AS id, current_setting('application_name') AS app, "
        "current_setting('TimeZone') AS zone, TIMESTAMPTZ '2024-01-01 10:00+00' AS updated_at"
    )
    registry(home, "session,sql://src/queries/session.sql,id,updated_at,updated_at,incremental,"
                   "2024-01-01")  # fmt: skip
    ok("run", "session", "--date", DAYS[0])
    assert records(read("session", "raw", DAYS[0]), ["id", "app", "zone"]) == [
        (1, "pipelines-extract", "UTC")
    ]


# 6 -----------------------------------------------------------------------------------------------
def test_dag_test_writes_the_same_rows_as_the_local_runner(src, home, airflow_db, monkeypatch):
    registry(home, "both_ways,sql://src/public.both_ways,id,updated_at,placed,incremental,"
                   "2024-01-01")  # fmt: skip
    got = {}
    for way, extra in (("local", []), ("airflow", ["--airflow"])):
        monkeypatch.setenv("PIPELINES_LAKE", str(home / f"lake-{way}"))
        ok("backfill", "both_ways", "--start", DAYS[0], "--end", DAYS[1], *extra)
        got[way] = {
            layer: read("both_ways", layer).sort_values(["id", "_row"]).reset_index(drop=True)
            for layer in ("raw", "cleaned", "quarantine")
        }
    for layer, frame in got["local"].items():
        pd.testing.assert_frame_equal(frame, got["airflow"][layer], obj=layer)
    columns = ["id", "amount", "qty", "updated_at", "placed"]
    expected = src.query(f"SELECT {', '.join(columns)} FROM public.both_ways "
                         "WHERE updated_at IS NOT NULL ORDER BY id")  # fmt: skip
    assert records(got["airflow"]["cleaned"], columns) == [
        (*r[:4], r[4].replace(tzinfo=dt.UTC)) for r in expected]  # fmt: skip
    assert sorted(got["airflow"]["quarantine"]["id"]) == ["x0", "x0"]
    # the partition is the UTC date of ``placed``, a timestamp without time zone
    dates = src.query("SELECT id, placed::date::text FROM public.both_ways "
                      "WHERE updated_at IS NOT NULL")  # fmt: skip
    assert records(got["airflow"]["cleaned"], ["id", "dt"]) == sorted(dates)
    assert dict(dates)["x5"] == DAYS[0]  # 23:59:59.999999


# 7 -----------------------------------------------------------------------------------------------
def test_row_is_the_key_order_and_a_rerun_of_the_day_changes_nothing(src, home, monkeypatch):
    """The rows were inserted out of key order and some updated since (a heap's order is not
    the key's): ``_row`` is still each key's rank in the database's order, across the read's
    chunks, the same on every read of the same rows."""
    chunks = []
    real = sql_types.arrays

    def counted(rows, found):
        chunks.append(len(rows))
        return real(rows, found)

    monkeypatch.setattr(sql_types, "arrays", counted)
    registry(
        home,
        "ranked,sql://src/public.ranked,id,updated_at,updated_at,incremental,2024-01-01",
        "ranked_full,sql://src/public.ranked_full,id,,,full,2024-01-01",
    )
    rank = "row_number() OVER (ORDER BY id) - 1"
    ranks = {
        "ranked": src.query(
            f"SELECT id, {rank} FROM public.ranked "
            "WHERE (updated_at >= %s AND updated_at < %s) OR updated_at IS NULL", *bounds(DAYS[0])),
        "ranked_full": src.query(f"SELECT id, {rank} FROM public.ranked_full"),
    }  # fmt: skip
    in_order = [r[0] for r in sorted(ranks["ranked"], key=lambda r: r[1])]
    assert in_order == ["K5", "k1", "k10", "k2", "k5", "k9"]  # the database's (C collation)
    for table in ranks:
        heap = [r[0] for r in src.query(f"SELECT id FROM public.{table}")]
        assert heap != sorted(heap)  # the table's own order is not the key's
    before = {}
    for name, ranked in ranks.items():
        ok("run", name, "--date", DAYS[0])
        raw = read(name, "raw", DAYS[0])
        assert records(raw, ["id", "_row"]) == sorted(ranked), name
        assert chunks == {"ranked": [2, 2, 2], "ranked_full": [2, 2, 1]}[name]
        chunks.clear()
        before[name] = {layer: read(name, layer) for layer in ("raw", "cleaned")}
        assert len(before[name]["cleaned"]) == len(ranked) - (name == "ranked")  # K5: no time
    for name in ranks:
        ok("run", name, "--date", DAYS[0])
        for layer in ("raw", "cleaned"):
            after = read(name, layer)
            pd.testing.assert_frame_equal(
                after.sort_values("id").reset_index(drop=True),
                before[name][layer].sort_values("id").reset_index(drop=True),
                obj=f"{name} {layer}",
            )
