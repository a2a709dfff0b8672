"""tests/alone.py: a timed section starts after the other worker's running test ends, and the
other worker's next test starts after the timed section ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from tests.conftest import REPO

WORKER = """
import sys, time
from tests import alone

def mark(what):
    print(what, time.monotonic(), flush=True)

if sys.argv[1] == "other":
    with alone.shared():  # a test running when the timing test asks
        mark("other-started")
        time.sleep(1.5)
        mark("other-ended")
    time.sleep(0.2)
    with alone.shared():  # its next test
        mark("next-started")
else:
    time.sleep(0.5)
    with alone.shared():
        with alone.alone():
            mark("alone-started")
            time.sleep(1.0)
            mark("alone-ended")
    alone.forget()
"""


def test_a_timed_section_runs_while_no_other_test_runs(tmp_path):
    env = {**os.environ, "PYTEST_XDIST_TESTRUNUID": uuid.uuid4().hex, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, role], env=env, stdout=subprocess.PIPE, text=True
        )
        for role in ("other", "timing")
    ]
    outs = [w.communicate(timeout=30)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    at = {
        name: float(value) - started
        for out in outs
        for name, value in (line.split() for line in out.splitlines())
    }
    assert at["other-started"] < at["alone-started"]  # the timing test asked while it ran
    assert at["other-ended"] <= at["alone-started"]
    assert at["alone-ended"] <= at["next-started"]
