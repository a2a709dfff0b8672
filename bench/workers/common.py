"""What every worker shares: timing its work with the memory it took, and reporting one JSON
result line to the parent (stdlib only)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RESULT_PREFIX = "BENCH-RESULT "
HIGH_WATER = re.compile(r"^VmHWM:\s+(\d+) kB$", re.MULTILINE)


@dataclass
class Work:
    """Seconds the work took, and this process's peak RSS (bytes) before and after it."""

    seconds: float = 0.0
    import_rss: int = 0
    peak_rss: int = 0


@contextmanager
def measured() -> Iterator[Work]:
    """Time the block; record the peak RSS before it (interpreter and imports) and after it."""
    work = Work(import_rss=peak_rss())
    start = time.perf_counter()
    yield work
    work.seconds = time.perf_counter() - start
    work.peak_rss = peak_rss()


def peak_rss() -> int:
    """This process's peak resident set size so far, in bytes (Linux ``VmHWM``).

    Not ``getrusage``: its ``ru_maxrss`` keeps the high-water mark of the image the process had
    before ``exec``, which for a child forked from a big parent is the parent's memory.
    """
    status = Path("/proc/self/status").read_text()
    return int(HIGH_WATER.search(status).group(1)) * 1024


def report(**figures: object) -> None:
    """Print the worker's result as the line the parent looks for, then end the process at once.

    Every worker reports last. Skipping the interpreter's teardown keeps a result already printed
    from being lost to a native library aborting at exit (seen once: SIGABRT, "terminate called
    without an active exception", from pyarrow's self-destructing conversion, since removed).
    """
    sys.stdout.write(RESULT_PREFIX + json.dumps(figures, default=str) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
