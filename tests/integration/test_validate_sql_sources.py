"""`pipelines validate` and `pipelines infer` for database sources (``sql://CONN_ID/...``, issue
27) against a real PostgreSQL on 127.0.0.1 (one database for the module).

``validate --sources`` connects and runs the dataset's statement for its start_date to return no
row: the columns the registry, aggregates.yaml and columns.yaml name are checked against the
columns the database says, as a file's header is; a missing connection, a refused connection, an
unknown table, a query file missing or whose SQL the database rejects are one line each, naming
the connection. An injection attempt through any registry field of a database row is refused by
plain ``validate``: no database is contacted.
"""

from __future__ import annotations

import csv
import io

import pytest
import yaml

from pipelines.cli import main
from pipelines.project.columns import load_declarations
from tests.conftest import write_registry
from tests.e2e import postgres

HEADER = "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date"
CONN = "src_db"


@pytest.fixture(scope="module")
def database():
    """The module's database: public.orders, and "Order" (a reserved word in mixed case) beside
    a lower-case "order" holding other rows."""
    server = postgres.server()
    name = server.create_database()
    server.query(
        name,
        "CREATE TABLE public.orders (order_id text PRIMARY KEY, amount numeric(12,2), "
        "qty integer, ratio double precision, paid boolean, updated_at timestamptz, "
        "placed timestamp, order_date date, note jsonb, status text)",
    )
    server.query(
        name,
        'CREATE TABLE public."Order" ("Id" integer PRIMARY KEY, updated_at timestamptz);'
        'CREATE TABLE public."order" ("Id" integer PRIMARY KEY, updated_at timestamptz);'
        "INSERT INTO public.\"Order\" VALUES (1, '2024-01-01 01:00+00'), "
        "(2, '2024-01-01 02:00+00'), (3, '2024-01-01 03:00+00');"
        "INSERT INTO public.\"order\" VALUES (9, '2024-01-01 01:00+00')",
    )
    return server, name


@pytest.fixture
def project(home, database, monkeypatch):
    server, name = database
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN.upper()}", f"postgresql://airflow@127.0.0.1:{server.port}/{name}"
    )
    return home


def registry(home, *rows: str) -> None:
    write_registry(home, "\n".join([HEADER, *rows]) + "\n")


def validate(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


ORDERS = f"orders,sql://{CONN}/public.orders,order_id,updated_at,order_date,incremental,2024-01-01"


def test_sources_opens_the_table_and_finds_every_named_column(project, capsys):
    registry(project, ORDERS)
    code, out, err = validate(capsys, "--sources")
    assert (code, out) == (0, [])
    assert f"orders: opened sql://{CONN}/public.orders" in err.splitlines()
    assert "1 source opened" in err


def test_a_column_the_table_lacks_is_said_as_for_a_file_header(project, capsys):
    registry(
        project,
        f"orders,sql://{CONN}/public.orders,order_idx,updated_at,order_date,incremental,2024-01-01",
        f"late,sql://{CONN}/public.orders,order_id,updated,order_date,incremental,2024-01-01",
    )
    (project / "include" / "aggregates.yaml").write_text(
        "- name: by_state\n  dataset: orders\n  group_by: [state]\n  metrics:\n    orders: count\n"
    )
    (project / "include" / "columns.yaml").write_text(
        "orders:\n  columns:\n    colour: {type: text}\n"
    )
    code, out, err = validate(capsys, "--sources")
    columns = (
        "(columns: order_id, amount, qty, ratio, paid, updated_at, placed, order_date, note, "
        "status)"
    )
    where = f"the source (sql://{CONN}/public.orders)"
    assert code == 1
    assert out == [
        f"registry.csv:2: primary_key: column 'order_idx' is not in {where}; did you mean "
        f"'order_id' or 'order_date'? {columns}",
        # the incremental field fails the statement's filter: the columns are the table's
        f"registry.csv:3: incremental_field: column 'updated' is not in {where}; did you mean "
        f"'updated_at' or 'placed'? {columns}",
    ], err
    assert (  # a warning: the dataset takes new columns (on_schema_change=append)
        "warning: aggregates.yaml: by_state: column 'state' is not in the source of dataset "
        f"orders (sql://{CONN}/public.orders); did you mean 'status'? {columns}"
    ) in err.splitlines()
    assert (
        f"warning: columns.yaml:3: orders.colour: column 'colour' is not in {where} {columns}; it "
        "reads null on the days it is not delivered"
    ) in err.splitlines()


@pytest.mark.parametrize(
    ("row", "said"),
    [
        (
            f"nope,sql://{CONN}/public.nope,id,updated_at,updated_at,incremental,2024-01-01",
            f"nope: connection '{CONN}', probing public.nope: relation \"public.nope\" does not "
            "exist (SQLSTATE 42P01)",
        ),
        (
            "other,sql://other_db/public.orders,order_id,updated_at,order_date,incremental,"
            "2024-01-01",
            "other: no Airflow connection 'other_db' (",
        ),
        (
            f"typed,sql://{CONN}/public.orders,order_id,status,order_date,incremental,2024-01-01",
            f"typed: connection '{CONN}', probing public.orders: operator does not exist: text "
            ">= timestamp with time zone",
        ),
        (
            f"gone,sql://{CONN}/q/gone.sql,order_id,updated_at,order_date,incremental,2024-01-01",
            f"gone: query file include/q/gone.sql not found (sql://{CONN}/q/gone.sql)",
        ),
        (
            f"wrong,sql://{CONN}/q/wrong.sql,order_id,updated_at,order_date,incremental,2024-01-01",
            f"wrong: connection '{CONN}', probing q/wrong.sql: syntax error at or near \"FROM\" "
            "(SQLSTATE 42601)",
        ),
        (
            f"unknown,sql://{CONN}/q/unknown.sql,order_id,updated_at,order_date,incremental,"
            "2024-01-01",
            f"unknown: connection '{CONN}', probing q/unknown.sql: column \"colour\" does not "
            "exist (SQLSTATE 42703)",
        ),
    ],
    ids=[
        "unknown-table",
        "missing-connection",
        "field-not-a-time",
        "query-file-missing",
        "query-syntax",
        "query-unknown-column",
    ],
)
def test_what_the_database_refuses_is_one_line_naming_the_connection(project, capsys, row, said):
    (project / "include" / "q").mkdir()
    (project / "include" / "q" / "wrong.sql").write_text("SELEC order_id FROM public.orders;\n")
    (project / "include" / "q" / "unknown.sql").write_text(
        "SELECT order_id, colour, updated_at, order_date FROM public.orders\n"
        "WHERE updated_at < :end"
    )
    registry(project, row)
    code, out, err = validate(capsys, "--sources")
    assert code == 1
    assert len(out) == 1, out
    assert out[0].startswith(f"registry.csv:2: source: {said}"), out
    assert "0 sources opened" in err


def test_a_server_that_does_not_answer_is_one_line_without_retry_words(
    project, capsys, monkeypatch
):
    port = postgres.free_port()  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_DEAD", f"postgresql://airflow@127.0.0.1:{port}/x")
    registry(project, "dead,sql://dead/public.orders,id,,,full,2024-01-01")
    code, out, _ = validate(capsys, "--sources")
    assert code == 1
    assert out == [
        f"registry.csv:2: source: dead: connection 'dead', probing public.orders: connection "
        f'failed: connection to server at "127.0.0.1", port {port} failed: Connection refused'
    ]


def test_a_query_file_with_parameters_is_probed_for_the_start_date(project, capsys):
    (project / "include" / "q").mkdir()
    (project / "include" / "q" / "joined.sql").write_text(
        "SELECT o.order_id, o.updated_at, o.order_date, o.amount * 2 AS doubled\n"
        "FROM public.orders AS o WHERE o.updated_at >= :start AND o.updated_at < :end;\n"
    )
    registry(
        project,
        f"joined,sql://{CONN}/q/joined.sql,order_id,updated_at,order_date,incremental,2024-01-01",
    )
    code, out, err = validate(capsys, "--sources")
    assert (code, out) == (0, []), err
    assert f"joined: opened sql://{CONN}/q/joined.sql" in err.splitlines()


# -- SQL injection through every registry field of a database row --------------------------------
ROW = {
    "dataset": "o",
    "source": f"sql://{CONN}/public.orders",
    "format": "",
    "primary_key": "order_id",
    "incremental_field": "updated_at",
    "partition_field": "order_date",
    "ingestion": "incremental",
    "start_date": "2024-01-01",
    "options": "",
}
ATTEMPTS = {  # field: the value tried, what the one line says
    "conn-id": (
        "source",
        f"sql://{CONN}';DROP TABLE orders;--/public.orders",
        'source: connection id "src_db\';DROP TABLE orders;--" must be letters, digits, _ . -',
    ),
    "schema": (
        "source",
        f'sql://{CONN}/public";DROP TABLE orders;--.orders',
        "source: table name part 'public\";DROP TABLE orders;--' must be a letter or _",
    ),
    "table": (
        "source",
        f"sql://{CONN}/public.orders;DELETE FROM orders",
        "source: table name part 'orders;DELETE FROM orders' must be a letter or _",
    ),
    "table-quote": (
        "source",
        f'sql://{CONN}/orders" WHERE 1=1 --',
        "source: table name part 'orders\" WHERE 1=1 --' must be a letter or _",
    ),
    "query-file": (
        "source",
        f"sql://{CONN}/q/x';DROP TABLE orders;--.sql",
        'source: query file "q/x\';DROP TABLE orders;--.sql" must be a path under include/ of '
        "letters, digits, _ . - and /",
    ),
    "query-file-outside": (
        "source",
        f"sql://{CONN}/q/../../etc/x.sql",
        "source: query file 'q/../../etc/x.sql' must be a path inside include/",
    ),
    "primary-key": (
        "primary_key",
        'order_id"; DROP TABLE orders; --',
        "primary_key: 'order_id\"; DROP TABLE orders; --' is not a valid column name",
    ),
    "primary-key-parens": (
        "primary_key",
        "order_id) OR (order_id",
        "primary_key: column 'order_id) OR (order_id' of a database source must be a letter or _",
    ),
    "primary-key-second": (
        "primary_key",
        "order_id|x -- y",
        "primary_key: column 'x -- y' of a database source must be a letter or _",
    ),
    "incremental-field": (
        "incremental_field",
        "updated_at >= now() OR 1=1",
        "incremental_field: 'updated_at >= now() OR 1=1' is not a valid column name",
    ),
    "incremental-field-words": (
        "incremental_field",
        "updated_at OR updated_at",
        "incremental_field: column 'updated_at OR updated_at' of a database source must be",
    ),
    "partition-field": (
        "partition_field",
        'order_date"--',
        "partition_field: 'order_date\"--' is not a valid column name",
    ),
    "options": (
        "options",
        "null=x'); DROP TABLE orders; --",
        "options: a database source takes no options",
    ),
    "format": (
        "format",
        "sql; DROP TABLE orders",
        "format: a database source (sql://) is read as sql, not 'sql; DROP TABLE orders'",
    ),
}


@pytest.mark.parametrize(("field", "value", "said"), list(ATTEMPTS.values()), ids=list(ATTEMPTS))
def test_an_injection_attempt_is_refused_by_validate_in_one_line_without_a_database(
    project, capsys, monkeypatch, field, value, said
):
    from pipelines.runtime import databases

    def contacted(conn_id):
        raise AssertionError(f"validate contacted the database {conn_id!r}")

    monkeypatch.setattr(databases, "engine", contacted)
    text = io.StringIO()
    writer = csv.DictWriter(text, list(ROW), lineterminator="\n")
    writer.writeheader()
    writer.writerow(ROW | {field: value})
    write_registry(project, text.getvalue())
    code, out, _ = validate(capsys, "--sources")
    assert code == 1
    assert len(out) == 1, out
    assert out[0].startswith(f"registry.csv:2: {said}"), out


# -- identifiers are quoted --------------------------------------------------------------------
def test_a_mixed_case_reserved_table_name_is_quoted_and_read_exactly(project, airflow_db, capsys):
    """``public.Order`` reads the table "Order" (quoted as written, case kept), not "order":
    unquoted, ``Order`` is a syntax error and would fold to ``order``."""
    registry(
        project, f"mixed,sql://{CONN}/public.Order,Id,updated_at,updated_at,incremental,2024-01-01"
    )
    code, out, err = validate(capsys, "--sources")
    assert (code, out) == (0, []), err
    assert main(["run", "mixed", "--date", "2024-01-01"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "local__mixed" in line]
    assert len(said) == 1 and said[0].endswith(": raw 3, cleaned 3, quarantined 0"), said


def test_the_statement_quotes_every_identifier_by_the_dialect(tmp_path):
    from sqlalchemy.dialects import postgresql

    from pipelines.project.registry import load_registry
    from pipelines.steps import sql_extract

    file = tmp_path / "registry.csv"
    file.write_text(
        f"{HEADER}\nmixed,sql://c/Sales.Order,Id|select,Updated,Updated,incremental,2024-01-01\n"
    )
    (dataset,) = load_registry(file).datasets
    sql = sql_extract.statement(dataset, dataset.sql, postgresql.dialect())
    assert sql == (
        'SELECT * FROM "Sales"."Order"\n'
        'WHERE ("Updated" >= :start AND "Updated" < :end) OR "Updated" IS NULL\n'
        'ORDER BY "Id", "select"'
    )


# -- infer -------------------------------------------------------------------------------------
def test_infer_gives_the_database_types(project, capsys):
    registry(project, ORDERS)
    assert main(["infer", "orders"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"# pipelines infer orders: the database's own types (no row read) of "
        f"sql://{CONN}/public.orders (2024-01-01):"
    )
    entry = yaml.safe_load(out)["orders"]["columns"]
    assert entry == {
        "order_id": {"type": "text", "tests": ["not_null"]},
        "amount": {"type": "decimal(12,2)"},
        "qty": {"type": "integer"},
        "ratio": {"type": "float"},
        "paid": {"type": "boolean"},
        "updated_at": {"type": "timestamp"},
        "placed": {"type": "timestamp"},
        "order_date": {"type": "date"},
        "note": {"type": "text"},
        "status": {"type": "text"},
    }
    (project / "include" / "columns.yaml").write_text(out)
    assert load_declarations(project / "include" / "columns.yaml").problems == ()


def test_infer_of_an_unknown_table_is_one_line(project, capsys):
    registry(project, f"nope,sql://{CONN}/public.nope,id,,,full,2024-01-01")
    assert main(["infer", "nope"]) == 1
    out, err = capsys.readouterr()
    assert (out + err).strip().splitlines() == [
        f"error: connection '{CONN}', probing public.nope: relation \"public.nope\" does not "
        "exist (SQLSTATE 42P01)"
    ]
