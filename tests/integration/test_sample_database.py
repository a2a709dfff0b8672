"""The sample's database source, as the compose stack runs it, under `make test`: the shipped
include/sample/shop_db/seed.sql loaded into the suite's PostgreSQL (tests/e2e/postgres.py), the
Airflow connection ``shop_db`` pointed at it, and the sample registry's ``payments`` row
(sql://shop_db/public.payments, incremental by updated_at) run over two days by `pipelines
backfill`. `make demo` has no database server and runs no database source
(tests/dags/test_deployment.py::test_the_local_demo_runs_no_database_source)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pipelines.cli import main
from tests import sample_database
from tests.e2e import postgres


@pytest.fixture(scope="module")
def shop_db() -> str:
    """A database of the suite's PostgreSQL holding the seed, as shop-db's first start does;
    the URL of the connection to it."""
    return sample_database.seeded()


@pytest.fixture(scope="module")
def seeded(shop_db) -> list[dict]:
    """The seed's rows as the database gives them back, by key."""
    database = shop_db.rpartition("/")[2]
    names = ["payment_id", "order_id", "method", "status", "amount", "paid_on", "updated_at"]
    rows = postgres.server().query(
        database, f"SELECT {', '.join(names)} FROM public.payments ORDER BY 1"
    )
    return [dict(zip(names, row, strict=True)) for row in rows]


def layer(home, name: str) -> pa.Table:
    [path] = (home / "lake").glob(f"*/{name}/payments")
    return DeltaTable(str(path)).to_pyarrow_table()


def test_the_sample_database_dataset_runs_over_two_days(home, airflow_db, shop_db, seeded, capsys):
    """Each day reads the payments whose updated_at falls in it; cleaned holds them by paid_on,
    typed as the database has them; a payment refunded on the 3rd is not read before then."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(sample_database.CONN_ENV, shop_db)
        code = main(["backfill", "payments", "--start", "2024-01-01", "--end", "2024-01-02"])
    out = capsys.readouterr().out
    assert code == 0 and "2/2 runs succeeded" in out, out
    start, end = dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC)
    want = [r for r in seeded if start <= r["updated_at"] < end]
    assert [r["payment_id"] for r in want] == ["P-0001", "P-0003", "P-0004", "P-0005"]
    late = [r for r in seeded if r["updated_at"] >= end and r["paid_on"] < end.date()]
    assert [r["payment_id"] for r in late] == ["P-0002"]  # refunded on the 3rd: not yet read

    cleaned = layer(home, "cleaned").sort_by("payment_id")
    assert cleaned.select(list(want[0])).to_pylist() == want  # every value as the database has it
    assert cleaned["dt"].to_pylist() == [r["paid_on"].isoformat() for r in want]  # by paid_on
    assert cleaned.schema.field("amount").type == pa.decimal128(10, 2)  # its scale, not text
    assert pa.types.is_string(cleaned.schema.field("payment_id").type)
    assert pa.types.is_integer(cleaned.schema.field("order_id").type)
    raw = layer(home, "raw").sort_by([("ds", "ascending"), ("_row", "ascending")])
    read = {}
    for row in raw.select(["ds", "payment_id"]).to_pylist():  # each day what changed in it
        read.setdefault(row["ds"], []).append(row["payment_id"])
    assert read == {"2024-01-01": ["P-0001", "P-0003"], "2024-01-02": ["P-0004", "P-0005"]}
    assert layer(home, "quarantine").num_rows == 0
