"""``pipelines plan``: what deploying the project to a namespace would do, grouped by kind
(``+`` added, ``~`` changed, ``-`` removed, ``?`` config not recorded), or as JSON; ``--apply``
runs the rebuilds and backfills it implies (here, or the backfills on Airflow with ``--url``) and
records the configs (:mod:`pipelines.cli.apply`).

Exit codes: 0 nothing to do, 2 changes (after ``--apply``: changes left), 1 an error.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from pipelines.cli.apply import apply
from pipelines.cli.parser import build as build_parser
from pipelines.cli.text import DIFFERENCES, note_unwritten, quiet_airflow, say, say_json
from pipelines.exceptions import PipelinesError

PASSES = 3  # --apply plans again after its backfills, while new ones appear
CHANGES = DIFFERENCES  # the exit code of a plan with changes: CI shows it on a pull request
HEADINGS = {"dataset": "datasets", "aggregate": "aggregates", "workflow": "workflows"}


def cmd_plan(args: argparse.Namespace) -> int:
    from pipelines.runtime import environment

    quiet_airflow()
    if args.url and not args.apply:
        raise PipelinesError("--url is where --apply runs the backfills: give --apply too")
    if args.against is None:
        return _plan(args)
    with environment.variable("PIPELINES_NAMESPACE", args.against):
        environment.namespace()  # a bad name is refused here, in one line
        return _plan(args)


def _plan(args: argparse.Namespace) -> int:
    from pipelines.plan.compare import plan
    from pipelines.project.config import load_project

    project = load_project(strict=True)  # a skipped entry would read as removed
    lake = project.lake()  # the namespace's lake, opened as `namespace diff` opens the other's
    note_unwritten(lake)
    found = plan(project, lake)
    if not args.json:
        for line in lines(found, lake.prefix):
            say(line)
    elif not args.apply:  # with --apply, the JSON holds the plan applied and the one after
        say_json(found.as_dict(), default=str)
    if not args.apply or found.empty:
        if args.apply and args.json:
            say_json({"applied": found.as_dict(), "after": found.as_dict()})
        return 0 if found.empty else CHANGES
    after = found
    # with --json, standard output is the JSON alone: the runs' lines go to standard error
    progress = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with progress:
        for _ in range(PASSES):  # a workflow reading a workflow added here has days only after
            ran = after
            if not apply(ran, project, lake, args, _backfill):
                return 1
            after = plan(load_project(strict=True), lake)
            if not after.backfills or after.backfills == ran.backfills:
                break
    if args.json:
        say_json({"applied": found.as_dict(), "after": after.as_dict()})
    else:
        say(summary(after) if not after.empty else "applied: nothing left to do")
    return 0 if after.empty else CHANGES


def lines(found, prefix: str) -> list[str]:
    """The report: a heading per kind, a line per change with its fields and implications."""
    if found.empty:
        return [f"No changes: namespace {found.namespace} ({prefix}) matches the project."]
    out = [f"plan for namespace {found.namespace} ({prefix}):"]
    kind = None
    for change in found.changes:
        if change.kind != kind:
            kind = change.kind
            out += ["", HEADINGS.get(str(kind), f"{kind}s")]
        out.append(f"  {change.action.mark} {change.name}")
        out += [f"      {f.name}: {_text(f.before)} -> {_text(f.after)}" for f in change.fields]
        out += [f"      => {said}" for said in change.implications]
    out += ["", summary(found)]
    if found.backfills:
        out.append("backfills: " + "; ".join(f"{b.name} {b.describe()}" for b in found.backfills))
    return out


def summary(found) -> str:
    counts = found.counts()
    said = [f"{counts[a]} to {a}" for a in ("add", "change", "remove") if counts[a]]
    if counts["unknown"]:
        said.append(f"{counts['unknown']} not recorded")
    return f"Plan: {', '.join(said)}."


def _text(value) -> str:
    from pipelines.plan.compare import shown

    return shown(value)


def _backfill(name: str, first: str, last: str, args: argparse.Namespace) -> int:
    """What ``pipelines backfill NAME --start FIRST --end LAST [--url URL]`` does (the URL
    defaults to ``PIPELINES_AIRFLOW_URL`` there too)."""
    run = backfill_args(name, first, last, args)
    return run.func(run)


def backfill_args(name: str, first: str, last: str, args: argparse.Namespace) -> argparse.Namespace:
    """The arguments of ``pipelines backfill NAME --start FIRST --end LAST``, with plan's
    ``--url`` and ``--timeout``, as the command's own parser reads them (every other option at
    its default)."""
    words = ["backfill", name, "--start", first, "--end", last, "--timeout", str(args.timeout)]
    if args.url is not None:
        words += ["--url", args.url]
    return build_parser().parse_args(words)


def add_parser(sub, namespace_help: str) -> None:
    p = sub.add_parser(
        "plan", help="what deploying the project to a namespace would do (exit 2: changes)"
    )
    p.add_argument("--against", metavar="NAMESPACE", help=f"compare with {namespace_help}")
    p.add_argument(
        "--apply",
        action="store_true",
        help="run the backfills the plan implies and record the project's config",
    )
    p.add_argument(
        "--url",
        help="with --apply: run the backfills on this Airflow API server (default: here)",
    )
    p.add_argument(
        "--timeout", type=float, default=3600, help="with --url: seconds to wait for a backfill"
    )
    p.add_argument("--json", action="store_true", help="the plan as JSON")
    p.set_defaults(func=cmd_plan)
