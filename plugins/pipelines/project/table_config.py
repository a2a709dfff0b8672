"""The config a table was last written with, as its manifest records it (``meta["config"]``).

One small function per kind says which of an entry's fields decide what its table holds: a
dataset's source, keys, ingestion, schedule and checks (not its owner, description or tags), an
aggregate's grain and metrics, a workflow's function, inputs, params and key. Each gives a
JSON-safe dict in a fixed order, so the same config always records the same bytes; the writers
(extract, merge, aggregate, a workflow's run) pass it to their commit and ``pipelines plan``
compares it with the project's.

A cookbook has no table: its last run records its steps in ``{namespace}/_cookbooks/NAME.json``.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.lake.lake import Lake
from pipelines.lake.tables import Snapshot, Table, commit_with_retry
from pipelines.project.aggregates import AggregateSpec
from pipelines.project.cookbooks import CookbookSpec
from pipelines.project.registry import Dataset
from pipelines.project.workflows import WorkflowSpec
from pipelines.runtime.secrets import redact

CONFIG = "config"  # the manifest's meta key
RETIRED = "retired"  # set in a recorded config by `plan --apply` once its entry left the project
COOKBOOKS = "_cookbooks"  # {namespace}/_cookbooks/NAME.json: a cookbook's last run


def of_dataset(dataset: Dataset) -> dict[str, Any]:
    """What decides a dataset's raw and cleaned tables (the source with secrets redacted), and its
    declared columns (``columns``) when ``columns.yaml`` has an entry for it."""
    options = dataset.options
    config = {
        "source": redact(dataset.source),
        "format": dataset.format,
        "ingestion": str(dataset.ingestion),
        "primary_key": list(dataset.primary_key),
        "incremental_field": dataset.incremental_field,
        "partition_field": dataset.partition_field,
        "schedule": dataset.schedule,
        "cron": dataset.cron,
        "start_date": dataset.start_date.isoformat(),
        "options": {
            "delimiter": options.delimiter,
            "encoding": options.encoding,
            "nulls": list(options.nulls),
            "epoch": options.epoch,
        },
        "on_schema_change": str(dataset.on_schema_change),
        "max_drop_pct": dataset.max_drop_pct,
        "max_quarantine_pct": dataset.max_quarantine_pct,
    }
    if dataset.declared is not None:  # only then: an undeclared dataset records what it did
        config["columns"] = dataset.declared.as_config()
    return config


def of_aggregate(spec: AggregateSpec) -> dict[str, Any]:
    """An aggregate's dataset, grain and metrics (``output: function[:column]``, in order)."""
    return {
        "dataset": spec.dataset,
        "group_by": list(spec.group_by),
        "metrics": {out: f"{fn}:{col}" if col else fn for out, fn, col in spec.metrics},
    }


def of_workflow(spec: WorkflowSpec) -> dict[str, Any]:
    """A workflow's function, inputs (table, layer, window), params, key and schedule."""
    return {
        "function": spec.function,
        "inputs": {
            i.alias: {"table": i.table, "layer": str(i.layer), "window": str(i.window)}
            for i in spec.inputs
        },
        "params": json.loads(json.dumps(dict(spec.params), default=str)),
        "primary_key": list(spec.primary_key),
        "schedule": spec.schedule,
        "cron": spec.cron,
    }


def of_cookbook(spec: CookbookSpec) -> dict[str, Any]:
    """A cookbook's schedule and steps (each with the steps it waits for)."""
    return {
        "schedule": spec.schedule,
        "cron": spec.cron,
        "steps": {c.name: list(c.after) for c in spec.children},
    }


def recorded(snapshot: Snapshot) -> dict[str, Any] | None:
    """The config a table's newest version records (None: written before configs were)."""
    config = snapshot.meta.get(CONFIG)
    return dict(config) if isinstance(config, dict) else None


def record(table: Table, config: dict[str, Any]) -> None:
    """Commit ``config`` as the table's without touching its data (``plan --apply`` for a change
    that needs no run, or a table whose config was never recorded)."""
    commit_with_retry(table, lambda base: table.commit(base, {}, {CONFIG: config}))


def record_cookbook(lake: Lake, spec: CookbookSpec) -> None:
    """Keep the steps a cookbook ran with (one small file, rewritten only when they change)."""
    path = f"{lake.prefix}/{COOKBOOKS}/{spec.name}.json"
    body = json.dumps(of_cookbook(spec), separators=(",", ":")).encode()
    try:
        if lake.storage.read(path) == body:
            return
    except FileNotFoundError:
        pass
    lake.storage.write(path, body)


def retire_cookbook(lake: Lake, name: str) -> None:
    """Forget a cookbook the project no longer has (``plan --apply``)."""
    lake.storage.delete([f"{lake.prefix}/{COOKBOOKS}/{name}.json"])


def cookbooks_in(lake: Lake) -> dict[str, dict[str, Any]]:
    """The cookbooks whose runs recorded their steps in the namespace, by name."""
    found: dict[str, dict[str, Any]] = {}
    folder = f"{lake.prefix}/{COOKBOOKS}"
    for name in sorted(lake.storage.list(folder)):
        if name.endswith(".json"):
            try:
                found[name[:-5]] = json.loads(lake.storage.read(f"{folder}/{name}"))
            except (FileNotFoundError, ValueError):
                continue
    return found
