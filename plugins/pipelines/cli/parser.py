"""The ``pipelines`` command's arguments: :func:`build` makes the parser of every sub-command
but ``plan``, which :mod:`pipelines.cli` adds on top; ``plan --apply`` parses the backfills it
runs with the same parser, so they are what ``pipelines backfill`` would be given."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pipelines.cli.lake import add_parser as add_lake
from pipelines.cli.lake import cmd_optimize, cmd_read, cmd_repair, cmd_show, cmd_vacuum
from pipelines.cli.namespaces import add_parser as add_namespace
from pipelines.cli.project import cmd_env, cmd_infer, cmd_init, cmd_list, cmd_validate
from pipelines.cli.remote import cmd_backfill, cmd_submit
from pipelines.cli.runs import cmd_run
from pipelines.cli.status import add_parser as add_status
from pipelines.lake.delta import DEFAULT_RETENTION_HOURS, MIN_RETENTION_HOURS
from pipelines.runs.airflow_rest import REPROCESS

DESCRIPTION = "The ``pipelines`` command: thin argument parsing over the package."
NAMESPACE_HELP = (
    "the namespace (default: PIPELINES_NAMESPACE, else the git branch of the project, else 'local')"
)


def build(*more: Callable[[Any, str], None]) -> argparse.ArgumentParser:
    """The command's parser: every sub-command of this module, then each of ``more`` (called
    with the sub-parsers and :data:`NAMESPACE_HELP`), in that order."""
    parser = argparse.ArgumentParser(prog="pipelines", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check registry.csv, aggregates.yaml, cookbooks.yaml")
    p.add_argument(
        "path",
        nargs="?",
        help="a registry.csv or an include/ folder (default: the project's include/)",
    )
    p.add_argument(
        "--sources",
        action="store_true",
        help="also open each source's header and check the columns the config names",
    )
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("infer", help="print the columns.yaml entry a dataset's data suggests")
    p.add_argument("name", help="a dataset of registry.csv")
    p.add_argument(
        "--date",
        action="append",
        help="the delivery of this logical date YYYY-MM-DD (default: the start_date); "
        "again for more deliveries: each column's type fits all of them",
    )
    p.set_defaults(func=cmd_infer)
    p = sub.add_parser("list", help="DAG ids, schedules, ingestion, newest raw ds in the lake")
    p.add_argument("--namespace", help=NAMESPACE_HELP)
    p.set_defaults(func=cmd_list)
    for name, helptext in (
        ("run", "run one interval in-process (no scheduler, no database unless --airflow)"),
        ("backfill", "run every interval from --start to --end, in order"),
    ):
        _run_parser(sub.add_parser(name, help=helptext), name)
    _submit_parser(sub.add_parser("submit", help="run a job here or on Airflow; its outputs"))
    _read_parser(sub.add_parser("read", help="print a table of the lake"))
    p = sub.add_parser("init", help="create the local Airflow home (SQLite) under .airflow/")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("env", help="print the exports that point `airflow` at this project")
    p.set_defaults(func=cmd_env)
    p = sub.add_parser("vacuum", help="delete the files no recent version needs (Delta's vacuum)")
    p.add_argument(
        "--retention-hours",
        type=float,
        help="keep every file a version of the last N hours needs (default: the namespace's "
        f"retention_hours in namespaces.yaml, else {DEFAULT_RETENTION_HOURS}: a week of as_of "
        f"reads; at least {MIN_RETENTION_HOURS})",
    )
    p.add_argument("--namespace", help=NAMESPACE_HELP)
    p.set_defaults(func=cmd_vacuum)
    p = sub.add_parser("optimize", help="compact each table's small files (Delta's optimize)")
    p.add_argument("--namespace", help=NAMESPACE_HELP)
    p.set_defaults(func=cmd_optimize)
    p = sub.add_parser(
        "repair",
        help="set damaged table files aside (kept under {namespace}/_damaged/) and restore "
        "each table from its last good version and the raw deliveries",
    )
    p.add_argument(
        "name", nargs="?", help="a dataset (its layers and aggregates), aggregate or workflow"
    )
    p.add_argument("--namespace", help=NAMESPACE_HELP)
    p.set_defaults(func=cmd_repair)
    p = sub.add_parser("show", help="what each layer of the lake holds, per table")
    p.add_argument("--namespace", help=NAMESPACE_HELP)
    p.set_defaults(func=cmd_show)
    add_status(sub, NAMESPACE_HELP)
    add_namespace(sub, NAMESPACE_HELP)
    add_lake(sub, NAMESPACE_HELP)
    for add in more:
        add(sub, NAMESPACE_HELP)
    return parser


def _run_parser(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("name", help="dataset, workflow or cookbook")
    if name == "run":
        p.add_argument("--date", help="logical date YYYY-MM-DD (required but with --stale)")
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
    p.add_argument(
        "--upstream",
        action="store_true",
        help="a workflow: first run every day of its inputs' windows that has not landed "
        "(datasets and workflows, upstream first)",
    )
    p.add_argument(
        "--stale",
        action="store_true",
        help="a workflow: run only the days whose output is stale (pipelines status shows "
        "them); run without --date: every stale day",
    )
    p.add_argument(
        "--downstream",
        action="store_true",
        help="a dataset: then rerun the stale days of the workflows that read it, as Airflow's "
        "rewrite signal does (here only)",
    )
    p.add_argument(
        "--airflow",
        action="store_true",
        help="run through Airflow's dag.test() and its metadata database (created when missing) "
        "instead of the faster local runner",
    )
    p.add_argument("--namespace", help=NAMESPACE_HELP)
    p.add_argument("-v", "--verbose", action="store_true", help="show Airflow's task logs")
    p.set_defaults(func=cmd_run)
    _airflow_options(p, from_env=name == "backfill")
    if name == "backfill":
        p.add_argument(
            "--max-active-runs",
            type=int,
            default=4,
            help="with --url: runs of the backfill at a time (default 4)",
        )
        p.add_argument(
            "--reprocess",
            choices=REPROCESS,
            default="completed",
            help="with --url: which days that already have a run are run again "
            "(default completed: every day, as a local backfill does)",
        )
        p.add_argument("--run-backwards", action="store_true", help="with --url: newest day first")
        p.set_defaults(func=cmd_backfill)


def _airflow_options(p: argparse.ArgumentParser, *, from_env: bool = True) -> None:
    """:param from_env: without ``--url``, PIPELINES_AIRFLOW_URL says where (``run``: only
    ``--url`` does: a run is here unless asked)"""
    default = "default PIPELINES_AIRFLOW_URL; none" if from_env else "default"
    p.add_argument(
        "--url",
        help=f"an Airflow API server ({default}: run here), logged in "
        "with PIPELINES_AIRFLOW_USERNAME and _PASSWORD, or PIPELINES_AIRFLOW_TOKEN",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=3600,
        help="seconds to wait for a run on Airflow (default 3600; the run goes on after it)",
    )


def _submit_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset, workflow or cookbook")
    p.add_argument("--date", help="logical date YYYY-MM-DD (default: the latest complete one)")
    p.add_argument("--start", help="first logical date of a range")
    p.add_argument("--end", help="last logical date of a range (inclusive)")
    p.add_argument("--conf", help="the run's conf, a JSON object")
    p.add_argument(
        "--allow-incomplete", action="store_true", help="also run an interval not ended yet"
    )
    p.add_argument(
        "--no-wait", action="store_true", help="on Airflow: start the runs and return at once"
    )
    p.add_argument("--json", action="store_true", help="print the runs and outputs as JSON")
    _airflow_options(p)
    p.add_argument("--namespace", help=NAMESPACE_HELP)
    p.set_defaults(func=cmd_submit)


def _read_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name",
        help="dataset (raw, cleaned, quarantine), aggregate (aggregated) or workflow (workflows)",
    )
    p.add_argument(
        "--layer",
        default="cleaned",
        choices=["raw", "cleaned", "aggregated", "quarantine", "workflows"],
    )
    p.add_argument("--limit", type=int, help="rows to print (default: 20 as a table, else all)")
    p.add_argument("--as-of", help="YYYY-MM-DD: a raw delivery or a full dataset's snapshot")
    p.add_argument(
        "--format",
        default="table",
        choices=["table", "csv", "json"],
        help="json: one object a line",
    )
    p.add_argument("--columns", help="only these columns, comma-separated")
    p.add_argument(
        "--all-columns", action="store_true", help="also the _ bookkeeping columns (_row, _ds)"
    )
    p.add_argument("--namespace", help=NAMESPACE_HELP)
    p.set_defaults(func=cmd_read)
