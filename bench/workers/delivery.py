"""Write one synthetic delivery, in a child of its own (ten million rows take a few GiB to
generate: the bench's own process stays small).

Usage: ``python -m bench.workers.delivery INCLUDE DATASET DAY ROWS LATE_DAYS [CHUNK_ROWS]``:
writes day DAY of DATASET where its registry row says its source is
(:func:`bench.synth.write_delivery`; with CHUNK_ROWS, :func:`bench.synth.write_chunked_delivery`);
reports the file, its rows, distinct keys, keys new that day and its size in pandas.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench import synth
from bench.workers.common import report


def main(
    include: str, dataset: str, index: int, rows: int, late_days: int, chunk_rows: int = 0
) -> None:
    start = time.perf_counter()
    if chunk_rows:
        delivery, data_bytes = synth.write_chunked_delivery(
            Path(include), dataset, index, rows, chunk_rows=chunk_rows, late_days=late_days
        )
    else:
        delivery = synth.write_delivery(Path(include), dataset, index, rows, late_days=late_days)
        data_bytes = synth.in_memory_bytes(delivery.path)
    report(
        path=str(delivery.path),
        rows=delivery.rows,
        keys=delivery.keys,
        new_keys=delivery.new_keys,
        data_bytes=data_bytes,
        seconds=time.perf_counter() - start,
    )


if __name__ == "__main__":
    include, dataset, index, rows, late_days, *chunk = sys.argv[1:7]
    main(include, dataset, int(index), int(rows), int(late_days), *map(int, chunk))
