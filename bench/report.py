"""The one table of ratios: its rows, their targets, and RESULTS.md.

Each row compares a product figure with figures measured beside it in the same run; its ratio is
product / reference, so below 1 means the product is faster or smaller.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import operator
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PACKAGES = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "pipelines",
    "pandas",
    "pyarrow",
    "numpy",
    "duckdb",
    "dag-factory",
    "matplotlib",
)
HEADER = ("measure", "product", "floor / peers", "ratio", "target", "met", "note")


@dataclass(frozen=True)
class Target:
    """A bound on a ratio, e.g. ``<= 1.5``; with a ``unit``, a bound on an absolute figure in
    that unit (``<= 2 GiB``), the row's ratio being the figure in it; with a ``label``, a
    condition shown as that label (``completes``), whose row shows no ratio."""

    symbol: str
    limit: float
    check: Callable[[float, float], bool]
    unit: str = ""
    label: str = ""

    def __str__(self) -> str:
        if self.label:
            return self.label
        return f"{self.symbol} {self.limit:g}" + (f" {self.unit}" if self.unit else "")

    def met(self, ratio: float) -> bool:
        return self.check(ratio, self.limit)


def at_most(limit: float, unit: str = "") -> Target:
    return Target("≤", limit, operator.le, unit)


def less_than(limit: float, unit: str = "") -> Target:
    return Target("<", limit, operator.lt, unit)


@dataclass(frozen=True)
class Row:
    """One line of the table; ``target`` None marks a figure shown for context only.

    :param ratio: None when the figure could not be measured: ``met`` is NO (the product did not
        complete), or ``—`` when the row was ``skipped`` (what it compares is not there)
    :param note: why a row says NO or was skipped, or what else to know about it
    """

    measure: str
    product: str
    others: str
    ratio: float | None
    target: Target | None
    note: str = ""
    skipped: bool = False

    def cells(self) -> tuple[str, ...]:
        target = "—" if self.target is None else str(self.target)
        note = " ".join(self.note.replace("|", "/").split())  # one cell of one line
        return (self.measure, self.product, self.others, self._ratio(), target, self.met, note)

    @property
    def met(self) -> str:
        """``yes``, ``NO``, or ``—`` (no target, or skipped)."""
        if self.target is None or self.skipped:
            return "—"
        if self.ratio is None:
            return "NO"
        return "yes" if self.target.met(self.ratio) else "NO"

    def _ratio(self) -> str:
        """Two decimals, or three when two would show the limit itself; a figure with the
        target's unit."""
        if self.ratio is None or (self.target is not None and self.target.label):
            return "—"
        shown = f"{self.ratio:.2f}"
        if self.target is not None and float(shown) == self.target.limit:
            shown = f"{self.ratio:.3f}"
        unit = self.target.unit if self.target is not None else ""
        return f"{shown} {unit}" if unit else shown


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def megabytes(value: float) -> str:
    mib = value / 2**20
    if mib >= 1024:
        return f"{mib / 1024:.2f} GiB"
    return f"{mib:.0f} MiB" if mib >= 10 else f"{mib:.2g} MiB"


def rate(value: float) -> str:
    return f"{value / 1000:,.0f}k rows/s"


def table(rows: Sequence[Row]) -> str:
    """The table of ratios."""
    return grid(HEADER, [row.cells() for row in rows])


def grid(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A Markdown table, aligned so it also reads in a terminal."""
    lines = [tuple(header), *map(tuple, lines)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [_line(lines[0], widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(_line(line, widths) for line in lines[1:])
    return "\n".join(out)


@dataclass(frozen=True)
class RunInfo:
    """How the run went: its command, duration, and the machine's load around it.

    :param load: 1-minute load average before and after (other work competing with the bench)
    """

    command: str
    elapsed: float
    load: tuple[float, float]


def load_average() -> float:
    return os.getloadavg()[0]


APART = "## Runs apart from the timed run"  # RESULTS.md's last section: `--only scale`


def results_markdown(
    rows: Sequence[Row], info: RunInfo, details: str, search_path: Sequence[Path] = ()
) -> str:
    """The whole RESULTS.md: when, where, with what, the table, then the raw medians.

    :param search_path: where packages installed outside the venv (the peers) are found
    """
    header = _header(info, search_path)
    return "\n".join(["# Benchmark results", "", *header, "", table(rows), "", details, ""])


def apart_markdown(
    rows: Sequence[Row], info: RunInfo, details: str, search_path: Sequence[Path] = ()
) -> str:
    """The section of RESULTS.md a run apart from the timed one (``--only scale``) writes."""
    header = _header(info, search_path)[:3]
    return "\n".join([APART, "", *header, "", table(rows), "", details, ""])


def with_apart(results: str, section: str | None) -> str:
    """``results`` (a RESULTS.md) with its section of runs apart replaced by ``section`` (None:
    the section ``results`` has, kept)."""
    head, _, kept = results.partition(APART)
    if section is None:
        return head if not kept else f"{head.rstrip()}\n\n{APART}{kept}"
    return f"{head.rstrip()}\n\n{section}" if head.strip() else section


def apart_of(path: Path) -> str | None:
    """The section of runs apart of the RESULTS.md at ``path`` (None: none there)."""
    text = path.read_text() if path.exists() else ""
    return APART + text.partition(APART)[2] if APART in text else None


def _header(info: RunInfo, search_path: Sequence[Path]) -> list[str]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    path = [*sys.path, *map(str, search_path)]
    versions = ", ".join(f"{name} {_version(name, path)}" for name in PACKAGES)
    return [
        f"- date: {stamp}; command: `{info.command}`, {info.elapsed / 60:.1f} min; "
        f"commit {_commit()}",
        f"- machine: {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}; load average {info.load[0]:.1f} before, "
        f"{info.load[1]:.1f} after",
        f"- packages: {versions}",
        "- ratio = product / reference: below 1 is faster (or smaller) than the reference; "
        "a target with a unit bounds the product's own figure, shown in that unit; "
        "figures are medians of repeats run side by side in this run",
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def _commit() -> str:
    """The repo's commit, ``-dirty`` when the work tree has changes."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def _version(name: str, path: list[str]) -> str:
    found = next(iter(importlib.metadata.distributions(name=name, path=path)), None)
    return found.version if found else "(not installed)"
