"""The layers of the package, stated once by package (the README's layer table points here), and a
guard on them, in the manner of import-linter's contracts in Kedro's ``pyproject.toml``:

- **layers**: every module of ``plugins/pipelines`` belongs to one package of :data:`LAYERS`, and
  imports only from its own package or from layers below it (imports inside functions count
  too); the packages of one layer are independent of each other (they may not import each other);
- **no cycle** between modules;
- **forbidden**: no module of :data:`NO_AIRFLOW` imports ``airflow`` (only the command, the client,
  the runs, the wiring and the two runtime modules that read Airflow's connections and bundles
  do).

A new folder or top-level module fails :func:`test_every_module_has_a_layer` until it is given its
place here. The toy packages at the end prove each rule can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "pipelines"

# From the top down; the packages of one layer are independent of each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pipelines.cli",),  # the command
    ("pipelines", "pipelines.timetable", "pipelines.freshness"),  # the face; two old paths
    ("pipelines.client", "pipelines.testing"),  # the client; workflows tested on frames
    ("pipelines.runs",),  # running a DAG here or on Airflow; what a run produced
    ("pipelines.wiring",),  # rows -> DAGs: factory, stages, operators, cookbook parents
    ("pipelines.inspection", "pipelines.plan"),  # read-only questions; what deploying would do
    ("pipelines.steps",),  # the steps of a run, as plain functions
    ("pipelines.project",),  # config files -> validated specs
    ("pipelines.lake",),  # one namespace's tables, the table format, storage, the write guard
    ("pipelines.runtime",),  # where this process stands: environment, branch, bundles, secrets
    ("pipelines.common",),  # intervals, partition keys, windows, pure frame functions
    ("pipelines.exceptions",),  # the one exception hierarchy
)
NO_AIRFLOW = (
    "pipelines.runtime.environment",  # runtime's bundles and secrets read Airflow's; these do not
    "pipelines.runtime.branch",
    "pipelines.steps",
    "pipelines.inspection",
    "pipelines.plan",
    "pipelines.project",
    "pipelines.lake",
    "pipelines.common",
)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(path: Path, me: str) -> list[tuple[str, int]]:
    """Every dotted name ``path`` imports anywhere in it (functions included), with its line."""
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found += [(base, node.lineno)]
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def imported_modules(path: Path, me: str, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in it (functions included)."""
    found: set[str] = set()
    for name, _ in _imported_names(path, me):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != me:
            found.add(name)
    return found


def _files(root: Path) -> dict[str, Path]:
    return {module_name(root, p): p for p in sorted(root.rglob("*.py"))}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (a package's ``__init__`` is not implied)."""
    files = _files(root)
    modules = set(files)
    top = root.name
    return {m: imported_modules(p, m, modules) - {top} for m, p in files.items()}


def package_of(module: str, layers: tuple[tuple[str, ...], ...]) -> str | None:
    """The package of :data:`LAYERS` that holds ``module`` (the longest that does; the top
    package holds only its own ``__init__``); None: no layer has it."""
    top = module.split(".")[0]
    holders = [
        p
        for layer in layers
        for p in layer
        if module == p or (p != top and module.startswith(f"{p}."))
    ]
    return max(holders, key=len, default=None)


def unplaced(graph: dict[str, set[str]], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """The modules no package of ``layers`` holds."""
    return sorted(m for m in graph if package_of(m, layers) is None)


def upward_imports(graph: dict[str, set[str]], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """``a -> b`` for every import from a package to one of a higher layer, or to an independent
    package of its own layer."""
    rank = {p: i for i, layer in enumerate(layers) for p in layer}
    found = []
    for m, targets in graph.items():
        mine = package_of(m, layers)
        for n in targets:
            theirs = package_of(n, layers)
            if mine is None or theirs is None or mine == theirs:
                continue
            if rank[theirs] < rank[mine]:
                found.append(f"{m} ({mine}) -> {n} ({theirs}): points up")
            elif rank[theirs] == rank[mine]:
                found.append(f"{m} ({mine}) -> {n} ({theirs}): independent packages")
    return sorted(found)


def airflow_imports(root: Path, forbidden: tuple[str, ...]) -> list[str]:
    """``module:line`` for every import of ``airflow`` from a package of ``forbidden``."""
    found: dict[tuple[str, int], str] = {}
    for m, path in _files(root).items():
        if not any(m == p or m.startswith(f"{p}.") for p in forbidden):
            continue
        for name, line in _imported_names(path, m):
            if name == "airflow" or name.startswith("airflow."):  # the module, not its names
                found[m, line] = min(found.get((m, line), name), name, key=len)
    return sorted(f"{m}:{line} imports {name}" for (m, line), name in found.items())


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


def test_the_layer_table_names_each_package_once_and_every_package_exists():
    named = [p for layer in LAYERS for p in layer]
    assert len(named) == len(set(named)), "a package is in two layers"
    modules = set(import_graph(PACKAGE))
    assert [p for p in named if p not in modules] == []


def test_every_module_has_a_layer():
    assert unplaced(import_graph(PACKAGE), LAYERS) == []


def test_imports_point_down():
    assert upward_imports(import_graph(PACKAGE), LAYERS) == []


def test_no_import_cycle():
    assert cycles(import_graph(PACKAGE)) == []


def test_below_the_wiring_nothing_imports_airflow():
    assert airflow_imports(PACKAGE, NO_AIRFLOW) == []


def test_the_wiring_package_is_empty_so_the_dag_file_stays_import_light():
    assert (PACKAGE / "wiring" / "__init__.py").read_text() == ""


# The toy package: top (entry) over mid.a | mid.b (independent) over ground; ground has no Airflow.
TOY_LAYERS = (("toy", "toy.top"), ("toy.mid_a", "toy.mid_b"), ("toy.ground",))


@pytest.fixture
def toy(tmp_path):
    """A package ``toy`` that keeps every rule; each test below breaks one."""
    root = tmp_path / "toy"
    for folder in ("mid_a", "mid_b", "ground"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "top.py").write_text("from toy.mid_a import a\nimport airflow\n")
    (root / "mid_a" / "a.py").write_text("from toy.ground import g\n")
    (root / "mid_b" / "b.py").write_text("from toy.ground.g import f\n")
    (root / "ground" / "g.py").write_text("def f():\n    return 1\n")
    return root


def _verdicts(root: Path) -> dict[str, list]:
    graph = import_graph(root)
    return {
        "unplaced": unplaced(graph, TOY_LAYERS),
        "upward": upward_imports(graph, TOY_LAYERS),
        "cycles": cycles(graph),
        "airflow": airflow_imports(root, ("toy.ground", "toy.mid_b")),
    }


def test_the_toy_keeps_every_rule(toy):
    graph = import_graph(toy)
    assert graph["toy.top"] == {"toy.mid_a", "toy.mid_a.a"}  # airflow: allowed at the top
    assert _verdicts(toy) == {"unplaced": [], "upward": [], "cycles": [], "airflow": []}


def test_the_guard_sees_an_upward_import_inside_a_function(toy):
    (toy / "ground" / "g.py").write_text("def f():\n    from toy.mid_b.b import x\n    return x\n")
    assert _verdicts(toy)["upward"] == [
        "toy.ground.g (toy.ground) -> toy.mid_b.b (toy.mid_b): points up"
    ]


def test_the_guard_sees_an_upward_relative_import(toy):
    (toy / "ground" / "g.py").write_text("def f():\n    from .. import top\n    return top\n")
    assert _verdicts(toy)["upward"] == ["toy.ground.g (toy.ground) -> toy.top (toy.top): points up"]


def test_the_guard_sees_independent_packages_importing_each_other(toy):
    (toy / "mid_a" / "a.py").write_text("import toy.mid_b.b\n")
    assert _verdicts(toy)["upward"] == [
        "toy.mid_a.a (toy.mid_a) -> toy.mid_b.b (toy.mid_b): independent packages"
    ]


def test_the_guard_sees_a_cycle(toy):
    (toy / "ground" / "h.py").write_text("def f():\n    from toy.ground import g\n")
    (toy / "ground" / "g.py").write_text("from toy.ground.h import f\n")
    assert _verdicts(toy)["cycles"] == [["toy.ground.g", "toy.ground.h", "toy.ground.g"]]


def test_the_guard_sees_a_module_in_no_layer(toy):
    (toy / "loose.py").write_text("")
    assert _verdicts(toy)["unplaced"] == ["toy.loose"]


def test_the_guard_sees_airflow_imported_below_the_wiring(toy):
    (toy / "mid_b" / "b.py").write_text("def run():\n    from airflow.sdk import DAG\n")
    assert _verdicts(toy)["airflow"] == ["toy.mid_b.b:2 imports airflow.sdk"]


README = PACKAGE.parents[1] / "README.md"


def readme_tree(text: str) -> set[str]:
    """The package's files as the README's layout block lists them (``cli/parser.py`` ...): a
    folder line ends in ``/``, a line below it names one or more modules before its text."""
    block = text.split("## How it is laid out", 1)[1].split("```", 2)[1]
    files: set[str] = set()
    folder = None
    for line in block.splitlines():
        if line.startswith("plugins/pipelines/"):
            folder = ""
            continue
        if folder is None or not line.startswith("  "):
            folder = None if not line.startswith("  ") else folder
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        names = line.strip().split("  ", 1)[0].split()
        if depth == 1 and names and names[0].endswith("/"):
            folder = names[0]
        elif depth == 1:
            files |= {n for n in names if n.endswith(".py")}
        elif depth == 2 and folder:
            files |= {folder + n for n in names if n.endswith(".py")}
    return files


def _holds_code(path: Path) -> bool:
    """Whether a module holds more than a docstring (a folder's bare ``__init__`` is not listed)."""
    body = ast.parse(path.read_text()).body
    return bool(body) and not (len(body) == 1 and isinstance(body[0], ast.Expr))


def test_the_readme_layout_lists_every_module_of_the_package_and_no_other():
    actual = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" or _holds_code(p)
    }
    assert readme_tree(README.read_text()) == actual
