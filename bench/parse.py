"""Measure 1: DagBag parse time of the product's ``dags/`` vs the floor and dag-factory.

For each registry size, three DAGs folders describe the same DAGs (ids, timetable, catchup,
max_active_runs, four task groups of one task each): the project's own ``dags/``, the hand-written
floor (:mod:`bench.dagfiles.floor_dags`) and dag-factory reading generated YAML. Each load runs in
a fresh child process that times the Airflow import and the DagBag load apart.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import synth
from bench.dagfiles.shape import CRON, STEPS
from bench.measure import BenchError, Sample, median, run_python, side_by_side
from bench.report import Row, at_most, grid, less_than, seconds
from bench.sandbox import NAMESPACE, PROJECT_DAGS, Sandbox
from bench.sizes import Sizes

DAGFILES = Path(__file__).with_name("dagfiles")
PYTHON_OPERATOR = "airflow.providers.standard.operators.python.PythonOperator"
NOOP = "bench.dagfiles.shape.noop"
TIMETABLE = "airflow.sdk.CronDataIntervalTimetable"
PRODUCT, FLOOR, PEER = "product", "floor", "dag-factory"
BUDGET_S = 3.0


@dataclass(frozen=True)
class ParseResult:
    """Median parse seconds per variant and registry size, and the median Airflow import."""

    sizes: tuple[int, ...]
    parse_s: dict[str, list[float]]
    import_s: float


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> ParseResult:
    """Time every variant at every registry size, side by side."""
    parse_s: dict[str, list[float]] = {PRODUCT: [], FLOOR: [], PEER: []}
    imports: list[Sample] = []
    for size in sizes.registry_rows:
        sandbox = Sandbox(workdir / f"parse-{size}").create()
        variants = _variants(sandbox, size, peers_site)
        samples = side_by_side(variants, sizes.parse_repeats, warmup=sizes.warmup)
        for name, runs in samples.items():
            parse_s[name].append(median(runs, "parse_s"))
            imports.extend(runs)
    return ParseResult(sizes.registry_rows, parse_s, median(imports, "import_s"))


def rows(result: ParseResult) -> list[Row]:
    """The judged rows: the largest registry against the floor, the peer and the budget."""
    size = result.sizes[-1]
    product, floor, peer = (result.parse_s[name][-1] for name in (PRODUCT, FLOOR, PEER))
    what = f"DAG parse, {size} datasets"
    return [
        Row(
            f"{what} vs floor",
            seconds(product),
            f"floor {seconds(floor)}",
            product / floor,
            at_most(1.5),
        ),
        Row(
            f"{what} vs dag-factory",
            seconds(product),
            f"dag-factory {seconds(peer)}",
            product / peer,
            less_than(1.0),
        ),
        Row(
            f"{what}, absolute",
            seconds(product),
            f"budget {seconds(BUDGET_S)}",
            product / BUDGET_S,
            less_than(1.0),
        ),
        Row(
            f"{what} incl. Airflow import ({seconds(result.import_s)}) vs floor",
            seconds(result.import_s + product),
            f"floor {seconds(result.import_s + floor)}",
            (result.import_s + product) / (result.import_s + floor),
            None,
        ),
    ]


def details(result: ParseResult) -> str:
    """Median DagBag load seconds (Airflow import excluded) at every size."""
    names = (PRODUCT, FLOOR, PEER)
    lines = [
        (str(size), *(seconds(result.parse_s[n][i]) for n in names))
        for i, size in enumerate(result.sizes)
    ]
    return (
        f"DAG parse, median DagBag load (Airflow import excluded, "
        f"{seconds(result.import_s)} on top):\n\n" + grid(("datasets", *names), lines)
    )


def _variants(sandbox: Sandbox, size: int, peers_site: Path) -> dict[str, Callable[[], Sample]]:
    registry = synth.synthetic_registry(size)
    synth.write_project(sandbox.include, registry)
    floor = _folder(sandbox.root / "floor", "floor_dags.py")
    peer = _folder(sandbox.root / "dagfactory", "dagfactory_dags.py")
    (peer / "dags.yaml").write_text(yaml.safe_dump(_dagfactory_config(registry), sort_keys=True))
    return {
        PRODUCT: _loader(sandbox, PROJECT_DAGS, size),
        FLOOR: _loader(sandbox, floor, size),
        PEER: _loader(sandbox, peer, size, python_path=(peers_site,)),
    }


def _folder(folder: Path, dag_file: str) -> Path:
    folder.mkdir(exist_ok=True)
    shutil.copy(DAGFILES / dag_file, folder)
    return folder


def _loader(
    sandbox: Sandbox, folder: Path, expected: int, python_path: tuple[Path, ...] = ()
) -> Callable[[], Sample]:
    env = sandbox.env(dags_folder=folder, python_path=python_path)

    def load() -> Sample:
        sample = run_python("bench.workers.dagbag", str(folder), env=env)
        got = (sample.result["dags"], sample.result["tasks"])
        if got != (expected, expected * len(STEPS)) or sample.result["errors"]:
            raise BenchError(
                f"{folder}: (DAGs, tasks) {got}, expected {(expected, expected * len(STEPS))}; "
                f"errors: {sample.result['errors']}"
            )
        return sample

    return load


def _dagfactory_config(registry: list[dict[str, str]]) -> dict[str, dict]:
    """dag-factory's YAML for the registry: one entry per DAG, the product's shape."""
    return {f"{NAMESPACE}__{row['dataset']}": _dagfactory_dag(row) for row in registry}


def _dagfactory_dag(row: dict[str, str]) -> dict:
    groups = [group for group, _ in STEPS]
    return {
        "default_args": {"owner": row["owner"], "start_date": row["start_date"]},
        "schedule": {"__type__": TIMETABLE, "expression": CRON[row["schedule"]], "timezone": "UTC"},
        "catchup": True,
        "max_active_runs": int(row["max_active_runs"]),
        "description": row["description"],
        "tags": sorted(row["tags"].split("|")),
        "task_groups": {
            group: {"dependencies": groups[i - 1 : i]} if i else {}
            for i, group in enumerate(groups)
        },
        "tasks": {
            task: {"operator": PYTHON_OPERATOR, "python_callable": NOOP, "task_group_name": group}
            for group, task in STEPS
        },
    }
