"""Fixtures of the reliability suite, and the one summary line it prints at the end.

Every module adds its figures to :data:`FIGURES` (the attack cases of issue 26 as
``secret_cases``/``secrets_printed`` (a secret that reached any output), ``escape_cases``/
``escapes_escaped`` (a write, create or delete outside the namespace, or raw control text on
the terminal) and ``corruption_cases``/``corruptions_healed``); ``pytest_terminal_summary``
prints them as ``reliability: ...`` whenever any reliability test ran (no ``-s`` needed).
Under pytest-xdist the tests run in worker processes: each worker hands its figures to the
controller when it finishes (``workeroutput``), and the controller prints their sum.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from tests.reliability import workload
from tests.reliability.s3server import S3Server

FIGURES: Counter = Counter()
S3_OUTCOMES: Counter = Counter()
PRELOAD = [
    "tests.reliability.workload",
    "pipelines.steps.dataset",
    "pipelines.inspection.reader",
    "airflow.providers.amazon.aws.fs.s3",  # 5 s to import: paid once, in the forkserver
    "deltalake",  # with pyarrow's dataset and parquet modules, ~1.7 s a worker would pay
    "pyarrow.dataset",
    "pyarrow.parquet",
    "pyarrow.pandas_compat",
    "croniter",
]


S3_MODULES = ("reliability/test_object_storage", "reliability/test_delta_s3")


def pytest_runtest_logreport(report):
    on_s3 = any(module in report.nodeid for module in S3_MODULES)
    if on_s3 and report.when == "call":
        S3_OUTCOMES[report.outcome] += 1
    elif on_s3 and report.failed:
        S3_OUTCOMES["failed"] += 1  # set-up or tear-down errors


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints the line
        workeroutput["reliability_figures"] = dict(FIGURES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    FIGURES.update(getattr(node, "workeroutput", {}).get("reliability_figures", {}))


def pytest_terminal_summary(terminalreporter):
    if FIGURES or S3_OUTCOMES:
        terminalreporter.write_line(summary_line(FIGURES, S3_OUTCOMES))


def summary_line(figures: Counter, s3: Counter) -> str:
    tried, passed = figures["bad_input_tried"], figures["bad_input_passed"]
    cases = f"{passed} bad-input cases" + (f" ({tried - passed} FAILED)" if tried != passed else "")
    modes = f"{figures['modes_identical']} concurrency modes identical"
    if figures["modes_tried"] != figures["modes_identical"]:
        modes += f" ({figures['modes_tried'] - figures['modes_identical']} DIFFERENT)"
    status = "not run" if not s3 else ("ok" if set(s3) <= {"passed"} else "FAILED")
    return (
        f"reliability: {cases}, {figures['kills']} kills, {figures['corrupt_reads']} corrupt reads"
        f" (of {figures['checked_reads']} checked), {figures['lost_rows']} lost rows, {modes}, "
        f"{figures['conflicts']} commit conflicts retried, "
        f"secrets: {figures['secret_cases']} cases, {figures['secrets_printed']} printed, "
        f"escapes: {figures['escape_cases']} cases, {figures['escapes_escaped']} escaped, "
        f"corruptions: {figures['corruption_cases']} cases, "
        f"{figures['corruptions_healed']} healed, "
        f"s3: {status}"
    )


@pytest.fixture(scope="session")
def figures() -> Counter:
    return FIGURES


def scratch_base() -> Path | None:
    """tmpfs when there is a roomy one: the suite commits thousands of small files and fsyncs
    each; on tmpfs that costs nothing (and a SIGKILL does not drop the page cache)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1 << 30:
        return shm
    return None  # the system temp folder


@pytest.fixture
def case(figures):
    """Counts a bad-input case as tried, and as passed when the test body got to the end."""
    figures["bad_input_tried"] += 1
    yield
    figures["bad_input_passed"] += 1


@pytest.fixture
def fast_dir():
    path = Path(tempfile.mkdtemp(prefix="reliability-", dir=scratch_base()))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir():
    path = Path(tempfile.mkdtemp(prefix="reliability-session-", dir=scratch_base()))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def project(session_dir) -> Path:
    """The generated 14-day project (read-only: tests give each run its own lake)."""
    return workload.make_project(session_dir / "project")


@pytest.fixture(scope="session")
def reference(project, session_dir) -> dict[str, str]:
    """Fingerprints of every table after the 14 days ran once, in order, in this process."""
    env = workload.Env(str(project), str(session_dir / "reference-lake"))
    workload.run(env, workload.DATASETS, workload.DAYS)
    return workload.lake_state(env)


@pytest.fixture(scope="session")
def procs():
    """Start real worker processes cheaply: a forkserver that has imported pandas, the package
    and the amazon provider once; every child is then a fork of it (killable, isolated)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


@pytest.fixture(autouse=True, scope="module")
def fresh_filesystem():
    """s3fs filesystems and delta-rs storage options are cached per connection id: every module
    starts and ends with none cached."""
    from pipelines.runtime.secrets import delta_storage_options, s3_filesystem

    s3_filesystem.cache_clear()
    delta_storage_options.cache_clear()
    yield
    s3_filesystem.cache_clear()
    delta_storage_options.cache_clear()


@pytest.fixture(scope="session")
def s3():
    """A real moto S3 server on 127.0.0.1 behind a fault-injecting proxy (both stopped after)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3Server()
    server.start()
    yield server
    server.stop()
