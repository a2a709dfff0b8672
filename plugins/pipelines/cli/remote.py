"""``pipelines submit`` (a run and its outputs, here or on Airflow) and ``pipelines backfill
--url`` (an Airflow backfill under the scheduler, followed run by run)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from pipelines.cli.runs import Progress, client_for, cmd_run
from pipelines.cli.text import escaped, plural, say, say_json, table, warn_skipped
from pipelines.exceptions import PipelinesError


def cmd_submit(args: argparse.Namespace) -> int:
    from pipelines.common.partitions import date_option

    start, end = _range(args)
    client = client_for(args)
    from pipelines.project.config import load_project

    project = load_project()
    project.require_readable()
    warn_skipped(project)
    quiet = args.json
    no_wait = args.no_wait and client.airflow is not None  # a run here has ended on return
    progress = Progress(args.name, project.dag_id(args.name, client.namespace), quiet=quiet)
    waiting = _Waiting(quiet=quiet)
    result = client.submit(
        args.name,
        date_option(start, "--date") if start else None,
        end=date_option(end, "--end") if end else None,
        conf=_conf(args.conf),
        wait=not no_wait,
        allow_incomplete=args.allow_incomplete,
        on_start=progress.start,
        on_run=lambda outcome: (waiting.done(), progress.show(outcome)),
        on_state=waiting.show,
    )
    results = list(result) if isinstance(result, list) else [result]
    outputs = result.outputs if not no_wait else None
    if args.json:
        say_json(_as_json(args.name, results, outputs), default=str)
    elif no_wait:
        for r in results:
            say(f"started {r.dag_id} {r.logical_date}: {r.run_id} ({r.url})")
    else:
        _print_outputs(outputs)
    return 0 if no_wait or all(r.ok for r in results) else 1


def _range(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if args.date and (args.start or args.end):
        raise PipelinesError("give --date, or --start and --end, not both")
    if bool(args.start) != bool(args.end):
        raise PipelinesError("--start and --end go together")
    return (args.date, None) if not args.start else (args.start, args.end)


def _conf(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        conf = json.loads(text)
    except ValueError as exc:
        raise PipelinesError(f"--conf: not JSON: {exc}") from None
    if not isinstance(conf, dict):
        raise PipelinesError("--conf: must be a JSON object, e.g. '{\"key\": 1}'")
    return conf


class _Waiting:
    """The line that says how a remote run stands while it is waited for: rewritten in place on
    a terminal, one line per new state otherwise (a log file keeps every change, once)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty()
        self.last: tuple[str, str] | None = None

    def show(self, run) -> None:
        if self.quiet:
            return
        line = f"  {run.dag_id} {run.ds}: {run.state} ({run.seconds:.0f}s)"
        if self.tty:
            print("\r" + escaped(line).ljust(70), end="", flush=True)
        elif self.last != (run.run_id, run.state):
            say(line, flush=True)
        self.last = (run.run_id, run.state)

    def done(self) -> None:
        if self.tty and self.last is not None and not self.quiet:
            print("\r" + " " * 70 + "\r", end="", flush=True)
        self.last = None


def _print_outputs(outputs) -> None:
    values = outputs.metrics
    if values:
        table([("output", "value"), *((k, _shown(v)) for k, v in values.items())])
    else:
        say("no outputs (no run succeeded)")
    if outputs.tables:
        say(f"tables: {', '.join(outputs.tables)} (outputs.tables[...] in Python)")


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _as_json(name: str, results: list, outputs) -> dict:
    return {
        "name": name,
        "ok": all(r.ok for r in results),
        "runs": [
            {
                "dag_id": r.dag_id,
                "logical_date": r.logical_date,
                "run_id": r.run_id,
                "state": r.state,
                "url": r.url,
                "failed_task": r.failed_task,
                "error": r.error,
            }
            for r in results
        ],
        "outputs": outputs.as_dict() if outputs is not None else None,
        "tables": list(outputs.tables) if outputs is not None else [],
    }


def cmd_backfill(args: argparse.Namespace) -> int:
    """``pipelines backfill``: through Airflow's backfills endpoint with ``--url``, else here,
    day by day."""
    from pipelines.runtime.environment import airflow_login

    args.url = airflow_login(args.url).url
    if args.stale:  # exact days, not a range: each run started on its own (here or on Airflow)
        return cmd_run(args)
    if args.url or args.run_backwards:
        if not args.url:
            raise PipelinesError("--run-backwards is for an Airflow backfill: give --url")
        if args.airflow or args.upstream:
            raise PipelinesError("--airflow and --upstream run here: they cannot go with --url")
        return cmd_remote_backfill(args)
    return cmd_run(args)


def cmd_remote_backfill(args: argparse.Namespace) -> int:
    """An Airflow backfill of ``--start`` .. ``--end``, followed until it completes: a line per
    run as it ends (with what it did), then how many succeeded."""
    from pipelines.client import outcome_of
    from pipelines.common.partitions import date_option
    from pipelines.project.run_dates import run_dates
    from pipelines.runs.airflow_rest import FINISHED

    client = client_for(args)
    from pipelines.project.config import load_project

    project = load_project()
    project.require_readable()
    warn_skipped(project)
    first, last = date_option(args.start, "--start"), date_option(args.end, "--end")
    days = run_dates(project, args.name, first, last)
    dag_id = project.dag_id(args.name, client.namespace)
    airflow = client.airflow
    backfill = airflow.create_backfill(
        dag_id,
        days[0],
        days[-1],
        max_active_runs=args.max_active_runs,
        reprocess=args.reprocess,
        backwards=args.run_backwards,
    )
    order = "newest first" if args.run_backwards else "oldest first"
    say(
        f"backfill {backfill} of {dag_id}: {plural(len(days), 'day')} {days[0]} .. {days[-1]}, "
        f"{args.max_active_runs} at a time, {order} ({airflow.url}/dags/{dag_id}/backfills)",
        flush=True,
    )
    progress = Progress(args.name, dag_id)
    started, reported = time.monotonic(), {}
    while True:
        completed, runs = airflow.backfill_runs(dag_id, backfill)
        for run in runs:
            if run.state in FINISHED and run.run_id not in reported:
                took = run.seconds  # the run's own duration, as Airflow recorded it
                reported[run.run_id] = done = airflow.wait(run, timeout=client.timeout_seconds)
                done.seconds = took
                progress.show(outcome_of(done))
        if completed and all(r.run_id in reported for r in runs):
            break
        if time.monotonic() - started > client.timeout_seconds:
            raise PipelinesError(
                f"backfill {backfill} of {dag_id} has not completed after "
                f"{client.timeout_seconds:.0f}s; it goes on under the scheduler"
            )
        time.sleep(client.poll_seconds)
    good = sum(r.state == "success" for r in reported.values())
    say(f"{good}/{len(reported)} runs succeeded (backfill {backfill})")
    return 0 if reported and good == len(reported) else 1
