"""``pipelines status``: one table of every dataset, workflow and aggregate, from the lake's
manifests (and, with ``--url``, the latest run of each DAG on Airflow); ``--json``, and
``--html FILE`` for a page with a chart per row."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pipelines.cli.text import (
    note_unwritten,
    plural,
    quiet_airflow,
    say,
    say_json,
    table,
    warn_skipped,
)
from pipelines.exceptions import PipelinesError


def add_parser(sub, namespace_help: str) -> None:
    p = sub.add_parser(
        "status", help="per table: newest data, rows, checks, gaps, stale days, freshness"
    )
    p.add_argument("--namespace", help=namespace_help)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained page with charts")
    p.add_argument(
        "--url",
        help="also the latest run of each DAG on this Airflow API server (default "
        "PIPELINES_AIRFLOW_URL; none: the lake only), logged in with PIPELINES_AIRFLOW_USERNAME "
        "and _PASSWORD, or PIPELINES_AIRFLOW_TOKEN",
    )
    p.add_argument(
        "--now",
        metavar="TIME",
        help="judge freshness as of this UTC time, YYYY-MM-DD[THH:MM] (default: now)",
    )
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    quiet_airflow()
    from pipelines.inspection.status import COLUMNS, RUN_COLUMN, status
    from pipelines.project.config import load_project
    from pipelines.runtime import arrow_pool
    from pipelines.runtime.environment import airflow_login
    from pipelines.runtime.secrets import redact

    arrow_pool.steady()
    now = _now(args.now)
    project = load_project()
    project.require_readable()
    warn_skipped(project)
    lake = project.lake()
    note_unwritten(lake)
    rows = status(project, lake, now, days=bool(args.html or args.json))
    login = airflow_login(args.url)
    if login.url:
        rows = _with_runs(rows, login)
    if args.html:
        _write_page(args.html, rows, lake, now)
    if args.json:
        body = {"namespace": lake.namespace, "now": now.isoformat(), "rows": rows}
        say_json(body, default=lambda r: r.as_dict())
        return 0
    with_run = any(r.run is not None for r in rows)
    say(f"lake {redact(lake.root)} namespace {lake.namespace} as of {now:%Y-%m-%d %H:%M} UTC")
    header = (*COLUMNS, RUN_COLUMN) if with_run else COLUMNS
    table([header, *(r.cells(with_run=with_run) for r in rows)])
    late = sum(r.late for r in rows)
    if late:
        say(f"{plural(late, 'table')} late", file=sys.stderr)
    for row in rows:
        for text in row.damaged:
            say(f"{row.name}: damaged: {text}: pipelines repair {row.name}", file=sys.stderr)
        if row.stale:
            days = plural(len(row.stale), "day")
            say(f"{row.name}: {days} stale: pipelines run {row.name} --stale", file=sys.stderr)
    return 0


def _now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    from pipelines.common.partitions import DATE_RE, date_problem, utc

    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        day = text[:10]
        if DATE_RE.fullmatch(day) and date_problem(day):  # the form is right, the day is not
            raise PipelinesError(f"--now: {date_problem(day)}") from None
        raise PipelinesError(
            f"--now: {text!r} is not a time in the form YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        ) from None
    return utc(value)


def _with_runs(rows: list, login) -> list:
    """The rows with the latest run of the DAG that writes each (one request per DAG), from the
    Airflow ``login`` (:func:`pipelines.runtime.environment.airflow_login`) names."""
    from pipelines.inspection.status import LastRun
    from pipelines.runs.airflow_rest import AirflowRest

    airflow = AirflowRest(
        login.url, username=login.username, password=login.password, token=login.token
    )
    runs = airflow.latest_runs(dict.fromkeys(r.dag_id for r in rows))

    def last(dag_id: str) -> LastRun:
        if dag_id not in runs:
            return LastRun("not in Airflow", "")
        run = runs[dag_id]
        return LastRun(run.state, run.ds) if run else LastRun("no run", "")

    return [r.with_run(last(r.dag_id)) for r in rows]


def _write_page(path: str, rows: list, lake, now: dt.datetime) -> None:
    from pipelines.inspection import status_page
    from pipelines.runtime.secrets import redact

    text = status_page.render(rows, namespace=lake.namespace, lake=redact(lake.root), now=now)
    try:
        written = status_page.write(path, text)
    except OSError as exc:
        raise PipelinesError(f"--html: cannot write {path}: {exc.strerror or exc}") from None
    say(f"wrote {written} ({plural(len(rows), 'row')})", file=sys.stderr)
