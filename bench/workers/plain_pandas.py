"""Plain pandas: read one interval, keep the latest row per key, write Hive-partitioned Parquet.

Usage: ``python -m bench.workers.plain_pandas SOURCE OUT KEY ORDER PARTITION`` where ORDER is the
incremental field and PARTITION the timestamp whose UTC date names the partition (``ds=``).
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import pandas as pd
import pyarrow.dataset

from bench.workers.common import measured, report


def main(source: str, out: str, key: str, order: str, partition: str) -> None:
    with measured() as work:
        frame = pd.read_parquet(source)
        latest = frame.sort_values(order).drop_duplicates(key, keep="last")
        latest["ds"] = latest[partition].dt.strftime("%Y-%m-%d")
        latest.to_parquet(out, partition_cols=["ds"], index=False)
    written = pyarrow.dataset.dataset(out, format="parquet", partitioning="hive")
    report(
        **asdict(work),
        rows_in=len(frame),
        rows_out=written.count_rows(),
        partitions=int(latest["ds"].nunique()),
    )


if __name__ == "__main__":
    main(*sys.argv[1:6])
