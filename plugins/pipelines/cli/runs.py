"""``pipelines run`` and ``pipelines backfill``: what starts, each run as it ends, what is left."""

from __future__ import annotations

import argparse
import signal

from pipelines.cli.text import plural, warn_skipped


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.common.partitions import date_option
    from pipelines.runs.local import configure

    if args.command == "run":
        start = end = date_option(args.date, "--date")
    else:
        start, end = date_option(args.start, "--start"), date_option(args.end, "--end")
    configure(verbose=args.verbose, database=args.airflow)
    from pipelines.client import Client
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

    progress = Progress(args.name, project.dag_id(args.name))
    previous = signal.signal(signal.SIGINT, progress.on_interrupt)
    try:
        results = Client(full_airflow=args.airflow).submit(
            args.name,
            start,
            end=end,
            allow_incomplete=args.allow_incomplete,
            keep_going=getattr(args, "keep_going", False),
            upstream=args.upstream,
            on_start=progress.start,
            on_run=progress.show,
        )
    except KeyboardInterrupt:
        progress.interrupted()
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    ran = [d for d in results.days if d not in results.not_run]
    failed = {r.ds for r in results.runs if not r.ok}
    print(f"{len([d for d in ran if d not in failed])}/{len(ran)} runs succeeded")
    if results.not_run:
        print(f"not run: {_days(results.not_run)} (rerun them, or pass --keep-going)")
    return 0 if results.ok else 1


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
        print(f"starting {plural(len(days), 'run')} of {self.name}: {span}", flush=True)

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
            print(line, flush=True)

    def interrupted(self) -> None:
        left = [d for d in self.days if d not in self.done]
        rest = f"not finished: {_days(left)} (runs are idempotent: run them again)"
        print(f"interrupted; {rest if left else 'every run had finished'}", flush=True)


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
