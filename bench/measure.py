"""Child processes, timed and repeated side by side.

Every measured thing runs in a fresh child process so that imports, caches and memory of one
measurement never leak into another. A child may print one JSON object as its last stdout line
(see :mod:`bench.workers.common`: work seconds, peak RSS); it comes back as
:attr:`Sample.result`. Peak RSS is reported by the child itself: the kernel's ``ru_maxrss`` of a
child (``wait4``, ``RUSAGE_CHILDREN``) includes the parent's memory it was forked from.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.workers.common import RESULT_PREFIX

PYTHON = sys.executable
BIN = Path(PYTHON).parent
DEFAULT_TIMEOUT = 600.0
RSS = re.compile(r"^VmRSS:\s+(\d+) kB$", re.MULTILINE)


@dataclass
class _Profiling:
    """Where Python children write cProfile output (set by :func:`profile_children`)."""

    folder: Path | None = None
    count: int = 0


_PROFILING = _Profiling()


class BenchError(RuntimeError):
    """A measured child failed or produced something other than the work asked for."""


class ChildFailed(BenchError):
    """A child exited non-zero, was killed, or ran out of time.

    :param reason: one line: ``timed out after 300 s``, ``killed by SIGKILL (out of memory?)``,
        ``exited 1: MemoryError``
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Sample:
    """One child run.

    :param wall: seconds from start to exit, as the parent saw them
    :param result: the JSON object the child reported, or ``{}``
    """

    wall: float
    result: dict = field(default_factory=dict)

    def get(self, key: str) -> float:
        """``wall``, or a number the child reported."""
        return self.wall if key == "wall" else float(self.result[key])


def run_child(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    rss_cap: int | None = None,
) -> Sample:
    """Run ``argv`` to completion; raise :class:`BenchError` on a non-zero exit or time-out.

    The child runs in the temporary folder, never in the repo, so that nothing it leaves behind
    lands in the work tree (``bench`` and the product are found through ``PYTHONPATH``).

    :param rss_cap: bytes: stop the child (:class:`ChildFailed`) once its resident memory passes
        them, before it takes the memory other work on the machine needs
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        _profiled(list(argv)),
        env=dict(env),
        cwd=tempfile.gettempdir(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    capped = _watch_rss(proc, rss_cap) if rss_cap else threading.Event()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        reason = f"timed out after {timeout:.0f} s"
        raise ChildFailed(f"{' '.join(argv)} {reason}", reason) from None
    if capped.is_set():
        reason = f"stopped: resident memory passed {rss_cap / 2**30:.1f} GiB"
        raise ChildFailed(f"{' '.join(argv)} {reason}", reason)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise ChildFailed(
            f"{' '.join(argv)} exited {proc.returncode}:\n{_tail(stderr + stdout)}",
            _why(proc.returncode, stderr),
        )
    return Sample(wall=wall, result=_result(stdout))


def run_python(
    module: str,
    *args: str,
    env: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    rss_cap: int | None = None,
) -> Sample:
    """Run ``python -m module args`` in the venv's interpreter."""
    return run_child([PYTHON, "-m", module, *args], env, timeout=timeout, rss_cap=rss_cap)


def _watch_rss(proc: subprocess.Popen, cap: int) -> threading.Event:
    """Kill ``proc``'s process group once its resident memory passes ``cap`` bytes (polled four
    times a second); the event is set when it did."""
    capped = threading.Event()
    status = Path(f"/proc/{proc.pid}/status")

    def watch() -> None:
        while proc.poll() is None:
            with contextlib.suppress(OSError, AttributeError):
                found = RSS.search(status.read_text())
                if int(found.group(1)) * 1024 > cap:
                    capped.set()
                    os.killpg(proc.pid, signal.SIGKILL)
                    return
            time.sleep(0.25)

    threading.Thread(target=watch, daemon=True).start()
    return capped


def side_by_side(
    variants: Mapping[str, Callable[[], Sample]], repeats: int, *, warmup: bool = True
) -> dict[str, list[Sample]]:
    """Run every variant ``repeats`` times, interleaved, so drift hits all of them alike.

    A first untimed round (``warmup``) fills the page cache and writes ``.pyc`` files.
    """
    if warmup:
        for run in variants.values():
            run()
    samples: dict[str, list[Sample]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            samples[name].append(run())
    return samples


def median(samples: Sequence[Sample], key: str = "wall") -> float:
    """The median of one figure over repeated samples."""
    return statistics.median(s.get(key) for s in samples)


def profile_children(folder: Path) -> None:
    """From now on, run Python children under cProfile, one ``NN-name.prof`` each in ``folder``.

    Covers ``python -m module`` children and the venv's console scripts (``pipelines``,
    ``airflow``); ``python -c`` children run as they are. Timings taken meanwhile are not
    comparable with unprofiled ones.
    """
    folder.mkdir(parents=True, exist_ok=True)
    _PROFILING.folder = folder


def _profiled(argv: list[str]) -> list[str]:
    folder = _PROFILING.folder
    if folder is None:
        return argv
    if argv[:2] == [PYTHON, "-m"]:
        target, name = argv[1:], argv[2].rsplit(".", 1)[-1]
    elif Path(argv[0]).parent == BIN and argv[0] != PYTHON:
        target, name = argv, "-".join(Path(a).name for a in argv[:2])
    else:
        return argv
    _PROFILING.count += 1
    output = folder / f"{_PROFILING.count:02d}-{name}.prof"
    return [PYTHON, "-m", "cProfile", "-o", str(output), *target]


def _why(returncode: int, stderr: str) -> str:
    """A failed child's exit in one line: its signal, or its code and last line of stderr."""
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        oom = " (out of memory?)" if -returncode == signal.SIGKILL else ""
        return f"killed by {name or f'signal {-returncode}'}{oom}"
    last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
    return f"exited {returncode}" + (f": {last.strip()[:200]}" if last else "")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _result(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    return {}
