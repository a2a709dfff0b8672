"""Run the benchmarks, print the table of ratios, write RESULTS.md and curves.png.

Usage::

    python -m bench                        # full sizes, < 15 min: bench/RESULTS.md, curves.png
    python -m bench --smoke                # tiny sizes, < 2 min: bench/out/smoke/
    python -m bench --only parse,history   # some measures, full sizes: bench/out/partial/
    python -m bench --only scale           # the 50M-row run apart: its section of RESULTS.md

Bench-only packages: ``uv pip install --python .venv/bin/python -r bench/requirements.txt``;
the peer lives outside the venv: ``uv pip install --python .venv/bin/python --no-deps --target
bench/out/peers -r bench/peers.txt``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import big_interval, database, history, overhead, parse, scale, status, throughput
from bench.measure import BenchError
from bench.report import (
    Row,
    RunInfo,
    apart_markdown,
    apart_of,
    load_average,
    results_markdown,
    table,
    with_apart,
    write,
)
from bench.sizes import FULL, SMOKE, Sizes

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "out" / "peers"
REQUIRED = {"duckdb": "bench/requirements.txt", "matplotlib": "bench/requirements.txt"}


@dataclass(frozen=True)
class Measure:
    """One measure: how to run it, its table rows and its raw figures."""

    name: str
    run: Callable[[Path, Sizes, Path], Any]  # (workdir, sizes, peers site) -> result
    rows: Callable[[Any], list[Row]]
    details: Callable[[Any], str]


def _measures(*modules) -> tuple[Measure, ...]:
    return tuple(
        Measure(module.__name__.rsplit(".", 1)[-1], module.measure, module.rows, module.details)
        for module in modules
    )


MEASURES = _measures(parse, throughput, big_interval, database, history, overhead, status)
# run only when named (--only) and, at tiny sizes, by --smoke: outside the 15-minute budget
APART = _measures(scale)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = [m for m in MEASURES if args.only is None or m.name in args.only]
    chosen += [m for m in APART if (args.only and m.name in args.only) or args.smoke]
    missing = _missing(args.peers)
    if missing:
        print(
            "missing bench packages; install them with:\n  " + "\n  ".join(missing), file=sys.stderr
        )
        return 2
    started, load = time.perf_counter(), load_average()
    try:
        results = run_measures(chosen, SMOKE if args.smoke else FULL, args.peers)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    info = RunInfo(_command(args, chosen), time.perf_counter() - started, (load, load_average()))
    rows = [row for m in chosen for row in m.rows(results[m.name])]
    print(table(rows))
    _write(args, chosen, results, rows, info)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (CI)")
    parser.add_argument(
        "--only",
        type=lambda v: set(v.split(",")),
        metavar="NAMES",
        help=f"comma-separated subset of: {', '.join(m.name for m in MEASURES + APART)} "
        "(the last only when named)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where RESULTS.md and curves.png go "
        "(default: bench/ for a full run of everything, else bench/out/MODE)",
    )
    parser.add_argument(
        "--peers",
        type=Path,
        default=PEERS,
        help="folder dag-factory was installed into with --target",
    )
    return parser


def _missing(peers: Path) -> list[str]:
    """Install commands for whatever the bench needs and cannot find."""
    commands = [
        f"uv pip install --python {sys.executable} -r {req}"
        for module, req in REQUIRED.items()
        if importlib.util.find_spec(module) is None
    ]
    if not (peers / "dagfactory").is_dir():
        commands.append(
            f"uv pip install --python {sys.executable} --no-deps --target {peers} "
            "-r bench/peers.txt"
        )
    return sorted(set(commands))


def run_measures(chosen: Sequence[Measure], sizes: Sizes, peers: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pipelines-bench-") as tmp:
        for i, measure in enumerate(chosen, start=1):
            print(f"[{i}/{len(chosen)}] {measure.name} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            results[measure.name] = measure.run(Path(tmp), sizes, peers.resolve())
            print(
                f"[{i}/{len(chosen)}] {measure.name} done in {time.perf_counter() - began:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    return results


def _command(args: argparse.Namespace, chosen: Sequence[Measure]) -> str:
    command = "python -m bench" + (" --smoke" if args.smoke else "")
    if args.only:
        command += " --only " + ",".join(m.name for m in chosen)
    return command


def _write(
    args: argparse.Namespace,
    chosen: Sequence[Measure],
    results: dict[str, Any],
    rows: list[Row],
    info: RunInfo,
) -> None:
    from bench import curves

    complete = not args.smoke and chosen == list(MEASURES)
    apart = not args.smoke and all(m in APART for m in chosen)
    mode = "smoke" if args.smoke else ("full" if complete else "partial")
    out = args.out or (BENCH if complete or apart else BENCH / "out" / mode)
    details = "\n\n".join(m.details(results[m.name]) for m in chosen)
    path = out / "RESULTS.md"
    if apart:  # its own section of RESULTS.md; the timed run's table stays
        section = apart_markdown(rows, info, details, search_path=[args.peers])
        text = with_apart(path.read_text() if path.exists() else "", section)
    else:
        text = results_markdown(rows, info, details, search_path=[args.peers])
        text = with_apart(text, apart_of(path)) if complete else text
    written = [write(path, text)]
    plot = curves.draw(out / "curves.png", results.get("parse"), results.get("history"))
    written += [plot] if plot else []
    print(f"\n{info.elapsed / 60:.1f} min; wrote " + ", ".join(map(str, written)), file=sys.stderr)
