"""Load one DAGs folder into a DagBag: time the Airflow import, then the parse.

Usage: ``python -m bench.workers.dagbag DAGS_FOLDER``. Reports ``import_s``, ``parse_s``, the
numbers of DAGs and tasks, and the first import errors.
"""

from __future__ import annotations

import sys
import time

from bench.workers.common import report


def main(folder: str) -> None:
    start = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    imported = time.perf_counter()
    bag = DagBag(dag_folder=folder)
    parsed = time.perf_counter()
    errors = [f"{path}: {text[-2000:]}" for path, text in sorted(bag.import_errors.items())]
    report(
        import_s=imported - start,
        parse_s=parsed - imported,
        dags=len(bag.dags),
        tasks=sum(len(dag.tasks) for dag in bag.dags.values()),
        errors=errors[:3],
    )


if __name__ == "__main__":
    main(sys.argv[1])
