"""Arrow's allocator for a read-only command a user waits on (``pipelines status``).

pyarrow allocates from mimalloc by default. On a machine with transparent huge pages always on
(the 2-core machine the project is built on), a mimalloc fault now and then stalls in the
kernel's memory compaction: reading a year of a hundred datasets' run records took 0.04 s most
times and 0.3 to 1 s one time in three, all of it system time (``compact_stall`` counts up).
jemalloc reads the same in 0.08-0.14 s every time; ``pipelines status`` took 1.07-2.08 s with
mimalloc and 1.03-1.25 s with jemalloc over eight runs of each. A run's tasks keep the default
(the benchmarks measured their memory with it).
"""

from __future__ import annotations

import contextlib
import os


def steady() -> None:
    """Allocate from jemalloc from now on, where pyarrow has it and ``ARROW_DEFAULT_MEMORY_POOL``
    does not choose another."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    import pyarrow as pa

    with contextlib.suppress(NotImplementedError):  # a build without it (Windows)
        pa.set_memory_pool(pa.jemalloc_memory_pool())
