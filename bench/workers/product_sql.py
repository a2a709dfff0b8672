"""The product's extract of a database source, in-process and without Airflow.

Usage: ``python -m bench.workers.product_sql DATASET YYYY-MM-DD``: runs the ``extract`` step of a
``sql://`` dataset (its rows of the interval, read through the Airflow connection in chunks of
``PIPELINES_SQL_CHUNK_ROWS`` into the raw table) and reports the rows it wrote.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

# imported before the timed work, as a plain script's imports are: the extract imports them
# lazily (the connection's hook, SQLAlchemy and its psycopg dialect, pyarrow, delta-rs)
import deltalake  # noqa: F401
import psycopg  # noqa: F401
import pyarrow  # noqa: F401
import sqlalchemy  # noqa: F401
from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401

from bench.workers.common import measured, report
from pipelines.steps.dataset import run_steps


def main(dataset: str, ds: str) -> None:
    with measured() as work:
        out = run_steps(dataset, ds, steps=("extract",))
    report(**asdict(work), rows_in=out["extract"]["rows"])


if __name__ == "__main__":
    main(*sys.argv[1:3])
