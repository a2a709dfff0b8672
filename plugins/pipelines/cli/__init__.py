"""The ``pipelines`` command: thin argument parsing over the package.

User mistakes (bad config, unknown names, missing data) print a message on stderr and exit 1,
without a traceback and without a credential (:func:`~pipelines.runtime.secrets.redact`); a
traceback means a bug. stdout carries the command's output alone (``--json``, ``read --format
csv`` into a file: never an error line among the rows). ``--namespace`` (on every command that
touches the lake or the DAGs) stands for ``PIPELINES_NAMESPACE`` while the command runs.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

from pipelines.cli import plan
from pipelines.cli.parser import build as build_parser
from pipelines.cli.text import say, say_lines
from pipelines.exceptions import ConfigError, PipelinesError
from pipelines.runtime.secrets import redact


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with _namespace(getattr(args, "namespace", None)):
            return args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            say(problem, file=sys.stderr)
        return 1
    except PipelinesError as exc:
        # the last guard: no credential in a URL it names
        say_lines(f"error: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``pipelines`` console script: :func:`main`, then the exit handlers, then the exit.

    It leaves without the interpreter's own teardown: pyarrow's native thread pools could abort
    the process there ("terminate called without an active exception", SIGABRT, apache/arrow
    #34314) after every run had succeeded, turning a good run's exit code into 134. Python's exit
    handlers (logging, Airflow's) still run, and the output is flushed first. A reader that
    stops early (``pipelines status | head``) ends the command quietly, as SIGPIPE ends ``cat``.
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
        code = 141  # 128 + SIGPIPE, what a shell reports for a command a pipe's end stopped
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


@contextlib.contextmanager
def _namespace(value: str | None) -> Iterator[None]:
    """``PIPELINES_NAMESPACE`` = ``value`` while inside (checked like the variable itself)."""
    if value is None:
        yield
        return
    from pipelines.runtime import environment

    with environment.variable("PIPELINES_NAMESPACE", value):
        environment.namespace()
        yield


def _parser() -> argparse.ArgumentParser:
    """Every sub-command (:func:`pipelines.cli.parser.build`), ``plan`` last."""
    return build_parser(plan.add_parser)


if __name__ == "__main__":
    entry()
