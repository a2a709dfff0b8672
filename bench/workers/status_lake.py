"""A project of N daily datasets and the lake D days of their runs would leave, as far as
``pipelines status`` reads it: the namespace's runs table with every record those runs would have
appended (in one append), and every table status asks about as a Delta table written by the
product's own :func:`pipelines.lake.delta.replace` (one commit: a partition a day, each holding
one tiny row).

Status answers from the records: each day's records name the version that day's commit would
have left (day k: version k) and what it changed (the day's partition; every partition every
30th day, as :meth:`Table.commit` records them), so the tables' one commit is never opened, as
the tables of D real commits would not be. Where the records could not say, status would open
a table's log: the one-commit tables here would make that look cheaper than it is.

Each dataset is incremental, with an aggregate; one in two has a ``freshness`` allowance of 1d.
A day's runs record, as the steps append them: the raw delivery's rows and the dataset's config;
the merge's counts (raw, cleaned, quarantined, superseded; checks pending) and the config; the
quarantine's rows; the checks' outcome; the aggregate's rows and its config. Two workflows read
the first datasets and record a run a day. So that status has something to find: every 7th
dataset misses three deliveries (a gap), every 11th failed its checks one day, every 13th
stopped two days early (late).

    python -m bench.workers.status_lake DATASETS DAYS   # into PIPELINES_HOME / PIPELINES_LAKE
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from bench.workers.history_lake import append_records
from pipelines.lake import delta, frames
from pipelines.lake.holdings import WHOLE_EVERY
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Table
from pipelines.project.config import load_project
from pipelines.project.table_config import of_aggregate, of_dataset, of_workflow

START = dt.date(2024, 1, 1)
ROWS = 5_000  # a delivery's rows, as the runs record them (each partition holds one row)
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
    """Every table status opens, and the runs table, after ``days`` days of runs (see the
    module)."""
    project = load_project()
    runs = _Runs()
    for i in range(datasets):
        ran = _days(i, days)
        dataset = project.dataset(name(i))
        aggregate = project.aggregate(f"{name(i)}_by_status")
        failed = ran[len(ran) // 3] if i % 11 == 10 and ran else None
        quarantined = [(d * 7 + i) % 40 for d in range(len(ran))]
        raw, cleaned = lake.raw(name(i)), lake.cleaned(dataset)
        out = lake.aggregated(aggregate.name)
        for table, kinds in ((raw, None), (cleaned, SCHEMA), (out, None)):
            _write(table, ran, kinds)
        quarantine = lake.quarantine(name(i))
        for v, (ds, q) in enumerate(zip(ran, quarantined, strict=True)):
            counts = {"raw": ROWS, "cleaned": ROWS - q, "quarantined": q, "superseded": q // 2}
            checks = "failed: 3 duplicate primary keys" if ds == failed else "passed"
            day = _held(v, ran)
            runs.add(raw, v, ds, {"rows": ROWS}, of_dataset(dataset), day)
            runs.add(cleaned, v, ds, {**counts, "checks": "pending"}, of_dataset(dataset), day)
            runs.add(quarantine, -1, ds, {"rows": q})
            runs.add(cleaned, v, ds, {**counts, "checks": checks})
            runs.add(out, v, ds, {"rows": 5}, of_aggregate(aggregate), day)
    for spec in project.workflows:
        table, ran = lake.workflow(spec.name), _days(0, days)
        _write(table, ran, None)
        for v, ds in enumerate(ran):
            metrics = {"rows": ROWS, "metrics": {}}
            runs.add(table, v, ds, metrics, of_workflow(spec), _held(v, ran))
    append_records(lake.run_log(), runs.records)


def _held(version: int, ran: list[str]) -> dict:
    """What the record of the commit of day ``ran[version]`` says the table holds, as
    :meth:`Table.commit` records it: the day's partition (one row, as :func:`_write` wrote it)
    added to what the version before held; every partition so far every
    :data:`~pipelines.lake.holdings.WHOLE_EVERY` commits (the first one too)."""
    if version % WHOLE_EVERY == 0:
        return {"rows": dict.fromkeys(ran[: version + 1], 1)}
    return {"since": version - 1, "rows": {ran[version]: 1}, "gone": []}


def _days(i: int, days: int) -> list[str]:
    end = days - (2 if stopped_early(i) else 0)
    missing = {days // 2, days // 2 + 1, days // 2 + 2} if has_gap(i) else set()
    return [(START + dt.timedelta(days=d)).isoformat() for d in range(end) if d not in missing]


def _write(table: Table, ran: list[str], kinds: list[list[str]] | None) -> int:
    """A partition for each day of ``ran`` holding one row, in one commit of the product's own
    Delta write (field metadata as :func:`frames.to_arrow` gives it); the table's version."""
    frame = pd.DataFrame(
        {
            "order_id": pd.array(range(len(ran)), dtype="Int64"),
            "status": pd.array(["paid"] * len(ran), dtype="string"),
            "amount": pd.array([1.0] * len(ran), dtype="Float64"),
            "created_at": pd.to_datetime(pd.Series(ran)).astype("datetime64[s]"),
            table.key: pd.Series(ran, dtype="str"),
        }
    )
    data = frames.to_arrow(frame, dict(kinds) if kinds else None)
    return delta.replace(table.path, table.storage, data, key=table.key, partitions=None, base=None)


class _Runs:
    """Run records, a list per column of the runs table, in the order the steps append them."""

    def __init__(self) -> None:
        self.records: dict[str, list] = {
            c: []
            for c in ("table", "ds", "version", "metrics", "config", "recorded_at", "partitions")
        }
        self.now = int(time.time() * 1_000_000)

    def add(
        self, table: Table, version: int, ds: str, metrics: dict, config=None, held=None
    ) -> None:
        records = self.records
        records["table"].append(table.runs[1])
        records["ds"].append(ds)
        records["version"].append(version)
        records["metrics"].append(json.dumps(metrics, sort_keys=True))
        records["config"].append(json.dumps(config) if config is not None else None)
        records["recorded_at"].append(self.now + len(records["recorded_at"]))
        records["partitions"].append(json.dumps(held, sort_keys=True) if held else None)


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
