"""``pipelines namespace``: the current namespace, the namespaces in the lake, dropping a research
namespace's data, and what one namespace's tables hold that another's do not (``diff``)."""

from __future__ import annotations

import argparse
import json
import sys

from pipelines.cli.text import plural, quiet_airflow, table
from pipelines.exceptions import NamespaceError

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
    from pipelines.config import load_project

    project = load_project()
    spec = project.namespace()
    lake = project.lake(spec.name)
    rows = [
        ("namespace", spec.name),
        ("from", spec.source),
        ("kind", f"{spec.kind} ({DOING[spec.kind]})"),
        ("lake", lake.prefix),
        (
            "raw",
            f"read in place from {lake.upstream!r} ({lake.root.rstrip('/')}/{lake.upstream}/raw)"
            if lake.upstream
            else "ingested from the registry's sources",
        ),
        ("pool", spec.pool or "default_pool"),
    ]
    if spec.e2e:
        cookbook, cron, day = spec.e2e
        rows.append(("e2e", f"{cookbook} on {cron!r}, replaying {day or 'the first day'}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0


def _present(lake) -> list[tuple[str, dict, list[tuple[str, int]]]]:
    """(name, claim, files) of every namespace folder under the lake root."""
    from pipelines.components.lake import claimed

    out = []
    for name in lake.storage.list(lake.root):
        prefix = f"{lake.root.rstrip('/')}/{name}"
        files = lake.storage.files(prefix)
        if files:
            out.append((name, claimed(lake.storage, prefix), files))
    return out


def _list(args: argparse.Namespace) -> int:
    from pipelines.config import load_project

    project = load_project()
    current = project.lake()
    rows = [("NAMESPACE", "KIND", "TABLES", "FILES", "SIZE", "BRANCH")]
    for name, claim, files in _present(current):
        tables = {p.rsplit("/_log/", 1)[0] for p, _ in files if "/_log/" in p}
        kind = claim.get("kind") or project.namespace(name).kind
        mark = " *" if name == current.namespace else ""
        size = sum(s for _, s in files)
        branch = claim.get("branch") or "-"
        rows.append(
            (name + mark, str(kind), str(len(tables)), str(len(files)), _size(size), branch)
        )
    print(f"lake {current.root} (* this namespace)")
    table(rows)
    return 0


def _drop(args: argparse.Namespace) -> int:
    from pipelines.components.lake import Lake, claimed
    from pipelines.config import load_project

    project = load_project()
    name = args.name
    current = project.lake()
    target = Lake(current.root, name)
    prefix = target.prefix
    files = current.storage.files(prefix)
    if not files:
        raise NamespaceError(f"namespace {name!r} has nothing in the lake ({prefix})")
    kind = claimed(current.storage, prefix).get("kind") or project.namespace(name).kind
    if kind in ("serving", "master"):
        raise NamespaceError(
            f"namespace {name!r} is a {kind} namespace: drop deletes only research namespaces' "
            "data (vacuum removes leftovers)"
        )
    size = _size(sum(s for _, s in files))
    if not args.yes:
        if not sys.stdin.isatty():
            raise NamespaceError(f"drop {name!r}: confirm with --yes (no terminal to ask on)")
        answer = input(
            f"delete {plural(len(files), 'file')} ({size}) under {prefix}? "
            f"type the namespace name to confirm: "
        )
        if answer.strip() != name:
            print("not dropped")
            return 1
    deleted = target.storage.delete_tree(prefix)
    print(f"dropped namespace {name}: deleted {plural(deleted, 'file')} ({size}) under {prefix}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from pipelines.config import load_project
    from pipelines.namespace_diff import diff_namespaces

    project = load_project()
    here = project.lake()
    if args.other == here.namespace:
        raise NamespaceError(f"{args.other!r} is this namespace: name another one to compare")
    other = project.lake(args.other)
    if not other.storage.files(other.prefix):
        raise NamespaceError(f"namespace {args.other!r} has nothing in the lake ({other.prefix})")
    report = diff_namespaces(here, other, project, table=args.table)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        for line in report.lines():
            print(line)
    return 0


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
    q = actions.add_parser("diff", help="rows that differ between this namespace and another")
    q.add_argument("other", help="the namespace to compare with (e.g. serving)")
    q.add_argument("--table", help="only the tables of this dataset, aggregate or workflow")
    q.add_argument("--json", action="store_true", help="the report as JSON")
    q.add_argument("--namespace", help=namespace_help, default=argparse.SUPPRESS)
