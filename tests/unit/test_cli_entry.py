"""The console script leaves through ``pipelines.cli.entry``: Python's exit handlers, flushed
output and main's exit code, without the interpreter's native teardown (where pyarrow's thread
pools could abort a finished run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import atexit, sys
atexit.register(lambda: print("exit handler ran"))
sys.argv = ["pipelines", *sys.argv[1:]]
from pipelines.cli import entry
entry()
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIPELINES_HOME": str(ROOT), "PIPELINES_NAMESPACE": "entry_test"}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_good_command_exits_0_with_its_whole_output_and_the_exit_handlers_run():
    done = _run("validate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "exit handler ran"
    assert "valid; 0 problems" in done.stderr  # the summary goes to stderr: flushed too


def test_a_user_mistake_keeps_its_exit_code_1():
    done = _run("read", "no_such_dataset")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no_such_dataset" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.splitlines()[-1] == "exit handler ran"


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`pipelines list | head -0`: the pipe is closed before the command writes; it ends with
    the shell's SIGPIPE status and no BrokenPipeError traceback."""
    env = {**os.environ, "PIPELINES_HOME": str(ROOT), "PIPELINES_NAMESPACE": "entry_test"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.replace("exit handler ran", ""), "list"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
