"""The layers of the package, as the README's layout section states them, and a guard on them.

Every module of ``plugins/pipelines`` sits in one layer; a module imports only from its own layer
or the ones below it (imports inside functions count too), and no import cycle exists. A new
module fails :func:`test_every_module_has_a_layer` until it is given its place here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "pipelines"

# From the top down. Within components/, the shared operators are wiring; the rest are
# ingredients, which never import a step, the config or an operator.
LAYERS: dict[str, tuple[str, ...]] = {
    "entry points": (
        "pipelines",
        "pipelines.cli",
        "pipelines.cli.project",
        "pipelines.cli.runs",
        "pipelines.cli.lake",
        "pipelines.cli.text",
        "pipelines.cli.namespaces",
        "pipelines.cli.remote",
        "pipelines.cli.plan",
        "pipelines.cli.status",
        "pipelines.client",
        "pipelines.testing",
        "pipelines.timetable",
        "pipelines.freshness",
    ),
    "airflow wiring": (
        "pipelines.wiring",
        "pipelines.wiring.factory",
        "pipelines.wiring.task_ids",
        "pipelines.wiring.stages",
        "pipelines.wiring.timetable",
        "pipelines.runs",
        "pipelines.runs.local",
        "pipelines.runs.local_run",
        "pipelines.runs.supervisor",
        "pipelines.runs.dag_folder",
        "pipelines.wiring.cookbooks",
        "pipelines.runs.cookbook",
        "pipelines.wiring.operators",
        "pipelines.wiring.lineage",
        "pipelines.runs.outputs",
        "pipelines.runs.airflow_rest",
    ),
    "steps": (
        "pipelines.steps",
        "pipelines.steps.dataset",
        "pipelines.steps.merge",
        "pipelines.steps.aggregate",
        "pipelines.steps.schema",
        "pipelines.steps.sources",
        "pipelines.inspection",
        "pipelines.inspection.reader",
        "pipelines.project.run_dates",
        "pipelines.wiring.freshness",
        "pipelines.inspection.header_check",
        "pipelines.inspection.cookbook_checks",
        "pipelines.steps.workflow",
        "pipelines.steps.output",
        "pipelines.inspection.diff",
        "pipelines.plan",
        "pipelines.plan.compare",
        "pipelines.plan.rules",
        "pipelines.plan.changes",
        "pipelines.inspection.status",
        "pipelines.inspection.status_page",
    ),
    "config": (
        "pipelines.project",
        "pipelines.project.config",
        "pipelines.project.workflows",
        "pipelines.project.registry",
        "pipelines.project.registry_values",
        "pipelines.project.namespaces",
        "pipelines.project.table_config",
    ),
    "ingredients": (
        "pipelines.runtime",
        "pipelines.runtime.environment",
        "pipelines.runtime.branch",
        "pipelines.runtime.bundles",
        "pipelines.runtime.secrets",
        "pipelines.lake.storage",
        "pipelines.lake.tables",
        "pipelines.lake",
        "pipelines.lake.lake",
    ),
    "ground": (
        "pipelines.common",
        "pipelines.common.partitions",
        "pipelines.common.windows",
        "pipelines.common.transforms",
        "pipelines.exceptions",
    ),
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, me: str, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in it (functions included)."""
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (a package's ``__init__`` is not implied)."""
    files = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    top = root.name
    return {m: imported_modules(p, m, modules) - {top} for m, p in files.items()}


def upward_imports(graph: dict[str, set[str]], layers: dict[str, tuple[str, ...]]) -> list[str]:
    """``a -> b`` for every import from a layer to one above it."""
    rank = {m: i for i, members in enumerate(layers.values()) for m in members}
    names = list(layers)
    return sorted(
        f"{m} ({names[rank[m]]}) -> {n} ({names[rank[n]]})"
        for m, targets in graph.items()
        for n in targets
        if m in rank and n in rank and rank[n] < rank[m]
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as the path that closes it (depth-first, each found once)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_every_module_has_a_layer():
    placed = [m for members in LAYERS.values() for m in members]
    assert len(placed) == len(set(placed)), "a module is in two layers"
    assert sorted(import_graph(PACKAGE)) == sorted(placed)


def test_imports_point_down():
    assert upward_imports(import_graph(PACKAGE), LAYERS) == []


def test_no_import_cycle():
    assert cycles(import_graph(PACKAGE)) == []


def test_ingredients_import_no_step_config_or_operator():
    graph = import_graph(PACKAGE)
    above = {m for layer in ("airflow wiring", "steps", "config") for m in LAYERS[layer]}
    for ingredient in LAYERS["ingredients"]:
        assert graph[ingredient] & above == set(), ingredient


@pytest.fixture
def toy(tmp_path):
    """A package ``toy`` whose bottom module imports its top one inside a function."""
    root = tmp_path / "toy"
    (root / "parts").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "parts" / "__init__.py").write_text("")
    (root / "top.py").write_text("from toy.parts import bottom\n")
    (root / "parts" / "bottom.py").write_text("def f():\n    from .. import top\n")
    return root


def test_the_guard_sees_upward_imports_and_cycles_inside_functions(toy):
    graph = import_graph(toy)
    assert graph["toy.parts.bottom"] == {"toy.top"}
    layers = {"top": ("toy.top",), "bottom": ("toy.parts.bottom",)}
    assert upward_imports(graph, layers) == ["toy.parts.bottom (bottom) -> toy.top (top)"]
    assert cycles(graph) == [["toy.parts.bottom", "toy.top", "toy.parts.bottom"]]
