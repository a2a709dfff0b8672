"""How big and how often: the full run's sizes and the smoke run's tiny ones."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Every knob of one bench run.

    :param warmup: run every variant once, untimed, before the timed rounds
    :param registry_rows: registry sizes whose DagBag parse is timed (the last one is judged)
    :param parse_repeats: timed DagBag loads per variant and size
    :param interval_rows: rows in the one interval ingested for throughput
    :param throughput_repeats: timed runs per implementation
    :param history_points: partitions already in cleaned when one more day is merged
    :param history_rows: rows per day while history is built and merged
    :param history_repeats: timed merges per point
    :param run_rows: rows in the interval of the run-overhead measure
    :param run_repeats: timed process runs per command (``airflow dags test`` included)
    """

    warmup: bool
    registry_rows: tuple[int, ...]
    parse_repeats: int
    interval_rows: int
    throughput_repeats: int
    history_points: tuple[int, ...]
    history_rows: int
    history_repeats: int
    run_rows: int
    run_repeats: int


FULL = Sizes(
    warmup=True,
    registry_rows=(100, 500, 1000),
    parse_repeats=5,
    interval_rows=1_000_000,
    throughput_repeats=3,
    history_points=(1, 30, 365),
    history_rows=5_000,
    history_repeats=15,
    run_rows=100,
    run_repeats=3,
)

SMOKE = Sizes(
    warmup=False,
    registry_rows=(5, 20),
    parse_repeats=1,
    interval_rows=5_000,
    throughput_repeats=1,
    history_points=(1, 3),
    history_rows=200,
    history_repeats=1,
    run_rows=100,
    run_repeats=1,
)
