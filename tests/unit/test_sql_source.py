"""Database sources in the registry (``sql://CONN_ID/...``) and how their columns are typed: the
parts that need no database (a real PostgreSQL runs in tests/integration/test_sql_sources.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa
import pytest

from pipelines.project import sql_source
from pipelines.project.registry import parse_registry
from pipelines.steps import sql_types

HEADER = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date\n"
)


def registry(row: str):
    return parse_registry(HEADER + row + "\n")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sql://shop_db/public.orders", sql_source.SqlSource("shop_db", "public", "orders")),
        ("sql://shop_db/orders", sql_source.SqlSource("shop_db", None, "orders")),
        ("sql://a.b-c_1/s.t", sql_source.SqlSource("a.b-c_1", "s", "t")),
        ("sql://db/queries/lines.sql", sql_source.SqlSource("db", query="queries/lines.sql")),
    ],
)
def test_a_database_source_names_a_connection_and_a_table_or_a_query_file(source, expected):
    assert sql_source.parse(source) == (expected, None)
    (dataset,) = registry(f"o,{source},,id,u,u,incremental,2024-01-01").datasets
    assert dataset.sql == expected
    assert dataset.format == "sql"
    assert dataset.filtered_source  # one source for every interval, filtered by the field


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("sql://db", "a database source is sql://CONN_ID/schema.table"),
        ("sql:///public.t", "a database source is sql://CONN_ID/schema.table"),
        ("sql://db/a.b.c", "must be schema.table or table"),
        ("sql://db/public.orders;drop table x", "must be a letter or _"),
        ('sql://db/public."orders"', "must be a letter or _"),
        ("sql://db/public.orders--", "must be a letter or _"),
        ("sql://db/public.or ders", "must be a letter or _"),
        ("sql://d'b/public.orders", "an Airflow connection id"),
        ("sql://db/../secret.sql", "must be a path inside include/"),
        ("sql://db//etc/x.sql", "must be a path inside include/"),
        ("sql://db/q/{ds}.sql", "no placeholders or wildcards"),
    ],
)
def test_a_database_source_that_is_not_plain_names_is_refused(source, says):
    quoted = '"' + source.replace('"', '""') + '"'
    reg = registry(f"o,{quoted},,id,u,u,incremental,2024-01-01")
    assert not reg.datasets
    messages = [p.message for p in reg.problems if p.column == "source"]
    assert len(messages) == 1 and says in messages[0], reg.problems


@pytest.mark.parametrize("column", ["primary_key", "incremental_field", "partition_field"])
@pytest.mark.parametrize("name", ["id x", "id;drop", "id-1", "Ordner (EUR)", "1id"])
def test_every_column_a_database_row_names_must_be_a_plain_identifier(column, name):
    values = {"primary_key": "id", "incremental_field": "u", "partition_field": "u"}
    values[column] = name
    row = f"o,sql://db/t,,{values['primary_key']},{values['incremental_field']},"
    reg = registry(row + f"{values['partition_field']},incremental,2024-01-01")
    assert not reg.datasets
    said = [p.message for p in reg.problems if p.column == column]  # once, by one rule or other
    assert len(said) == 1, reg.problems
    assert "of a database source" in said[0] or "is not a valid column name" in said[0]


def test_a_file_source_keeps_its_wider_column_names():
    reg = registry("o,data/o.csv,,Order ID,u,u,incremental,2024-01-01")
    assert reg.datasets and reg.datasets[0].sql is None


def test_a_database_source_is_read_as_sql_whatever_the_format_column_says():
    reg = registry("o,sql://db/t,csv,id,u,u,incremental,2024-01-01")
    assert [p.column for p in reg.problems] == ["format"]


POSTGRES = SimpleNamespace(name="postgresql", dbapi=None)


def described(*columns):
    """A DB-API description: (name, type_code, display_size, internal_size, precision, scale)."""
    return [
        (name, code, None, None, precision, scale, None) for name, code, precision, scale in columns
    ]


def test_postgres_columns_keep_the_database_types():
    found = sql_types.columns(
        described(
            ("id", 20, None, None),
            ("small", 21, None, None),
            ("amount", 1700, 12, 2),
            ("wide", 1700, 50, 4),
            ("free", 1700, None, None),
            ("ratio", 701, None, None),
            ("flag", 16, None, None),
            ("day", 1082, None, None),
            ("at", 1184, None, None),
            ("naive", 1114, None, None),
            ("name", 1043, None, None),
            ("doc", 3802, None, None),
            ("uid", 2950, None, None),
        ),
        POSTGRES,
    )
    assert {c.name: c.type for c in found} == {
        "id": pa.int64(),
        "small": pa.int64(),
        "amount": pa.decimal128(12, 2),
        "wide": pa.decimal256(50, 4),
        "free": pa.string(),  # numeric without a precision: any scale, kept as its exact text
        "ratio": pa.float64(),
        "flag": pa.bool_(),
        "day": pa.date32(),
        "at": pa.timestamp("us", tz="UTC"),
        "naive": pa.timestamp("us", tz="UTC"),
        "name": pa.string(),
        "doc": pa.string(),
        "uid": pa.string(),
    }


def test_values_become_arrow_arrays_of_their_column_types_without_loss():
    found = sql_types.columns(
        described(
            ("amount", 1700, 12, 2),
            ("free", 1700, None, None),
            ("naive", 1114, None, None),
            ("at", 1184, None, None),
            ("doc", 3802, None, None),
            ("n", 23, None, None),
        ),
        POSTGRES,
    )
    berlin = dt.timezone(dt.timedelta(hours=1))
    rows = [
        (Decimal("12.50"), Decimal("0.10000000000000000001"), dt.datetime(2024, 1, 1, 23, 59),
         dt.datetime(2024, 1, 2, 0, 30, tzinfo=berlin), {"a": [1, 2]}, None),
        (None, None, None, None, None, 7),
    ]  # fmt: skip
    arrays = sql_types.arrays(rows, found)
    assert arrays[0].to_pylist() == [Decimal("12.50"), None]
    assert arrays[1].to_pylist() == ["0.10000000000000000001", None]
    utc = dt.UTC
    assert arrays[2].to_pylist() == [dt.datetime(2024, 1, 1, 23, 59, tzinfo=utc), None]
    assert arrays[3].to_pylist() == [dt.datetime(2024, 1, 1, 23, 30, tzinfo=utc), None]
    assert arrays[4].to_pylist() == ['{"a": [1, 2]}', None]
    assert arrays[5].type == pa.int64() and arrays[5].to_pylist() == [None, 7]


def test_another_database_is_typed_through_its_drivers_pep249_type_objects():
    class Kind:
        def __init__(self, *codes):
            self.codes = codes

        def __eq__(self, other):
            return other in self.codes

        __hash__ = None

    dbapi = SimpleNamespace(NUMBER=Kind("num"), DATETIME=Kind("ts"), STRING=Kind("str"))
    dialect = SimpleNamespace(name="mysql", dbapi=dbapi)
    found = sql_types.columns(
        described(
            ("price", "num", 10, 2),
            ("qty", "num", 10, 0),
            ("score", "num", None, None),
            ("at", "ts", None, None),
            ("name", "str", None, None),
        ),
        dialect,
    )
    assert [c.type for c in found] == [
        pa.decimal128(10, 2),
        pa.int64(),
        pa.float64(),
        pa.timestamp("us", tz="UTC"),
        pa.string(),
    ]
