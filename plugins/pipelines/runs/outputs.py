"""What a run produced, by plain name: its counts, checks and metrics, and the tables it wrote.

One run's outputs are computed from what its tasks returned (:func:`outputs_of`): the local
runner's outcome holds those return values, and on a real Airflow the run-wait endpoint returns
them (each step is a result task of its DAG), so a run has the same outputs wherever it ran.

- a **dataset**: ``rows_raw``, ``rows_cleaned``, ``rows_quarantined``, ``rows_superseded``
  (duplicate keys), ``rows_{aggregate}`` for each aggregate, ``rows_checked`` and ``checks``
  (the quality gate's outcome, ``passed``; for a run whose check failed the client adds the
  failed tests its dataset recorded, as ``failed: ...``);
- a **workflow**: the metrics its function published (``accuracy``) and ``rows_written``;
- a **cookbook**: its own ``passed``, ``failed`` and ``checked`` (the checks of ``verify``), each
  child's outputs as ``{child}.{output}``, and a child workflow's metric by its bare name too
  when only one child publishes that name and the cookbook has no output of that name.

:class:`Outputs` is the mapping a submission returns: those values, and the tables
(``outputs.tables["cleaned.orders"]``, read from the lake when first asked for; also
``outputs["cleaned.orders"]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pipelines.project.config import Kind
from pipelines.wiring.task_ids import AGGREGATE, CHECK, EXTRACT, MERGE, VERIFY, WORKFLOW


def outputs_of(kind: Kind, results: Mapping[str, Any]) -> dict[str, Any]:
    """The plain-name outputs of one run of a ``kind`` entry from its tasks' return values
    (``{task_id: value}``; a task that did not finish has none, and gives no outputs)."""
    return _OUTPUTS[kind](results)


def _dataset(results: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if EXTRACT in results:
        found["rows_raw"] = results[EXTRACT]["rows"]
    if MERGE in results:
        merged = results[MERGE]
        found["rows_cleaned"] = merged["delivered"]
        found["rows_quarantined"] = merged["quarantined"]
        found["rows_superseded"] = merged["superseded"]
    if CHECK in results:
        found["rows_checked"] = results[CHECK]["rows_checked"]
        found["checks"] = results[CHECK].get("checks", "passed")
    for name, rows in (results.get(AGGREGATE) or {}).items():
        if not name.startswith("_"):  # the per-table details
            found[f"rows_{name}"] = rows
    return found


def _workflow(results: Mapping[str, Any]) -> dict[str, Any]:
    ran = results.get(WORKFLOW)
    if not ran:
        return {}
    return {"rows_written": ran["rows"], **ran["metrics"]}


def _cookbook(results: Mapping[str, Any]) -> dict[str, Any]:
    checked = results.get(VERIFY)
    if not checked:
        return {}
    passed, failed = checked["passed"], checked["failed"]
    return {"passed": passed, "failed": failed, "checked": passed + failed}


_OUTPUTS = {Kind.DATASET: _dataset, Kind.WORKFLOW: _workflow, Kind.COOKBOOK: _cookbook}


def with_children(
    own: Mapping[str, Any],
    children: Mapping[str, Mapping[str, Any]],
    workflows: Sequence[str] = (),
) -> dict[str, Any]:
    """A cookbook's outputs: its own, each child's as ``{child}.{name}``, and the metrics of its
    ``workflows`` (children) by bare name where that name is theirs alone."""
    found = dict(own)
    bare: dict[str, list[Any]] = {}
    for child, outputs in children.items():
        for name, value in outputs.items():
            found[f"{child}.{name}"] = value
            if child in workflows and "." not in name:
                bare.setdefault(name, []).append(value)
    for name, values in bare.items():
        if len(values) == 1 and name not in found:
            found[name] = values[0]
    return found


def latest(days: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Outputs of several days as one: each name's value from the latest day that has it."""
    found: dict[str, Any] = {}
    for outputs in days:
        found.update(outputs)
    return found


class Outputs(Mapping):
    """A submission's outputs by plain name (see the module), and its tables.

    :param values: name -> value (counts, checks, metrics)
    :param tables: the lazily read tables, ``{layer}.{name}``
    :param metrics_day: the day the values are of (the last submitted day whose runs all
        succeeded; None: no run succeeded, and there are no values)
    """

    def __init__(
        self, values: Mapping[str, Any], tables: Tables, metrics_day: str | None = None
    ) -> None:
        self._values = dict(values)
        self.tables = tables
        self.metrics_day = metrics_day

    def __getitem__(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        if key in self.tables:
            return self.tables[key]
        raise KeyError(f"{key!r}; outputs are: {', '.join(self) or 'none'}")

    def __iter__(self) -> Iterator[str]:
        return iter([*self._values, *self.tables])

    def __len__(self) -> int:
        return len(self._values) + len(self.tables)

    @property
    def metrics(self) -> dict[str, Any]:
        """The values alone (no tables), by name."""
        return dict(self._values)

    def as_dict(self) -> dict[str, Any]:
        """The values, JSON-ready (what ``pipelines submit --json`` prints)."""
        return dict(self._values)


class Tables(Mapping):
    """``{layer}.{name}`` -> the table as a DataFrame, read from the lake when first asked for.

    Raw and quarantine hold the submitted days' deliveries only; cleaned and aggregated tables
    are read whole, as they stand; a workflow's table holds every day (with ``ds``).
    """

    def __init__(self, keys: Sequence[str], namespace: str, days: Sequence[str]) -> None:
        self._keys = list(keys)
        self._namespace = namespace
        self._days = list(days)
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(f"{key!r}; tables are: {', '.join(self._keys) or 'none'}")
        if key not in self._cache:
            from pipelines.inspection.reader import read, read_deliveries  # pandas: only when asked

            layer, name = key.split(".", 1)
            if layer in ("raw", "quarantine"):
                frame = read_deliveries(name, layer, self._days, self._namespace)
            else:
                frame = read(name, layer, self._namespace)
            self._cache[key] = frame
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
