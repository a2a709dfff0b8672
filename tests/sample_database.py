"""The sample's database source in the suite's PostgreSQL (tests/e2e/postgres.py): the shipped
include/sample/shop_db/seed.sql, the one docker-compose.yaml's shop-db service starts with,
loaded into a database of its own, and the Airflow connection ``shop_db`` the sample registry's
``payments`` row reads through (``AIRFLOW_CONN_SHOP_DB`` pointed at it)."""

from __future__ import annotations

import csv
from pathlib import Path

from pipelines.project.sql_source import is_sql
from tests.conftest import REPO
from tests.e2e import postgres

SEED = REPO / "include" / "sample" / "shop_db" / "seed.sql"
CONN_ENV = "AIRFLOW_CONN_SHOP_DB"


def seeded() -> str:
    """A new database of the session's server holding the seed; the URL of a connection to it
    (``AIRFLOW_CONN_SHOP_DB``'s value)."""
    server = postgres.server()
    database = server.create_database()
    server.query(database, SEED.read_text())
    return f"postgresql://{postgres.SUPERUSER}@{postgres.HOST}:{server.port}/{database}"


def without_database_sources(include: Path) -> None:
    """Drop the registry's ``sql://`` rows from a copy of the sample (its ``include`` folder):
    for a test of the file sources that opens every source (``validate --sources``), without a
    database server."""
    path = include / "registry.csv"
    lines = path.read_text().splitlines(keepends=True)
    rows = csv.reader(lines)
    kept = [ln for ln, row in zip(lines, rows, strict=True) if not row[1:2] or not is_sql(row[1])]
    assert len(kept) < len(lines), "the sample has no database source to drop"
    path.write_text("".join(kept))
