"""A test that times a command runs it while no other test of the suite runs.

The suite runs on two pytest-xdist workers on a two-core machine, and a test on the other worker
may start an Airflow stack or a dozen processes: a figure measured meanwhile measures them too
(``pipelines status`` took 2.87 s against its 2 s budget beside one, and under 1 s alone). Every
test runs holding a shared lock (:func:`shared`, from the suite's ``conftest.py``); the timed
part of a test takes it alone (:func:`alone`), waiting for the other worker's test to end and
holding its next one back until the timing is done. Only the timed lines wait, not the test's
set-up: the other worker is held for seconds.

The locks are ``flock`` files named by the run (``PYTEST_XDIST_TESTRUNUID``, the same on every
worker of one run); without xdist a test runs alone anyway, and both are no-ops. A gate file
keeps the exclusive wait from starving: a worker asks the gate before each test, and a timing
test holds it while it waits for its turn.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class _Locks:
    def __init__(self, run: str):
        folder = Path(tempfile.gettempdir())
        self.paths = [folder / f"pipelines-tests-{run}.{name}" for name in ("gate", "turn")]
        self.gate: IO = open(self.paths[0], "a+")  # noqa: SIM115
        self.turn: IO = open(self.paths[1], "a+")  # noqa: SIM115


_locks: _Locks | None = None


def _mine() -> _Locks | None:
    global _locks
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run and _locks is None:
        _locks = _Locks(run)
    return _locks


@contextlib.contextmanager
def shared() -> Iterator[None]:
    """Hold a turn shared with the other workers' tests (the whole of one test)."""
    locks = _mine()
    if locks is None:
        yield
        return
    fcntl.flock(locks.gate, fcntl.LOCK_SH)  # waits while a timing test waits or times
    fcntl.flock(locks.turn, fcntl.LOCK_SH)
    fcntl.flock(locks.gate, fcntl.LOCK_UN)
    try:
        yield
    finally:
        fcntl.flock(locks.turn, fcntl.LOCK_UN)


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Inside :func:`shared`: hold the turn alone while inside (the other worker's test running
    now ends first; its next one starts after)."""
    locks = _mine()
    if locks is None:
        yield
        return
    # give up this test's shared turn first: two timing tests at once would each wait for the
    # other's turn otherwise
    fcntl.flock(locks.turn, fcntl.LOCK_UN)
    fcntl.flock(locks.gate, fcntl.LOCK_EX)
    fcntl.flock(locks.turn, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(locks.turn, fcntl.LOCK_SH)  # the rest of this test, shared again
        fcntl.flock(locks.gate, fcntl.LOCK_UN)


def forget() -> None:
    """Remove the lock files at a worker's end (the other worker holds them open already)."""
    if _locks is not None:
        for path in _locks.paths:
            path.unlink(missing_ok=True)
