"""``pipelines namespace``: the current namespace, the namespaces in the lake, dropping a research
namespace's data, and what one namespace's tables hold that another's do not (``diff``: exit 0
when they are identical, 2 when they differ, like ``plan``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.cli.text import DIFFERENCES, escaped, plural, quiet_airflow, say, say_json, table
from pipelines.exceptions import NamespaceError
from pipelines.runtime.secrets import redact

DOING = {
    "serving": "schedules as in the registry, catchup on",
    "master": "e2e: only the e2e cookbook is scheduled; datasets run when it triggers them",
    "research": "nothing is scheduled: runs come from the CLI, the client or the UI",
}


def cmd_namespace(args: argparse.Namespace) -> int:
    quiet_airflow()
    action = getattr(args, "action", None) or "show"
    return {"show": _show, "list": _list, "drop": _drop, "diff": _diff}[action](args)


def _show(args: argparse.Namespace) -> int:
    from pipelines.project.config import load_project

    project = load_project()
    spec = project.namespace()
    lake = project.lake(spec)
    raw = f"{lake.root.rstrip('/')}/{lake.upstream}/raw"
    rows = [
        ("namespace", spec.name),
        ("from", spec.source),
        ("kind", f"{spec.kind} ({DOING[spec.kind]})"),
        ("lake", redact(lake.prefix)),
        (
            "raw",
            f"read in place from {lake.upstream!r} ({redact(raw)})"
            if lake.upstream
            else "ingested from the registry's sources",
        ),
        ("pool", spec.pool or "default_pool"),
    ]
    e2e = project.e2e_of(spec.e2e[0], spec) if spec.e2e else None
    if e2e is not None:
        rows.append(("e2e", f"{spec.e2e[0]} on {e2e[0]!r}, replaying {e2e[1]}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        say(f"{key.ljust(width)}  {value}")
    if lake.upstream and not lake.storage.list(raw):
        say(
            f"warning: namespace {lake.upstream!r} has no raw layer in this lake ({redact(raw)}): "
            "run it first, or set research's upstream in include/namespaces.yaml",
            file=sys.stderr,
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    from pipelines.project.config import load_project
    from pipelines.project.namespaces import in_lake

    project = load_project()
    current = project.lake()
    rows = [("NAMESPACE", "KIND", "TABLES", "FILES", "SIZE", "BRANCH")]
    for found in in_lake(Path(project.include), current.root):
        name = found.lake.namespace + (" *" if found.lake.namespace == current.namespace else "")
        size = _size(found.size)
        rows.append(
            (name, found.kind, str(found.tables), str(found.files), size, found.branch or "-")
        )
    say(f"lake {redact(current.root)} (* this namespace)")
    table(rows)
    return 0


def _drop(args: argparse.Namespace) -> int:
    from pipelines.project.config import load_project
    from pipelines.project.namespaces import to_drop

    project = load_project()
    found = to_drop(Path(project.include), project.lake().root, args.name)
    prefix, size = redact(found.lake.prefix), _size(found.size)
    if not args.yes:
        if not sys.stdin.isatty():
            raise NamespaceError(f"drop {args.name!r}: confirm with --yes (no terminal to ask on)")
        try:
            answer = input(
                escaped(f"delete {plural(found.files, 'file')} ({size}) under {prefix}? ")
                + "type the namespace name to confirm: "
            )
        except EOFError:
            answer = ""
        if answer.strip() != args.name:
            say("not dropped")
            return 1
    deleted = found.lake.drop()
    say(f"dropped namespace {args.name}: deleted {plural(deleted, 'file')} ({size}) under {prefix}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from pipelines.inspection.diff import diff_namespaces
    from pipelines.project.config import load_project
    from pipelines.project.namespaces import require_present

    project = load_project()
    here = project.lake()
    if args.other == here.namespace:
        raise NamespaceError(f"{args.other!r} is this namespace: name another one to compare")
    other = project.lake(args.other)  # a bad name is refused here
    require_present(other)
    report = diff_namespaces(here, other, project, table=args.table)
    if args.json:
        say_json(report.as_dict(), default=str)
    else:
        for line in report.lines():
            say(line)
    return 0 if report.identical else DIFFERENCES


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def add_parser(sub, namespace_help: str) -> None:
    """The ``namespace`` command and its actions."""
    p = sub.add_parser(
        "namespace", help="this namespace (kind, lake prefix, upstream); list, drop, diff"
    )
    p.add_argument("--namespace", help=namespace_help)
    p.set_defaults(func=cmd_namespace, action=None)
    actions = p.add_subparsers(dest="action")
    q = actions.add_parser("show", help="the current namespace (the default action)")
    q.add_argument("--namespace", help=namespace_help, default=argparse.SUPPRESS)
    actions.add_parser("list", help="the namespaces in the lake, with their sizes")
    q = actions.add_parser("drop", help="delete a research namespace's data from the lake")
    q.add_argument("name", help="the namespace to drop")
    q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    q = actions.add_parser(
        "diff", help="rows that differ between this namespace and another (exit 2: they differ)"
    )
    q.add_argument("other", help="the namespace to compare with (e.g. serving)")
    q.add_argument("--table", help="only the tables of this dataset, aggregate or workflow")
    q.add_argument("--json", action="store_true", help="the report as JSON")
    q.add_argument("--namespace", help=namespace_help, default=argparse.SUPPRESS)
