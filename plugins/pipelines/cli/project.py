"""The commands about the project and its DAGs: ``validate``, ``infer``, ``list``, ``init``,
``env``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from pipelines.cli.text import plural, quiet_airflow, say, say_lines, table, warn_skipped

# the SCHEDULE of a DAG with none (a cookbook without one; every DAG of a namespace that
# schedules nothing): it runs when triggered (the CLI, the client, the UI, a cookbook)
TRIGGERED = "triggered"


def cmd_validate(args: argparse.Namespace) -> int:
    from pipelines.project.config import load_project

    include = None
    if args.path:
        path = Path(args.path)
        if path.is_file():
            if path.name != "registry.csv":
                return _validate_file(path)
            include = path.parent
        else:
            include = path
    project = load_project(include)
    problems = list(project.problems)
    warnings = []
    if args.sources:
        quiet_airflow()
        from pipelines.inspection.header_check import check_sources

        with _home(include):  # relative sources are found under the include/ checked
            found = check_sources(project)
        problems += found.problems
        warnings += found.warnings
        for name, where in found.opened:
            say(f"{name}: opened {where}", file=sys.stderr)
        say(f"{plural(len(found.opened), 'source')} opened", file=sys.stderr)
    if project.workflows:
        from pipelines.steps.workflow import resolve_all

        with _home(include):  # the functions are found under the include/ checked
            problems += resolve_all(project, include)
    problems += project.namespace_problems()
    for problem in problems:
        say(problem)
    for warning in warnings:
        say(f"warning: {warning}", file=sys.stderr)
    counts = [
        plural(len(project.datasets), "dataset"),
        plural(len(project.aggregates), "aggregate"),
        plural(len(project.workflows), "workflow"),
        plural(len(project.cookbooks), "cookbook"),
    ]
    bad = len(problems)
    warned = f", {plural(len(warnings), 'warning')}" if warnings else ""
    say(f"{', '.join(counts)} valid; {plural(bad, 'problem')}{warned}", file=sys.stderr)
    return 1 if bad else 0


def cmd_infer(args: argparse.Namespace) -> int:
    """The ``columns.yaml`` entry the inference gives for the dataset's deliveries, as YAML."""
    quiet_airflow()
    from pipelines.inspection.infer import as_yaml, infer
    from pipelines.project.config import Kind, load_project

    dataset = load_project().require(args.name, Kind.DATASET).spec
    deliveries, entries = infer(dataset, args.date)
    say_lines(as_yaml(dataset, deliveries, entries).removesuffix("\n"))
    return 0


def _home(include: Path | None) -> contextlib.AbstractContextManager:
    """``PIPELINES_HOME`` = the folder holding ``include`` while inside (nothing when None)."""
    from pipelines.runtime import environment

    if include is None:
        return contextlib.nullcontext()
    return environment.variable("PIPELINES_HOME", str(Path(include).resolve().parent))


def _validate_file(path: Path) -> int:
    """A registry under another name: validated alone."""
    from pipelines.project.registry import load_registry

    registry = load_registry(path)
    for problem in registry.problems:
        say(problem)
    valid, bad = len(registry.datasets), len(registry.problems)
    say(f"{plural(valid, 'dataset')} valid; {plural(bad, 'problem')}", file=sys.stderr)
    return 1 if registry.problems else 0


def cmd_init(args: argparse.Namespace) -> int:
    from pipelines.runs.local import configure

    home = configure()
    say(f"Airflow home {home} (SQLite metadata database ready)")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """``eval "$(pipelines env)"``, then ``airflow dags test local__orders 2024-01-02`` works."""
    import contextlib
    import os
    import shlex

    from pipelines.runs.local import configure

    with contextlib.redirect_stdout(sys.stderr):  # only the exports may reach stdout
        configure()
    names = (
        "AIRFLOW_HOME",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "PIPELINES_HOME",
        "PIPELINES_LAKE",
        "PIPELINES_NAMESPACE",
    )
    for name in names:
        if os.environ.get(name):
            print(f"export {name}={shlex.quote(os.environ[name])}")  # for eval: exact
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Every DAG of the namespace; a dataset's newest raw delivery (a workflow's newest day),
    a cookbook's children (what a workflow reads)."""
    quiet_airflow()
    from pipelines.project.config import load_project

    project = load_project()
    warn_skipped(project)
    where = project.namespace()
    lake = project.lake(where)
    off = f"{TRIGGERED} ({where.kind})"  # a master or research namespace schedules nothing

    def scheduled(schedule: str) -> str:
        return schedule if where.schedules else off

    rows = [("DAG ID", "SCHEDULE", "KIND", "NEWEST DS", "CHILDREN OR INPUTS")]
    for d in project.datasets:
        newest = max(lake.raw(d.name).snapshot().partitions, default="-")
        rows.append((project.dag_id(d.name), scheduled(d.schedule), d.ingestion.value, newest, ""))
    for w in project.workflows:
        newest = max(lake.workflow(w.name).snapshot().partitions, default="-")
        reads = ", ".join(f"{i.table} ({i.window})" for i in w.inputs)
        schedule = scheduled(w.schedule or "on inputs")
        rows.append((project.dag_id(w.name), schedule, "workflow", newest, reads))
    for c in project.cookbooks:
        children = ", ".join(child.name for child in c.children)
        schedule = scheduled(c.schedule or TRIGGERED)
        e2e = project.e2e_of(c.name, where)
        if e2e is not None:
            schedule = f"{e2e[0]} (replays {e2e[1]})"
        rows.append((project.dag_id(c.name), schedule, "cookbook", "-", children))
    table(rows)
    return 0
