"""Measure 1: DagBag parse time of the product's ``dags/`` vs the floor and dag-factory.

For each registry size, three DAGs folders describe the same DAGs: one per registry row (ids,
timetable, catchup, max_active_runs, four task groups of one task each) and one per workflow
(:func:`bench.synth.synthetic_workflows`: one per 50 rows, on the partitioned-asset timetable of
its inputs, one task): the project's own ``dags/``, the hand-written floor
(:mod:`bench.dagfiles.floor_dags`) and dag-factory reading generated YAML. Each load runs in a
fresh child process that times the Airflow import and the DagBag load apart. After the curve, the
large registry is parsed by the product and the floor (and dag-factory when asked).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import synth
from bench.dagfiles.shape import CRON, STEPS, WORKFLOW_STEP, workflow_assets
from bench.measure import BenchError, Sample, median, run_python, side_by_side
from bench.report import Row, at_most, grid, less_than, seconds
from bench.sandbox import NAMESPACE, PROJECT_DAGS, Sandbox
from bench.sizes import Sizes

DAGFILES = Path(__file__).with_name("dagfiles")
PYTHON_OPERATOR = "airflow.providers.standard.operators.python.PythonOperator"
NOOP = "bench.dagfiles.shape.noop"
TIMETABLE = "airflow.sdk.CronDataIntervalTimetable"
PRODUCT, FLOOR, PEER = "product", "floor", "dag-factory"
BUDGET_S = 3.0  # a tenth of Airflow's 30 s DAG file import timeout


@dataclass(frozen=True)
class ParseResult:
    """Median parse seconds per variant at every size (None: not parsed at that size), and the
    median Airflow import.

    :param sizes: the curve's registry sizes, then the large one
    :param workflows: the workflows declared at each size
    """

    sizes: tuple[int, ...]
    workflows: tuple[int, ...]
    parse_s: dict[str, list[float | None]]
    import_s: float

    def curve(self, name: str) -> tuple[list[int], list[float]]:
        """The sizes a variant was parsed at, and its medians there."""
        pairs = [
            (n, s) for n, s in zip(self.sizes, self.parse_s[name], strict=True) if s is not None
        ]
        return [n for n, _ in pairs], [s for _, s in pairs]


def measure(workdir: Path, sizes: Sizes, peers_site: Path) -> ParseResult:
    """Time every variant at every size of the curve, then the large registry, side by side."""
    parse_s: dict[str, list[float | None]] = {PRODUCT: [], FLOOR: [], PEER: []}
    imports: list[Sample] = []
    plan = [(n, sizes.parse_repeats, sizes.warmup, True) for n in sizes.registry_rows]
    plan.append((sizes.big_registry_rows, sizes.big_parse_repeats, False, sizes.big_parse_peer))
    workflows = []
    for size, repeats, warmup, peer in plan:
        sandbox = Sandbox(workdir / f"parse-{size}").create()
        variants, declared = _variants(sandbox, size, peers_site, peer)
        workflows.append(declared)
        samples = side_by_side(variants, repeats, warmup=warmup)
        for name in parse_s:
            parse_s[name].append(median(samples[name], "parse_s") if name in samples else None)
        imports.extend(run for runs in samples.values() for run in runs)
    return ParseResult(
        (*sizes.registry_rows, sizes.big_registry_rows),
        tuple(workflows),
        parse_s,
        median(imports, "import_s"),
    )


def rows(result: ParseResult) -> list[Row]:
    """The curve's largest registry against the floor, the peer and the budget; the large
    registry against the floor and the budget (and the peer, when it was parsed)."""
    return [*_curve_rows(result, -2), *_big_rows(result, -1)]


def _curve_rows(result: ParseResult, at: int) -> list[Row]:
    product, floor, peer = (result.parse_s[name][at] for name in (PRODUCT, FLOOR, PEER))
    what = _what(result, at)
    return [
        Row(
            f"{what} vs floor",
            seconds(product),
            f"floor {seconds(floor)}",
            product / floor,
            at_most(1.5),
        ),
        _peer_row(what, product, peer),
        Row(
            f"{what}, absolute",
            seconds(product),
            f"floor {seconds(floor)}",
            product,
            less_than(BUDGET_S, "s"),
        ),
        Row(
            f"{what} incl. Airflow import ({seconds(result.import_s)}) vs floor",
            seconds(result.import_s + product),
            f"floor {seconds(result.import_s + floor)}",
            (result.import_s + product) / (result.import_s + floor),
            None,
        ),
    ]


def _big_rows(result: ParseResult, at: int) -> list[Row]:
    product, floor, peer = (result.parse_s[name][at] for name in (PRODUCT, FLOOR, PEER))
    what = _what(result, at)
    unreachable = (
        f"the floor itself takes {seconds(floor)}: unreachable by a factory"
        if floor > BUDGET_S
        else ""
    )
    out = [
        Row(
            f"{what} vs floor",
            seconds(product),
            f"floor {seconds(floor)}",
            product / floor,
            at_most(1.3),
        ),
        Row(
            f"{what}, absolute",
            seconds(product),
            f"floor {seconds(floor)}",
            product,
            at_most(BUDGET_S, "s"),
            note=f"a tenth of Airflow's 30 s import timeout; {unreachable}".rstrip("; "),
        ),
    ]
    if peer is not None:
        out.append(_peer_row(what, product, peer))
    return out


def _peer_row(what: str, product: float, peer: float) -> Row:
    return Row(
        f"{what} vs dag-factory",
        seconds(product),
        f"dag-factory {seconds(peer)}",
        product / peer,
        less_than(1.0),
    )


def _what(result: ParseResult, at: int) -> str:
    workflows = result.workflows[at]
    return (
        f"DAG parse, {result.sizes[at]} datasets + {workflows} "
        f"workflow{'' if workflows == 1 else 's'}"
    )


def details(result: ParseResult) -> str:
    """Median DagBag load seconds (Airflow import excluded) at every size."""
    names = (PRODUCT, FLOOR, PEER)
    lines = [
        (
            str(size),
            str(result.workflows[i]),
            *(seconds(s) if (s := result.parse_s[n][i]) is not None else "—" for n in names),
        )
        for i, size in enumerate(result.sizes)
    ]
    return (
        f"DAG parse, median DagBag load (Airflow import excluded, "
        f"{seconds(result.import_s)} on top):\n\n" + grid(("datasets", "workflows", *names), lines)
    )


def _variants(
    sandbox: Sandbox, size: int, peers_site: Path, peer: bool
) -> tuple[dict[str, Callable[[], Sample]], int]:
    """The variants' loaders at one registry size, and the number of workflows declared."""
    registry = synth.synthetic_registry(size)
    workflows = synth.synthetic_workflows(registry)
    synth.write_project(sandbox.include, registry, workflows)
    floor = _folder(sandbox.root / "floor", "floor_dags.py")
    expected = (size + len(workflows), size * len(STEPS) + len(workflows))
    variants = {
        PRODUCT: _loader(sandbox, PROJECT_DAGS, expected),
        FLOOR: _loader(sandbox, floor, expected),
    }
    if peer:
        folder = _folder(sandbox.root / "dagfactory", "dagfactory_dags.py")
        config = _dagfactory_config(registry, workflows, str(sandbox.lake))
        (folder / "dags.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
        variants[PEER] = _loader(sandbox, folder, expected, python_path=(peers_site,))
    return variants, len(workflows)


def _folder(folder: Path, dag_file: str) -> Path:
    folder.mkdir(exist_ok=True)
    shutil.copy(DAGFILES / dag_file, folder)
    return folder


def _loader(
    sandbox: Sandbox, folder: Path, expected: tuple[int, int], python_path: tuple[Path, ...] = ()
) -> Callable[[], Sample]:
    env = sandbox.env(dags_folder=folder, python_path=python_path)

    def load() -> Sample:
        sample = run_python("bench.workers.dagbag", str(folder), env=env)
        got = (sample.result["dags"], sample.result["tasks"])
        if got != expected or sample.result["errors"]:
            raise BenchError(
                f"{folder}: (DAGs, tasks) {got}, expected {expected}; "
                f"errors: {sample.result['errors']}"
            )
        return sample

    return load


def _dagfactory_config(
    registry: list[dict[str, str]], workflows: list[dict], lake: str
) -> dict[str, dict]:
    """dag-factory's YAML for the registry and the workflows: one entry per DAG, the product's
    shape."""
    config = {f"{NAMESPACE}__{row['dataset']}": _dagfactory_dag(row) for row in registry}
    start = max((row["start_date"] for row in registry), default="2020-01-01")
    config.update(
        {
            f"{NAMESPACE}__workflow__{entry['name']}": _dagfactory_workflow(entry, lake, start)
            for entry in workflows
        }
    )
    return config


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


def _dagfactory_workflow(entry: dict, lake: str, start: str) -> dict:
    """A workflow's DAG: the partitioned-asset timetable built from ``__type__`` entries."""
    landed, rewritten = workflow_assets(lake, NAMESPACE, entry)

    def asset(kwargs: dict) -> dict:
        return {"__type__": "airflow.sdk.Asset", **kwargs}

    group, task = WORKFLOW_STEP
    return {
        "default_args": {"owner": entry.get("owner", "pipelines"), "start_date": start},
        "schedule": {
            "__type__": "airflow.sdk.PartitionedAssetTimetable",
            "assets": {
                "__type__": "airflow.sdk.AssetAny",
                "__args__": [
                    {"__type__": "airflow.sdk.AssetAll", "__args__": list(map(asset, landed))},
                    *map(asset, rewritten),
                ],
            },
            "default_partition_mapper": {"__type__": "airflow.sdk.IdentityMapper"},
        },
        "catchup": False,
        "max_active_runs": 1,
        "description": entry.get("description", ""),
        "tags": ["workflow"],
        "task_groups": {group: {}},
        "tasks": {
            task: {"operator": PYTHON_OPERATOR, "python_callable": NOOP, "task_group_name": group}
        },
    }
