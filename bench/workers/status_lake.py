"""A project of N daily datasets and the lake D days of their runs would leave, as far as
``pipelines status`` reads it: every table's manifest, committed through the product's own
:meth:`Table.commit`, and no data file (status reads manifests only: a Parquet read would fail).

Each dataset is incremental, with an aggregate; one in two has a ``freshness`` allowance of 1d.
Its raw manifest names a delivery a day (with the run's row count), its cleaned one a ``dt``
partition a day (rows, key range), the schema and each day's run (raw, cleaned, quarantined,
superseded, checks), its aggregate's a partition and a run a day; two workflows read the first
datasets. So that status has something to find: every 7th dataset misses three deliveries
(a gap), every 11th failed its checks one day, every 13th stopped two days early (late).

    python -m bench.workers.status_lake DATASETS DAYS   # into PIPELINES_HOME / PIPELINES_LAKE
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import yaml

from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot
from pipelines.project.config import load_project

START = dt.date(2024, 1, 1)
ROWS = 5_000  # a delivery's rows (only counted: no file holds them)
COLUMNS = (
    "dataset",
    "source",
    "primary_key",
    "incremental_field",
    "partition_field",
    "ingestion",
    "schedule",
    "start_date",
    "freshness",
)
SCHEMA = [["order_id", "int"], ["status", "string"], ["amount", "float"], ["created_at", "date"]]


def name(i: int) -> str:
    return f"ds_{i:04d}"


def stopped_early(i: int) -> bool:
    return i % 13 == 12


def has_gap(i: int) -> bool:
    return i % 7 == 6


def has_allowance(i: int) -> bool:
    return i % 2 == 1


def late(datasets: int) -> list[str]:
    """The datasets whose rows (and their aggregates') are late: stopped early, with an
    allowance."""
    return [name(i) for i in range(datasets) if stopped_early(i) and has_allowance(i)]


def with_gaps(datasets: int) -> list[str]:
    return [name(i) for i in range(datasets) if has_gap(i)]


def last_day(days: int) -> dt.date:
    """The last day the history holds (the datasets that are not late end there)."""
    return START + dt.timedelta(days=days - 1)


def write_project(include: Path, datasets: int) -> None:
    """``registry.csv``, ``aggregates.yaml`` and ``workflows.yaml`` of the synthetic project."""
    include.mkdir(parents=True, exist_ok=True)
    with (include / "registry.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for i in range(datasets):
            writer.writerow(
                [name(i), f"data/{name(i)}_{{ds}}.csv", "order_id", "created_at", "created_at"]
                + ["incremental", "@daily", START.isoformat(), "1d" if has_allowance(i) else ""]
            )
    aggregates = [
        {"name": f"{name(i)}_by_status", "dataset": name(i), "group_by": ["status"]}
        | {"metrics": {"orders": "count"}}
        for i in range(datasets)
    ]
    (include / "aggregates.yaml").write_text(yaml.safe_dump(aggregates))
    workflows = [
        {
            "name": f"flow_{k}",
            "function": "flows:run",
            "inputs": {"orders": {"table": name(k)}},
            "primary_key": ["order_id"],
        }
        for k in range(min(2, datasets))
    ]
    (include / "workflows.yaml").write_text(yaml.safe_dump(workflows))
    (include / "cookbooks.yaml").write_text("[]\n")


def build(lake: Lake, datasets: int, days: int) -> None:
    """Every table's manifest after ``days`` days of runs (see the module)."""
    project = load_project()
    for i in range(datasets):
        ran = _days(i, days)
        _commit(lake.raw(name(i)), _raw(ran))
        _commit(lake.cleaned(project.dataset(name(i))), _cleaned(i, ran))
        _commit(lake.aggregated(f"{name(i)}_by_status"), _outputs(ran, 5, "dt"))
    for spec in project.workflows:
        _commit(lake.workflow(spec.name), _outputs(_days(0, days), ROWS, "ds"))


def _days(i: int, days: int) -> list[str]:
    end = days - (2 if stopped_early(i) else 0)
    missing = {days // 2, days // 2 + 1, days // 2 + 2} if has_gap(i) else set()
    return [(START + dt.timedelta(days=d)).isoformat() for d in range(end) if d not in missing]


def _raw(ran: list[str]) -> Snapshot:
    parts = {ds: _entry("ds", ds, ROWS) for ds in ran}
    return Snapshot(0, parts, {"runs": {ds: {"rows": ROWS} for ds in ran}})


def _cleaned(i: int, ran: list[str]) -> Snapshot:
    quarantined = [(d * 7 + i) % 40 for d in range(len(ran))]
    failed = ran[len(ran) // 3] if i % 11 == 10 and ran else None
    runs = {
        ds: {
            "raw": ROWS,
            "cleaned": ROWS - q,
            "quarantined": q,
            "superseded": q // 2,
            "checks": "failed: 3 duplicate primary keys" if ds == failed else "passed",
        }
        for ds, q in zip(ran, quarantined, strict=True)
    }
    parts = {
        ds: {**_entry("dt", ds, ROWS - q), "lo": n * 10_000, "hi": n * 10_000 + ROWS}
        for n, (ds, q) in enumerate(zip(ran, quarantined, strict=True))
    }
    return Snapshot(0, parts, {"schema": SCHEMA, "runs": runs})


def _outputs(ran: list[str], rows: int, key: str) -> Snapshot:
    parts = {ds: _entry(key, ds, rows) for ds in ran}
    return Snapshot(0, parts, {"runs": {ds: {"rows": rows} for ds in ran}})


def _entry(key: str, ds: str, rows: int) -> dict:
    return {"file": f"{key}={ds}/part-00000001-synthetic.parquet", "rows": rows}


def _commit(table, history: Snapshot) -> None:
    """``history`` as the table's first version, through the real commit (no data files: the
    partitions are the base's, and the commit changes none)."""
    table.commit(history, {})


def main(argv: list[str]) -> None:
    from bench.workers.common import measured, report

    datasets, days = int(argv[0]), int(argv[1])
    from pipelines.runtime import environment

    with measured() as work:
        write_project(environment.include_dir(), datasets)
        build(Lake.from_env(), datasets, days)
    report(seconds=work.seconds, datasets=datasets, days=days)


if __name__ == "__main__":
    main(sys.argv[1:])
