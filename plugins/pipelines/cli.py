"""The ``pipelines`` command: thin argument parsing over the package.

User mistakes (bad config, unknown names, missing data) print a message and exit 1, without a
traceback; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.exceptions import ConfigError, PipelinesError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    except PipelinesError as exc:
        print(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        print("interrupted")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipelines", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check registry.csv, aggregates.yaml, cookbooks.yaml")
    p.add_argument(
        "path",
        nargs="?",
        help="a registry.csv or an include/ folder (default: the project's include/)",
    )
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("list", help="DAG ids, schedules, ingestion, newest raw ds in the lake")
    p.set_defaults(func=cmd_list)
    for name, helptext in (
        ("run", "run one interval in-process (no scheduler)"),
        ("backfill", "run every interval from --start to --end, in order"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("name", help="dataset or cookbook")
        if name == "run":
            p.add_argument("--date", required=True, help="logical date YYYY-MM-DD")
        else:
            p.add_argument("--start", required=True, help="first logical date YYYY-MM-DD")
            p.add_argument("--end", required=True, help="last logical date (inclusive)")
            p.add_argument(
                "--keep-going", action="store_true", help="run the other days after a failure"
            )
        p.add_argument(
            "--allow-incomplete",
            action="store_true",
            help="also run an interval that has not ended yet (it records a partial interval)",
        )
        p.add_argument("-v", "--verbose", action="store_true", help="show Airflow's task logs")
        p.set_defaults(func=cmd_run)
    p = sub.add_parser("read", help="print a table of the lake")
    p.add_argument("name", help="dataset (raw, cleaned, quarantine) or aggregate (aggregated)")
    p.add_argument(
        "--layer", default="cleaned", choices=["raw", "cleaned", "aggregated", "quarantine"]
    )
    p.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    p.add_argument("--as-of", help="YYYY-MM-DD: a raw delivery or a full dataset's snapshot")
    p.add_argument("--namespace", help="default: PIPELINES_NAMESPACE or 'local'")
    p.set_defaults(func=cmd_read)
    p = sub.add_parser("init", help="create the local Airflow home (SQLite) under .airflow/")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("env", help="print the exports that point `airflow` at this project")
    p.set_defaults(func=cmd_env)
    p = sub.add_parser("vacuum", help="delete files that crashed writers left in the lake")
    p.add_argument(
        "--min-age-minutes",
        type=float,
        default=60,
        help="only files older than this (default 60: younger ones may be in flight)",
    )
    p.add_argument("--namespace", help="default: PIPELINES_NAMESPACE or 'local'")
    p.set_defaults(func=cmd_vacuum)
    p = sub.add_parser("show", help="what each layer of the lake holds, per table")
    p.add_argument("--namespace", help="default: PIPELINES_NAMESPACE or 'local'")
    p.set_defaults(func=cmd_show)
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    from pipelines.config import load_project

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
    for problem in project.problems:
        print(problem)
    bad = len(project.problems)
    print(
        f"{len(project.datasets)} datasets, {len(project.aggregates)} aggregates, "
        f"{len(project.cookbooks)} cookbooks valid; {bad} problem{'s' * (bad != 1)}",
        file=sys.stderr,
    )
    return 1 if bad else 0


def _validate_file(path: Path) -> int:
    """A registry under another name: validated alone."""
    from pipelines.registry import load_registry

    registry = load_registry(path)
    for problem in registry.problems:
        print(problem)
    print(
        f"{len(registry.datasets)} datasets valid; {len(registry.problems)} problems",
        file=sys.stderr,
    )
    return 1 if registry.problems else 0


def cmd_init(args: argparse.Namespace) -> int:
    from pipelines.local import configure

    home = configure()
    print(f"Airflow home {home} (SQLite metadata database ready)")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """``eval "$(pipelines env)"``, then ``airflow dags test local__orders 2024-01-02`` works."""
    import contextlib
    import os
    import shlex

    from pipelines.local import configure

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
            print(f"export {name}={shlex.quote(os.environ[name])}")
    return 0


def _warn_skipped(project) -> None:
    for problem in project.problems:
        print(f"warning: skipped: {problem}", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    from pipelines.components import environment
    from pipelines.components.lake import Lake
    from pipelines.config import load_project
    from pipelines.partitions import Layer

    project = load_project()
    _warn_skipped(project)
    lake = Lake.from_env()
    rows = [("DAG ID", "SCHEDULE", "INGESTION", "NEWEST RAW DS")]
    for d in project.datasets:
        newest = max(lake.table(Layer.RAW, d.name).snapshot().partitions, default="-")
        rows.append((environment.dataset_dag_id(d.name), d.schedule, d.ingestion.value, newest))
    for c in project.cookbooks:
        children = ",".join(child.name for child in c.children)
        rows.append(
            (environment.cookbook_dag_id(c.name), c.schedule or "None", "cookbook", children)
        )
    _table(rows)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.local import configure
    from pipelines.partitions import date_option

    if args.command == "run":
        start = end = date_option(args.date, "--date")
    else:
        start, end = date_option(args.start, "--start"), date_option(args.end, "--end")
    configure(verbose=args.verbose)
    from pipelines.client import Client
    from pipelines.config import load_project

    project = load_project()
    project.require_readable()
    _warn_skipped(project)
    progress = _Progress(args.name, project.dag_id(args.name))
    previous = signal.signal(signal.SIGINT, progress.on_interrupt)
    try:
        results = Client().submit(
            args.name,
            start,
            end=end,
            allow_incomplete=args.allow_incomplete,
            keep_going=getattr(args, "keep_going", False),
            on_start=progress.start,
            on_run=progress.show,
        )
    except KeyboardInterrupt:
        progress.interrupted()
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    done = sum(r.ok for r in results.runs)
    print(f"{done}/{len(results.runs)} runs succeeded")
    if results.not_run:
        print(f"not run: {_days(results.not_run)} (rerun them, or pass --keep-going)")
    return 0 if results.ok else 1


class _Progress:
    """The run command's lines: what starts, each run as it ends, what an interrupt left.

    Airflow's task runner turns a Ctrl-C inside a task into a failed task and goes on: the
    interrupt is noted here, and the run it ended is reported as interrupted, not as a failure.
    """

    def __init__(self, name: str, dag_id: str):
        self.name, self.dag_id = name, dag_id
        self.days: list[str] = []
        self.done: list[str] = []  # days whose run (a cookbook's: its own DAG's run) ended
        self.stopping = False

    def start(self, days: list[str]) -> None:
        self.days = days
        runs = f"{len(days)} run{'s' * (len(days) != 1)}"
        span = days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]}"
        print(f"starting {runs} of {self.name}: {span}", flush=True)

    def on_interrupt(self, signum, frame) -> None:
        self.stopping = True
        raise KeyboardInterrupt

    def show(self, outcome) -> None:
        if self.stopping:  # the task runner swallowed the interrupt: this run did not fail
            raise KeyboardInterrupt
        mark = "ok  " if outcome.ok else "FAIL"
        said = [outcome.summary()]
        if not outcome.ok:
            reason = f": {outcome.error}" if outcome.error else ""
            said.append(f"{outcome.failed_task or 'run'} {outcome.state}{reason}")
        line = f"{mark} {outcome.dag_id} {outcome.ds} ({outcome.seconds:.1f}s)"
        line += ": " + "; ".join(filter(None, said)) if any(said) else ""
        if outcome.dag_id == self.dag_id:
            self.done.append(outcome.ds)
        print(line, flush=True)

    def interrupted(self) -> None:
        left = [d for d in self.days if d not in self.done]
        rest = f"not finished: {_days(left)} (runs are idempotent: run them again)"
        print(f"interrupted; {rest if left else 'every run had finished'}", flush=True)


def _days(days: list[str]) -> str:
    """``2024-01-03``, or ``2024-01-03 .. 2024-01-09 (7 days)``."""
    return days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]} ({len(days)} days)"


def cmd_read(args: argparse.Namespace) -> int:
    import pandas as pd

    from pipelines.reader import read

    frame = read(args.name, args.layer, args.namespace, args.as_of)
    with pd.option_context("display.max_columns", 50, "display.width", 200):
        print(frame.head(args.limit).to_string(index=False) if len(frame) else "(no rows)")
    print(f"({len(frame)} rows)", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pipelines.components.lake import Lake

    lake = Lake.from_env(args.namespace)
    rows = [("LAYER", "TABLE", "PARTITIONS", "ROWS", "NEWEST")]
    rows += [_describe(table, layer, name) for layer, name, table in _tables(args.namespace)]
    print(f"lake {lake.root} namespace {lake.namespace}")
    _table(rows)
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    from pipelines.components.resources import sweep

    deleted = sum(
        len(sweep(table, args.min_age_minutes * 60)) for _, _, table in _tables(args.namespace)
    )
    print(f"deleted {deleted} leftover file{'s' * (deleted != 1)}")
    return 0


def _tables(namespace: str | None):
    """(layer, name, table) of every table the project can have in the namespace."""
    from pipelines.components.lake import Lake
    from pipelines.config import load_project
    from pipelines.partitions import Layer

    project = load_project()
    lake = Lake.from_env(namespace)
    for d in project.datasets:
        for layer in (Layer.RAW, Layer.CLEANED, Layer.QUARANTINE):
            yield layer, d.name, lake.table(layer, d.name, kind=d.ingestion)
    for a in project.aggregates:
        yield Layer.AGGREGATED, a.name, lake.table(Layer.AGGREGATED, a.name)


def _describe(table, layer, name) -> tuple[str, ...]:
    snap = table.snapshot()
    parts = sorted(snap.partitions)
    newest = f"{table.key}={parts[-1]}" if parts else "-"
    return (str(layer), name, str(len(parts)), str(snap.rows()), newest)


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
