"""Write one synthetic delivery, in a child of its own (ten million rows take a few GiB to
generate: the bench's own process stays small).

Usage: ``python -m bench.workers.delivery INCLUDE DATASET DAY ROWS LATE_DAYS``: writes day DAY of
DATASET where its registry row says its source is (:func:`bench.synth.write_delivery`); reports
the file, its rows, distinct keys, keys new that day and its size in pandas.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench import synth
from bench.workers.common import report


def main(include: str, dataset: str, index: int, rows: int, late_days: int) -> None:
    start = time.perf_counter()
    delivery = synth.write_delivery(Path(include), dataset, index, rows, late_days=late_days)
    report(
        path=str(delivery.path),
        rows=delivery.rows,
        keys=delivery.keys,
        new_keys=delivery.new_keys,
        data_bytes=synth.in_memory_bytes(delivery.path),
        seconds=time.perf_counter() - start,
    )


if __name__ == "__main__":
    include, dataset, index, rows, late_days = sys.argv[1:6]
    main(include, dataset, int(index), int(rows), int(late_days))
