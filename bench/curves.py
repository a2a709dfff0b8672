"""bench/curves.png: DAG parse time against registry size, merge time against history size."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first

from bench.history import HistoryResult  # noqa: E402
from bench.parse import BUDGET_S, ParseResult  # noqa: E402


def draw(path: Path, parse: ParseResult | None, history: HistoryResult | None) -> Path | None:
    """Plot whichever results there are; returns the file written, or None."""
    panels = [(draw_parse, parse), (draw_history, history)]
    panels = [(fn, result) for fn, result in panels if result is not None]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (fn, result) in zip(axes[0], panels, strict=True):
        fn(ax, result)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_parse(ax, result: ParseResult) -> None:
    for name in result.parse_s:
        ax.plot(*result.curve(name), marker="o", label=name)
    ax.axhline(result.import_s, color="grey", linestyle=":", label="Airflow import (extra)")
    ax.axhline(BUDGET_S, color="red", linestyle="--", label=f"budget {BUDGET_S:g} s")
    ax.set(
        title="DAG parse (DagBag load, median)",
        xlabel="datasets in registry (and one workflow per 50)",
        ylabel="seconds",
    )
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()


def draw_history(ax, result: HistoryResult) -> None:
    merge_ms = [s * 1000 for s in result.merge_s]
    limit = 1.2 * merge_ms[0]
    ax.plot(result.points, merge_ms, marker="o", label="product merge")
    ax.axhline(
        limit, color="red", linestyle="--", label=f"target: 1.2 × merge into {result.points[0]}"
    )
    ax.set_xscale("log")
    ax.set_xticks(result.points, [str(n) for n in result.points])
    ax.minorticks_off()
    ax.set(
        title=f"Merge one {result.rows_per_day:,}-row day (median)",
        xlabel="daily partitions already in cleaned",
        ylabel="milliseconds",
    )
    ax.set_ylim(0, 1.2 * max(*merge_ms, limit))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
