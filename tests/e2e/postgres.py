"""A real PostgreSQL server for the e2e Airflow stacks' metadata databases: one per test session,
started on first use (:func:`server`), stopped at the session's end (tests/e2e/conftest.py).

It lives in a temp folder (``initdb -A trust``, no password), listens on 127.0.0.1 only (and a
unix socket in that folder), and runs without fsync: its data is thrown away. Each stack gets a
fresh database of its own, a copy of one migrated template (``migrated_database``).
initdb and postgres refuse to run as root: as root they run as the ``postgres`` system user (else
``nobody``), which owns the folder. The server runs in a session of its own and is stopped by its
PID, also when start-up fails half-way. The binaries come from PATH, else from Debian's
``/usr/lib/postgresql/<version>/bin`` (the ``postgresql`` package, which .ci/run installs).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest

SUPERUSER = "airflow"  # initdb -U: the role every stack connects as
HOST = "127.0.0.1"
SETTINGS = {
    "max_connections": "200",  # several stacks' api-server, scheduler, dag-processor, workers
    "fsync": "off",  # test data only: speed over durability
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "TimeZone": "UTC",
}
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
INSTALL = "install Debian's PostgreSQL server: apt-get install -y postgresql (.ci/run does)"


def find_binaries() -> tuple[Path, Path]:
    """``initdb`` and ``postgres``: from PATH, else Debian's folder of the highest version."""
    on_path = shutil.which("initdb"), shutil.which("postgres")
    if all(on_path):
        return Path(on_path[0]), Path(on_path[1])
    folders = DEBIAN_BINARIES.glob("*/bin") if DEBIAN_BINARIES.is_dir() else []
    versions = sorted(
        (tuple(int(n) for n in re.findall(r"\d+", f.parent.name)), f)
        for f in folders
        if (f / "initdb").is_file() and (f / "postgres").is_file()
    )
    if not versions:
        pytest.fail(
            f"no PostgreSQL server binaries (initdb, postgres) on PATH or under "
            f"{DEBIAN_BINARIES}/*/bin: the e2e Airflow stack needs one; {INSTALL}",
            pytrace=False,
        )
    folder = versions[-1][1]
    return folder / "initdb", folder / "postgres"


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root (None: run as we are)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.fail("running as root and there is no 'postgres' or 'nobody' user", pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class PostgresServer:
    """initdb into a temp folder, ``postgres`` on a free port of 127.0.0.1, databases on demand."""

    def __init__(self):
        self.initdb, self.postgres = find_binaries()
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="pipelines-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._names = itertools.count(1)
        self._template: str | None = None  # see migrated_database

    # -- processes ----------------------------------------------------------------------------
    def _popen_args(self) -> dict:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        args: dict = {"env": env, "stdin": subprocess.DEVNULL, "cwd": self.root}
        if self.user is not None:  # root: drop to the unprivileged user in the child
            env["HOME"] = str(self.root)
            args.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return args

    def start(self, timeout: float = 60) -> None:
        """initdb, then the server, until it accepts connections; stopped again on any failure."""
        try:
            if self.user is not None:
                os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            command = [str(self.initdb), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust"]
            command += ["-E", "UTF8", "--locale=C", "--no-sync"]
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=120, **self._popen_args()
            )
            assert done.returncode == 0, f"initdb failed:\n{done.stdout[-3000:]}{done.stderr}"
            for _attempt in range(3):  # the free port may be taken before postgres binds it
                if self._serve(timeout):
                    return
            raise AssertionError(f"postgres did not start:\n{self.tail()}")
        except BaseException:
            self.stop()
            raise

    def _serve(self, timeout: float) -> bool:
        """Start postgres on a free port; True once it answers, False if it exited at once."""
        self.port = free_port()
        command = [str(self.postgres), "-D", str(self.data), "-k", str(self.root)]
        command += ["-h", HOST, "-p", str(self.port)]
        for key, value in SETTINGS.items():
            command += ["-c", f"{key}={value}"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped by its id
                **self._popen_args(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "could not bind" in self.tail():
                    return False  # the port was taken: another try
                raise AssertionError(f"postgres exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                self.connect("postgres").close()
                return True
            except psycopg2.OperationalError:  # not accepting connections yet
                time.sleep(0.2)
        raise AssertionError(f"postgres not accepting connections in {timeout}s:\n{self.tail()}")

    def stop(self) -> None:
        """Stop the server by its PID, then remove the temp folder: SIGINT (PostgreSQL's fast
        shutdown; its SIGTERM would wait for every client to leave), SIGQUIT (immediate) after
        15 s, SIGKILL after 5 more. Its backends are their own process groups: they exit with it.
        """
        if self.proc is not None:
            for sig, wait in ((signal.SIGINT, 15), (signal.SIGQUIT, 5), (signal.SIGKILL, 5)):
                if self.proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=wait)
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- databases ----------------------------------------------------------------------------
    def connect(self, database: str):
        """A psycopg2 connection (autocommit, timestamps in UTC) to one of its databases."""
        con = psycopg2.connect(
            host=HOST,
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            connect_timeout=5,
            options="-c TimeZone=UTC",
        )
        con.autocommit = True
        return con

    def create_database(self, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template`` (no one may be connected to it); its
        name."""
        name = f"airflow_{next(self._names)}_{os.getpid()}"
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        con = self.connect("postgres")
        try:
            with con.cursor() as cur:
                cur.execute(sql)
        finally:
            con.close()
        return name

    def migrated_database(self, migrate: Callable[[str], None]) -> str:
        """A new database holding Airflow's migrated schema; its name.

        The first call migrates a template database (``migrate(its url)``, which must leave no
        connection open); every call copies it (``CREATE DATABASE ... TEMPLATE``, a file copy
        well under a second), instead of an ``airflow db migrate`` of its own per stack (tens of
        seconds). The copy is the same schema and rows that migration wrote: nothing in a
        migration depends on the stack (only on the Airflow version and the dialect).
        """
        if self._template is None:
            template = self.create_database()
            migrate(self.url(template))
            self._template = template
        return self.create_database(template=self._template)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL Airflow connects with (its async engine maps it to asyncpg)."""
        return f"postgresql+psycopg2://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def query(self, database: str, sql: str, *args) -> list[tuple]:
        """The rows of one statement (``%s`` placeholders), on a connection of its own (none
        for a statement that returns none: DDL, an INSERT)."""
        con = self.connect(database)
        try:
            with con.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description is not None else []
        finally:
            con.close()


_server: PostgresServer | None = None
_previous_sigterm = None


def server() -> PostgresServer:
    """The session's server, started on first use.

    While it runs, a SIGTERM to this process (a CI timeout) stops it, then interrupts the tests
    (an AirflowStack running then stops itself first, see ``AirflowStack.stopped_on_sigterm``).
    """
    global _server, _previous_sigterm
    if _server is None:
        started = PostgresServer()

        def stop_then_interrupt(signum, frame):
            started.stop()
            raise KeyboardInterrupt(f"signal {signum}")

        _previous_sigterm = signal.signal(signal.SIGTERM, stop_then_interrupt)
        try:
            started.start()
        except BaseException:
            signal.signal(signal.SIGTERM, _previous_sigterm)
            raise
        _server = started
        atexit.register(stop_server)  # should the session end without its fixtures' teardown
    return _server


def stop_server() -> None:
    """Stop the session's server, if one was started."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None
        signal.signal(signal.SIGTERM, _previous_sigterm)
