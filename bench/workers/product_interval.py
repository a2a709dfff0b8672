"""The product's code path for one interval, in-process and without Airflow.

Usage: ``python -m bench.workers.product_interval DATASET YYYY-MM-DD``: runs the ``extract`` and
``merge`` steps (source -> raw -> cleaned) and reports the rows the cleaned table then holds.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from bench.workers.common import measured, report
from pipelines.steps.dataset import run_steps


def main(dataset: str, ds: str) -> None:
    with measured() as work:
        out = run_steps(dataset, ds, steps=("extract", "merge"))
    merged = out["merge"]
    report(
        **asdict(work),
        rows_in=out["extract"]["rows"],
        rows_out=merged.cleaned_rows,
        partitions=len(merged.touched),
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
