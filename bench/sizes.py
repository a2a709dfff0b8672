"""How big and how often: the full run's sizes and the smoke run's tiny ones."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Every knob of one bench run.

    :param warmup: run every variant once, untimed, before the timed rounds
    :param registry_rows: registry sizes of the parse curve, every variant at each
    :param parse_repeats: timed DagBag loads per variant and size of the curve
    :param big_registry_rows: the large registry parsed after the curve (product and floor)
    :param big_parse_repeats: timed DagBag loads per variant of the large registry (no warm-up:
        the curve has compiled and cached everything a load reads)
    :param big_parse_peer: parse the large registry with dag-factory too
    :param interval_rows: rows in the one interval ingested for throughput
    :param throughput_repeats: timed runs per implementation
    :param big_interval_rows: rows in the large interval (one run per implementation)
    :param big_interval_pandas: run the plain pandas script on the large interval too
    :param history_points: partitions already in cleaned when one more day is merged
    :param history_rows: rows per day while history is built and merged
    :param history_repeats: timed merges (and reads) per point
    :param run_rows: rows in the interval of the run-overhead measure
    :param run_repeats: timed process runs per command (``airflow dags test`` included)
    :param status_datasets: datasets (each with an aggregate) in the lake ``pipelines status``
        reads
    :param status_days: daily partitions of each
    :param status_repeats: timed ``pipelines status`` processes
    :param scale_rows: rows in the interval of the scale run (``--only scale``)
    :param scale_chunk_rows: rows generated at a time for it
    :param database_rows: rows of the PostgreSQL table the database source reads
    :param database_repeats: timed runs of its extract and of the plain psycopg script
    :param database_one_chunk: one more run of the extract, the table as one chunk
    """

    warmup: bool
    registry_rows: tuple[int, ...]
    parse_repeats: int
    big_registry_rows: int
    big_parse_repeats: int
    big_parse_peer: bool
    interval_rows: int
    throughput_repeats: int
    big_interval_rows: int
    big_interval_pandas: bool
    history_points: tuple[int, ...]
    history_rows: int
    history_repeats: int
    run_rows: int
    run_repeats: int
    status_datasets: int
    status_days: int
    status_repeats: int
    scale_rows: int
    scale_chunk_rows: int
    database_rows: int
    database_repeats: int
    database_one_chunk: bool


FULL = Sizes(
    warmup=True,
    registry_rows=(100, 500, 1000),
    parse_repeats=5,
    big_registry_rows=5000,
    big_parse_repeats=3,
    big_parse_peer=False,
    interval_rows=1_000_000,
    throughput_repeats=3,
    big_interval_rows=10_000_000,
    big_interval_pandas=False,
    history_points=(1, 30, 365, 3650),
    history_rows=5_000,
    history_repeats=15,
    run_rows=100,
    run_repeats=3,
    status_datasets=100,
    status_days=365,
    status_repeats=5,
    scale_rows=50_000_000,
    scale_chunk_rows=5_000_000,
    database_rows=1_000_000,
    database_repeats=3,
    database_one_chunk=True,
)

SMOKE = Sizes(
    warmup=False,
    registry_rows=(5, 20),
    parse_repeats=1,
    big_registry_rows=50,
    big_parse_repeats=1,
    big_parse_peer=True,
    interval_rows=5_000,
    throughput_repeats=1,
    big_interval_rows=20_000,
    big_interval_pandas=True,
    history_points=(1, 3, 30),
    history_rows=200,
    history_repeats=1,
    run_rows=100,
    run_repeats=1,
    status_datasets=5,
    status_days=30,
    status_repeats=1,
    scale_rows=30_000,
    scale_chunk_rows=10_000,
    database_rows=20_000,
    database_repeats=1,
    database_one_chunk=False,
)
