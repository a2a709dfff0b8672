"""Shared test set-up: an isolated Airflow home, project home and lake per test session / test.

Airflow reads its configuration when first imported, so the environment is set here, before any
test module imports Airflow. Nothing here touches the network.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path

import pytest

from tests import alone

REPO = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="pipelines-tests-"))

# Bytecode for every process the tests start (xdist workers, the Airflow servers and CLIs, the
# `pipelines` command, the reliability forkserver): the first to import a module compiles it into
# one shared folder, the others read it there. With PYTHONDONTWRITEBYTECODE set (as on this
# machine) and a venv installed without .pyc files, each process compiled Airflow, pandas, pyarrow
# and SQLAlchemy from source again: ~4 s of CPU per process (7.8 s against 3.7 s to import
# them), for hundreds of processes. Python checks each .pyc against its source's mtime and size.
# The folder is outside the checkout and the venv; this process keeps its own setting.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault(
    "PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / f"pipelines-pycache-{os.getuid()}")
)

os.environ["AIRFLOW_HOME"] = str(_SESSION_HOME / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
os.environ["PIPELINES_TASK_RETRIES"] = "0"
os.environ["PIPELINES_HOME"] = str(REPO)
os.environ["PIPELINES_LAKE"] = str(_SESSION_HOME / "lake")
# the repo is a git checkout: without this its branch (whatever CI checked out) would name the
# namespace; the tests of branch and bundle resolution set or unset it themselves
os.environ["PIPELINES_NAMESPACE"] = "local"
os.environ.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
# OpenLineage stays off whatever the shell sets, so no event leaves the machine (the lineage
# tests turn it on, with a file transport, for their own runs)
for _name in [n for n in os.environ if n.startswith(("OPENLINEAGE", "AIRFLOW__OPENLINEAGE__"))]:
    del os.environ[_name]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Each test (its set-up and teardown too) holds a turn shared with the other workers', which
    a timing test takes alone for its timed lines (:mod:`tests.alone`)."""
    with alone.shared():
        yield


def pytest_sessionfinish(session, exitstatus):
    alone.forget()
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


_SQLITE_TEMPLATE = _SESSION_HOME / "migrated-airflow.db"


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated SQLite metadata database for this session (``airflow db migrate``)."""
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    from pipelines.runs.local import init_database

    database = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    if not database.exists():
        init_database()
        # as migrated, before any test writes to it: what sqlite_template hands out
        source, copy = sqlite3.connect(database), sqlite3.connect(_SQLITE_TEMPLATE)
        with closing(source), closing(copy):
            source.backup(copy)
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="session")
def sqlite_template(airflow_db) -> Path:
    """A just-migrated SQLite metadata database (this session's, before any test wrote to it):
    copied into an Airflow home, the same file as an ``airflow db migrate`` there writes, without
    the migration's tens of seconds per home. Should a test have made the session's database
    without ``airflow_db``, the template is migrated by ``airflow db migrate`` in a home of its
    own."""
    if not _SQLITE_TEMPLATE.is_file():
        home = _SESSION_HOME / "template-airflow"
        env = {**os.environ, "AIRFLOW_HOME": str(home)}
        env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW__DATABASE__")}
        command = [str(Path(sys.executable).parent / "airflow"), "db", "migrate"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        shutil.copyfile(home / "airflow.db", _SQLITE_TEMPLATE)
    return _SQLITE_TEMPLATE


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A copy of the project's include/ in a temp project home, with its own empty lake."""
    shutil.copytree(REPO / "include", tmp_path / "include")
    monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
    monkeypatch.setenv("PIPELINES_LAKE", str(tmp_path / "lake"))
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
    return tmp_path


def write_registry(home: Path, text: str) -> Path:
    """Replace the registry of a ``home`` fixture (aggregates, workflows, cookbooks and the
    declared columns are emptied: they name the sample's datasets)."""
    path = home / "include" / "registry.csv"
    path.write_text(text)
    (home / "include" / "aggregates.yaml").write_text("[]\n")
    (home / "include" / "cookbooks.yaml").write_text("[]\n")
    (home / "include" / "workflows.yaml").write_text("[]\n")
    (home / "include" / "columns.yaml").write_text("{}\n")
    return path


def data_columns(frame):
    """Columns compared for idempotency: everything not starting with ``_``, in a stable order."""
    cols = sorted(c for c in frame.columns if not c.startswith("_"))
    return frame[cols].sort_values(cols).reset_index(drop=True) if len(frame) else frame[cols]
