"""A real Airflow deployment for end-to-end tests: one temp home, real processes, one REST client.

Its metadata database is a fresh database of its own in the session's PostgreSQL server
(tests/e2e/postgres.py), a copy of the one template that ``airflow db migrate`` filled: the
servers and the LocalExecutor's parallel tasks write to it side by side, with no single-writer lock
to wait for as on SQLite. Everything binds 127.0.0.1. Each server runs in its own process group and
is stopped by that group's id (SIGTERM, then SIGKILL), also when start-up fails half-way.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.e2e import postgres

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
USERNAME = "admin"

_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_NODASH_DATE = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an Airflow process over this repo's dags/ and plugins/ in ``home``
    (its metadata database: SQLite in the Airflow home unless ``extra`` names another)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
    env.update(
        AIRFLOW_HOME=str(home / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        PIPELINES_HOME=str(home),
        PIPELINES_LAKE=str(home / "lake"),
        PIPELINES_TASK_RETRIES="0",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    env.pop("PIPELINES_NAMESPACE", None)
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    """``airflow db migrate`` into the env's (fresh) metadata database."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    command = [str(BIN / "airflow"), "db", "migrate"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def migrated_sqlite(env: dict[str, str], template: Path) -> None:
    """The env's Airflow home gets its SQLite metadata database as ``airflow db migrate`` writes
    it: a copy of ``template`` (tests/conftest.py's ``sqlite_template``)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, Path(env["AIRFLOW_HOME"]) / "airflow.db")


def _migrate_template(url: str) -> None:
    """``airflow db migrate`` into the database at ``url``, from a throw-away Airflow home."""
    with tempfile.TemporaryDirectory(prefix="airflow-template-") as home:
        migrate(airflow_env(Path(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url))


def shifted_include(home: Path, first_day: dt.date) -> dict[str, dt.date]:
    """Copy include/ to ``home`` with the sample moved in time so that 2024-01-01 is ``first_day``.

    Every ISO date in the sample and registry (and every date in a file name) moves by the same
    number of days, so the data keeps its shape: late updates, duplicates, a vanishing customer.
    :return: sample day ("2024-01-0N") -> the date it became
    """
    offset = first_day - dt.date(2024, 1, 1)

    def iso(m: re.Match) -> str:
        return (dt.date(*map(int, m.groups())) + offset).isoformat()

    def nodash(m: re.Match) -> str:
        return (dt.date(*map(int, m.groups())) + offset).strftime("%Y%m%d")

    src = REPO / "include"
    for path in sorted(src.rglob("*")):
        if path.is_dir():
            continue
        rel = path.relative_to(src)
        target = home / "include" / _NODASH_DATE.sub(nodash, _ISO_DATE.sub(iso, str(rel)))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_ISO_DATE.sub(iso, path.read_text()))
    return {f"2024-01-0{n}": dt.date(2024, 1, n) + offset for n in range(1, 5)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowStack:
    """api-server, scheduler (LocalExecutor) and dag-processor over one temp home and a fresh
    PostgreSQL database (``database``)."""

    COMMANDS = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"],
        # no log server: it would listen on every address, on one fixed port for all stacks (the
        # api-server reads the task logs from the shared home)
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
    }

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        airflow_home = home / "airflow"
        airflow_home.mkdir(parents=True, exist_ok=True)
        passwords = airflow_home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({USERNAME: self.password}))
        self.database = postgres.server().migrated_database(_migrate_template)
        self.env = airflow_env(
            home,
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgres.server().url(self.database),
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="4",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USERNAME}:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
            # one key for every process: each that starts before airflow.cfg exists would make a
            # key of its own, and a connection one encrypted the others could not read
            AIRFLOW__CORE__FERNET_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__BASE_URL=self.url,
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
            AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            # a cookbook's trigger tasks ask for their child run's state every second, not every
            # 10 s: a child that ends is seen at once (what they wait for stays the same)
            PIPELINES_TRIGGER_POKE_SECONDS="1",
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None

    # -- processes ----------------------------------------------------------------------------
    def start(self) -> None:
        for name, args in self.COMMANDS.items():
            log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [str(BIN / "airflow"), *(a.format(port=self.port) for a in args)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped by its id
            )
            log.close()

    # A server has shut down well within a second of the SIGTERM (the api-server's "Finished
    # server process", the scheduler's "Exited execute loop"); the interpreter's garbage
    # collection at exit then takes 5-10 s more on a loaded machine (faulthandler: "Garbage-
    # collecting", no Python frame), which nothing needs: SIGKILL comes after this grace.
    STOP_GRACE_S = 5

    def stop(self) -> None:
        """SIGTERM each server's process group, then SIGKILL what is left after STOP_GRACE_S."""
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.STOP_GRACE_S
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)  # workers/task processes left in the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    @contextlib.contextmanager
    def stopped_on_sigterm(self):
        """A SIGTERM to this process (a CI timeout) stops the servers before it interrupts."""

        def stop_then_interrupt(signum, frame):
            self.stop()
            raise KeyboardInterrupt(f"signal {signum}")

        previous = signal.signal(signal.SIGTERM, stop_then_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                code = proc.returncode
                raise AssertionError(f"airflow {name} exited ({code}):\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.home / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.tail(name, 25)}" for name in self.procs)

    # -- metadata database --------------------------------------------------------------------
    def query(self, sql: str, *args) -> list[tuple]:
        """The rows of one SQL statement (``%s`` placeholders) on the stack's metadata database."""
        return postgres.server().query(self.database, sql, *args)

    # -- REST ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, {"detail": exc.read().decode(errors="replace")}

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        status, answer = self.request(method, path, body)
        assert status < 300, f"{method} {path} -> {status}: {answer}"
        return answer

    def token(self) -> str:
        if self._token is None:
            status, answer = self.request(
                "POST", "/auth/token", {"username": USERNAME, "password": self.password}
            )
            assert status == 201, f"login failed ({status}): {answer}"
            self._token = answer["access_token"]
        return self._token

    def wait_ready(self, dag_ids: list[str], timeout: float = 90) -> None:
        """Until the API answers and every DAG id is parsed, with no import errors."""
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status, answer = self.request("GET", "/api/v2/dags?limit=100")
            except (urllib.error.URLError, ConnectionError):  # not listening yet
                status, answer = 0, {}
            if status == 200:
                seen = {d["dag_id"] for d in answer["dags"]}
                if set(dag_ids) <= seen:
                    errors = self.api("GET", "/api/v2/importErrors")
                    assert errors["total_entries"] == 0, errors
                    return
            time.sleep(1)
        raise AssertionError(f"DAGs not ready in {timeout}s (seen {sorted(seen)}):\n{self.logs()}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def runs(self, dag_id: str, **filters: str) -> list[dict]:
        query = urllib.parse.urlencode({"order_by": "logical_date", "limit": 100, **filters})
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["dag_runs"]

    def runs_on(self, dag_id: str, day: dt.date) -> list[dict]:
        at = f"{day.isoformat()}T00:00:00Z"
        return self.runs(dag_id, logical_date_gte=at, logical_date_lte=at)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
        tis = self.api("GET", path)["task_instances"]
        return {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in tis}

    def task_tries(self, dag_id: str, run_id: str) -> dict[str, dict[int, dict]]:
        """Every try of every task of a run, by task and try number: a try a later clear reset
        is kept as the history recorded it (state, start and end), not as the reset left it."""
        found: dict[str, dict[int, dict]] = {}
        for task_id in self.task_states(dag_id, run_id):
            path = (
                f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/"
                f"{task_id}/tries"
            )
            tries = found.setdefault(task_id, {})
            for ti in self.api("GET", path)["task_instances"]:  # history first, then current
                if ti["state"] is not None or ti["try_number"] not in tries:
                    tries[ti["try_number"]] = ti
        return found

    def wait_run(self, dag_id: str, run_id: str, timeout: float, want: str = "success") -> dict:
        """Until the run ends; fail with its task states and the server logs unless ``want``."""
        deadline = time.monotonic() + timeout
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}"
        run: dict = {}
        while time.monotonic() < deadline:
            self.check_alive()
            run = self.api("GET", path)
            if run["state"] in ("success", "failed"):
                break
            time.sleep(1)
        assert run.get("state") == want, (
            f"{dag_id} {run_id}: {run.get('state')} after {timeout}s; tasks "
            f"{self.task_states(dag_id, run_id)}\n{self.logs()}"
        )
        return run


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the group id is the leader's pid (start_new_session)
