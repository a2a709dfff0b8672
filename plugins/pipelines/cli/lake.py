"""The commands that look into the lake and keep it tidy: ``read``, ``show``, ``vacuum``,
``optimize``, and the ``lake`` group (``lake upgrade``: a lake written before Delta tables,
converted)."""

from __future__ import annotations

import argparse
import sys

from pipelines.cli.text import escaped, json_text, plural, quiet_airflow, say, say_lines, table
from pipelines.exceptions import PipelinesError
from pipelines.runtime.secrets import redact

KEPT_BOOKKEEPING = ("_reason",)  # why a row is in quarantine: content, not bookkeeping


def cmd_read(args: argparse.Namespace) -> int:
    quiet_airflow()
    import pandas as pd

    from pipelines.common.partitions import date_option
    from pipelines.inspection.reader import read

    as_of = date_option(args.as_of, "--as-of") if args.as_of is not None else None
    frame = _columns(read(args.name, args.layer, as_of=as_of), args)
    limit = args.limit if args.limit is not None else (20 if args.format == "table" else None)
    shown = frame.head(limit) if limit is not None else frame
    if len(frame) and args.format == "csv":
        shown.to_csv(sys.stdout, index=False)
    elif len(frame) and args.format == "json":
        dates = {c: shown[c].dt.strftime("%Y-%m-%d") for c in shown if _is_date(shown[c])}
        records = shown.assign(**dates).to_json(orient="records", date_format="iso", lines=True)
        print(json_text(records.rstrip()))
    elif len(frame):
        with pd.option_context("display.max_columns", 50, "display.width", 200):
            say_lines(_escaped_cells(shown).to_string(index=False))
    say(f"({plural(len(frame), 'row')})", file=sys.stderr)
    return 0


def _escaped_cells(frame):
    """The frame with its text cells and column names escaped for a terminal (a newline inside
    a cell would split its row, an escape sequence act on the terminal)."""

    def cell(value):
        return escaped(value) if isinstance(value, str) else value

    texts = {c: frame[c].map(cell) for c in frame if not _plain(frame[c])}
    return frame.assign(**texts).rename(columns=cell)


def _plain(column) -> bool:
    """A column that holds no text: numbers, booleans, dates."""
    return column.dtype.kind in "biufcmM"


def _is_date(column) -> bool:
    from pipelines.common.inference import infer_kind

    return str(column.dtype).startswith("datetime64") and infer_kind(column) == "date"


def _columns(frame, args: argparse.Namespace):
    """The columns asked for (``--columns``), else all but the ``_`` bookkeeping columns
    (unless ``--all-columns``)."""
    if args.columns:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in frame.columns]
        if unknown and len(frame.columns):
            have = ", ".join(map(str, frame.columns))
            raise PipelinesError(f"--columns: no column {unknown[0]!r} (columns: {have})")
        return frame[wanted] if len(frame.columns) else frame
    if args.all_columns:
        return frame
    hidden = [c for c in frame.columns if str(c).startswith("_") and c not in KEPT_BOOKKEEPING]
    return frame.drop(columns=hidden)


def add_parser(sub, namespace_help: str) -> None:
    """The ``lake`` command group: what is done to the lake as a whole."""
    p = sub.add_parser("lake", help="the lake as a whole: upgrade a lake written before Delta")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser(
        "upgrade",
        help="convert the tables an earlier pipelines wrote in its own format into Delta tables "
        "(each table atomically; rerun to finish one that stopped)",
    )
    q.add_argument("--namespace", help=namespace_help)
    q.set_defaults(func=cmd_lake_upgrade)


def cmd_lake_upgrade(args: argparse.Namespace) -> int:
    """Upgrade every old-format table of the namespace: a line per table, then the totals."""
    quiet_airflow()
    from pipelines.lake.upgrade import upgrade
    from pipelines.project.config import load_project

    lake = load_project().lake()
    where = f"namespace {lake.namespace} ({redact(lake.prefix)})"
    done = upgrade(lake, on_table=say)
    if not done:
        say(f"nothing to upgrade: every table of {where} is a Delta table")
        return 0
    parts = sum(u.partitions for u in done)
    rows = sum(u.rows for u in done)
    say(
        f"upgraded {plural(len(done), 'table')} of {where}: {plural(parts, 'partition')}, "
        f"{plural(rows, 'row')}, {plural(sum(u.runs for u in done), 'run record')}; "
        f"{plural(sum(u.removed for u in done), 'old file')} deleted"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    quiet_airflow()
    from pipelines.project.config import load_project
    from pipelines.steps.maintenance import tables

    project = load_project()
    lake = project.lake()
    rows = [("LAYER", "TABLE", "PARTITIONS", "ROWS", "NEWEST")]
    with lake.runs_held():  # each table's rows from the runs table, read once
        rows += [_describe(*entry) for entry in tables(project, lake)]
    say(f"lake {redact(lake.root)} namespace {lake.namespace}")
    table(rows)
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    """Delta's vacuum of every table this namespace writes, and of its runs table."""
    quiet_airflow()
    from pipelines.lake.delta import retention_problem
    from pipelines.project.config import load_project
    from pipelines.project.namespaces import require_present
    from pipelines.steps.maintenance import vacuum

    why = retention_problem(args.retention_hours) if args.retention_hours is not None else None
    if why:
        say(f"error: --retention-hours {why}", file=sys.stderr)
        return 2
    project = load_project()
    where = project.namespace()
    hours = args.retention_hours
    if hours is None:
        hours = where.settings.retention_hours
    lake = project.lake(where)
    require_present(lake)
    done = vacuum(project, lake, hours)
    say(
        f"deleted {plural(done.deleted, 'file')} no version of the last "
        f"{done.retention_hours:g} h needs"
    )
    return 0


def cmd_optimize(args: argparse.Namespace) -> int:
    """Compact the small files of every table this namespace writes."""
    quiet_airflow()
    from pipelines.project.config import load_project
    from pipelines.project.namespaces import require_present
    from pipelines.steps.maintenance import optimize

    project = load_project()
    lake = project.lake()
    require_present(lake)
    done = optimize(project, lake)
    say(f"compacted {plural(done.removed, 'file')} into {done.added}")
    for path in done.beaten:
        say(f"{redact(path)}: not compacted, a writer committed first (run optimize again)")
    return 0


def _describe(layer, name: str, lake_table, kind) -> tuple[str, ...]:
    """One row of ``show``: a cleaned table's rows are those of the table as it stands (a full
    dataset's newest snapshot), every other table's all its partitions'."""
    from pipelines.common.partitions import Layer

    snap = lake_table.outline()
    parts = sorted(snap.partitions)
    current = kind.current_partitions(parts) if layer is Layer.CLEANED else parts
    newest = f"{lake_table.key}={parts[-1]}" if parts else "-"
    rows = sum(snap.rows(p) for p in current)
    return (str(layer), name, str(len(parts)), str(rows), newest)


def cmd_repair(args: argparse.Namespace) -> int:
    """Set damaged files aside and restore their tables: a line per table repaired."""
    quiet_airflow()
    from pipelines.project.config import load_project
    from pipelines.project.namespaces import require_present
    from pipelines.steps.repair import repair

    project = load_project()
    if args.name is not None:
        project.require(args.name)
    lake = project.lake()
    require_present(lake)
    done = repair(project, lake, args.name, on_table=say)  # one line per table, whatever it says
    if not done:
        say(f"nothing damaged in namespace {lake.namespace} ({redact(lake.prefix)})")
        return 0
    bad = [d for d in done if d.unhealed]
    say(
        f"repaired {plural(len(done) - len(bad), 'table')}"
        + (f"; {plural(len(bad), 'table')} NOT healed (above)" if bad else "")
    )
    return 1 if bad else 0
