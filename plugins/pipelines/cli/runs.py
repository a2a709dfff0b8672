"""``pipelines run`` and ``pipelines backfill``: what starts, each run as it ends, what is left."""

from __future__ import annotations

import argparse
import signal

from pipelines.cli.text import plural, say, warn_skipped


def cmd_run(args: argparse.Namespace) -> int:
    """``run`` and ``backfill`` here (or, with ``--url`` and ``--stale``, each day on Airflow)."""
    start, end = _dates(args)
    stale, downstream = getattr(args, "stale", False), getattr(args, "downstream", False)
    remote = bool(getattr(args, "url", None))  # backfill: already the login's (env included)
    if remote and (args.airflow or args.upstream or downstream):
        from pipelines.exceptions import PipelinesError

        raise PipelinesError(
            "--airflow, --upstream and --downstream run here: they cannot go with --url"
        )
    if not remote:
        from pipelines.runs.local import configure

        configure(verbose=args.verbose, database=args.airflow)
    from pipelines.exceptions import LakeError
    from pipelines.lake.delta import OldFormat
    from pipelines.lake.upgrade import require_upgraded
    from pipelines.project.config import load_project

    project = load_project()
    project.require_readable()
    warn_skipped(project)
    try:
        require_upgraded(project.lake())  # one line, not a failed task's traceback per table
    except OldFormat:
        raise
    except LakeError:
        pass  # a lake that cannot be reached: the run says so on its own line

    client = client_for(args, full_airflow=args.airflow, remote=remote)
    progress = Progress(args.name, project.dag_id(args.name, client.namespace))
    previous = signal.signal(signal.SIGINT, progress.on_interrupt)
    try:
        results = client.submit(
            args.name,
            start,
            end=end,
            allow_incomplete=args.allow_incomplete,
            keep_going=getattr(args, "keep_going", False),
            upstream=args.upstream,
            stale=stale,
            downstream=downstream,
            on_start=progress.start,
            on_run=progress.show,
        )
    except KeyboardInterrupt:
        progress.interrupted()
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    if stale and not results.days:
        say(f"nothing stale: every output day of {args.name} is current")
        return 0
    ran = [d for d in results.days if d not in results.not_run]
    failed = {r.ds for r in results if not r.ok}
    say(f"{len([d for d in ran if d not in failed])}/{len(ran)} runs succeeded")
    if results.not_run:
        say(f"not run: {_days(results.not_run)}{_rerun_hint(client.namespace)}")
    if downstream:
        good = sum(r.ok for r in results.downstream)
        say(f"downstream: {good}/{len(results.downstream)} stale workflow days rerun")
    return 0 if results.ok else 1


def _rerun_hint(namespace: str) -> str:
    """How to run the days a failure left: none inside a rebuild (``plan --apply`` ran this
    backfill, has no --keep-going, and its own line says to rerun it; ``pipelines run`` would
    write the live tables, not the rebuilt ones)."""
    from pipelines.runtime.environment import rebuilt_tables

    return "" if rebuilt_tables(namespace) else " (rerun them, or pass --keep-going)"


def _dates(args: argparse.Namespace) -> tuple:
    """``(start, end)`` of ``run`` (one day; none with ``--stale``) or ``backfill``."""
    from pipelines.common.partitions import date_option
    from pipelines.exceptions import PipelinesError

    if args.command != "run":
        return date_option(args.start, "--start"), date_option(args.end, "--end")
    if args.date is None and not getattr(args, "stale", False):
        raise PipelinesError("give --date (or --stale: every stale day of a workflow)")
    day = date_option(args.date, "--date") if args.date else None
    return day, day


def client_for(args: argparse.Namespace, *, full_airflow: bool = False, remote: bool = True):
    """The client of a command: on the Airflow of ``--url`` (or PIPELINES_AIRFLOW_URL) with its
    login, else (or when not ``remote``) in this process."""
    from pipelines.runtime.environment import airflow_login

    login = airflow_login(getattr(args, "url", None)) if remote else None
    if login is None or login.url is None:
        from pipelines.runs.local import configure

        configure(database=full_airflow)
        login = None
    from pipelines.client import Client

    if login is None:
        return Client(full_airflow=full_airflow, timeout_seconds=getattr(args, "timeout", 3600.0))
    return Client(
        login.url,
        username=login.username,
        password=login.password,
        token=login.token,
        timeout_seconds=getattr(args, "timeout", 3600.0),
    )


class Progress:
    """The run command's lines: what starts, each run as it ends, what an interrupt left.

    Airflow's task runner turns a Ctrl-C inside a task into a failed task and goes on: the
    interrupt is noted here, and the run it ended is reported as interrupted, not as a failure.
    """

    def __init__(self, name: str, dag_id: str, *, quiet: bool = False):
        """:param quiet: print nothing (a command whose output is JSON)"""
        self.name, self.dag_id, self.quiet = name, dag_id, quiet
        self.days: list[str] = []
        self.done: list[str] = []  # days whose run (a cookbook's: its own DAG's run) ended
        self.stopping = False

    def start(self, days: list[str]) -> None:
        self.days = days
        if self.quiet:
            return
        span = days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]}"
        say(f"starting {plural(len(days), 'run')} of {self.name}: {span}", flush=True)

    def on_interrupt(self, signum, frame) -> None:
        self.stopping = True
        raise KeyboardInterrupt

    def show(self, outcome) -> None:
        if self.stopping:  # the task runner swallowed the interrupt: this run did not fail
            raise KeyboardInterrupt
        mark = "ok  " if outcome.ok else "FAIL"
        said = [summary(outcome)]
        if not outcome.ok:
            reason = f": {outcome.error}" if outcome.error else ""
            said.append(f"{outcome.failed_task or 'run'} {outcome.state}{reason}")
        line = f"{mark} {outcome.dag_id} {outcome.ds} ({outcome.seconds:.1f}s)"
        line += ": " + "; ".join(filter(None, said)) if any(said) else ""
        if outcome.dag_id == self.dag_id:
            self.done.append(outcome.ds)
        if not self.quiet:
            say(line, flush=True)

    def interrupted(self) -> None:
        left = [d for d in self.days if d not in self.done]
        rest = f"not finished: {_days(left)} (runs are idempotent: run them again)"
        say(f"interrupted; {rest if left else 'every run had finished'}", flush=True)


def summary(outcome) -> str:
    """What a run did, in words: rows raw / cleaned / quarantined (superseded), aggregates,
    checks."""
    from pipelines.steps.merge import MergeResult
    from pipelines.wiring.operators import (
        DETAILS,
        AggregateOperator,
        ExtractOperator,
        MergeOperator,
        WorkflowOperator,
    )
    from pipelines.wiring.task_ids import VERIFY

    results, parts = outcome.results, []
    if MergeOperator.task_path() in results:
        parts.append(accounting(MergeResult.from_dict(results[MergeOperator.task_path()])))
    elif ExtractOperator.task_path() in results:
        parts.append(f"raw {results[ExtractOperator.task_path()]['rows']}")
    aggregates = results.get(AggregateOperator.task_path(), {}).get(DETAILS, {})
    parts += [f"{name} {plural(r['rows'], 'row')}" for name, r in aggregates.items()]
    ran = results.get(WorkflowOperator.task_path(), {})
    if ran:
        shown = ", ".join(f"{k} {v}" for k, v in ran["metrics"].items())
        parts.append(f"{plural(ran['rows'], 'row')}" + (f", {shown}" if shown else ""))
    if VERIFY in results:
        checks = results[VERIFY]
        parts.append(f"checks {checks['passed']} passed, {checks['failed']} failed")
    return ", ".join(parts)


def accounting(merged) -> str:
    """A merge's four counts: ``raw 6, cleaned 4, quarantined 2 (33%, 1 superseded)``.

    Every raw row is counted once, as cleaned or quarantined (raw = cleaned + quarantined); the
    superseded rows (earlier versions of a key in the same delivery) are quarantined rows with
    that reason, so they are a part of the quarantined count, named in the brackets."""
    line = f"raw {merged.raw_rows}, cleaned {merged.delivered}, quarantined {merged.quarantined}"
    if not merged.quarantined:
        return line
    return line + f" ({merged.quarantined_pct:.0f}%, {merged.superseded} superseded)"


def _days(days: list[str]) -> str:
    """``2024-01-03``, or ``2024-01-03 .. 2024-01-09 (7 days)``."""
    return days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]} ({len(days)} days)"
