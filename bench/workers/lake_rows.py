"""How many rows a dataset's cleaned table holds, read with the product's public reader.

Usage: ``python -m bench.workers.lake_rows DATASET``.
"""

from __future__ import annotations

import sys

from bench.workers.common import report
from pipelines.inspection.reader import read

if __name__ == "__main__":
    report(rows=len(read(sys.argv[1])))
