"""Where the time goes: the bench's children run once each under cProfile, product code first.

Usage::

    python -m bench.profile --only parse            # full sizes, one repeat, no warm-up
    python -m bench.profile --smoke --top 40 --match ''   # every child, every function

Each Python child (workers, ``pipelines``, ``airflow``) writes ``bench/out/profile/NN-name.prof``;
for each, the functions whose location matches ``--match`` (default: the product's package) are
printed by cumulative time. Timings under the profiler are slower and are not reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import pstats
import shutil
from collections.abc import Sequence
from pathlib import Path

from bench.measure import profile_children
from bench.run import BENCH, MEASURES, PEERS, run_measures
from bench.sizes import FULL, SMOKE, Sizes

OUT = BENCH / "out" / "profile"
PRODUCT_CODE = "plugins/pipelines/"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = [m for m in MEASURES if args.only is None or m.name in args.only]
    shutil.rmtree(OUT, ignore_errors=True)
    profile_children(OUT)
    run_measures(chosen, once(SMOKE if args.smoke else FULL), PEERS)
    for path in sorted(OUT.glob("*.prof")):
        text = top(path, args.match, args.top)
        if text:
            print(f"\n=== {path.name}\n{text}")
    return 0


def once(sizes: Sizes) -> Sizes:
    """The same sizes, every measurement run once and without warm-up."""
    repeats = {f.name: 1 for f in dataclasses.fields(sizes) if f.name.endswith("_repeats")}
    return dataclasses.replace(sizes, warmup=False, **repeats)


def top(path: Path, match: str, count: int) -> str:
    """The ``count`` functions matching ``match`` with the most cumulative time, or ''."""
    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer).sort_stats("cumulative")
    stats.print_stats(match, count)
    body = buffer.getvalue()
    lines = [line for line in body.splitlines() if match in line or "ncalls" in line]
    return "\n".join(lines) if len(lines) > 1 else ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument(
        "--only",
        type=lambda v: set(v.split(",")),
        metavar="NAMES",
        help=f"comma-separated subset of: {', '.join(m.name for m in MEASURES)}",
    )
    parser.add_argument("--top", type=int, default=25, help="functions per child (default 25)")
    parser.add_argument(
        "--match",
        default=PRODUCT_CODE,
        help=f"show functions whose location contains this (default {PRODUCT_CODE!r}; '' for all)",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
