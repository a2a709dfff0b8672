"""A real Airflow 3 through its REST API v2, with the official ``apache-airflow-client``.

:class:`AirflowRest` does what the client and the command line ask of a deployment: log in, start
or clear the run of a date, wait for it on the run-wait endpoint (which streams its state and, once
it ends, the return values of its result tasks), say why a run failed (the task and the last lines
of its log), and create and follow a backfill. Every error a user can fix is one
:class:`~pipelines.exceptions.AirflowError` line (unreachable, login refused, paused, not found,
failed, timed out), never an HTTP traceback. The token comes from ``/auth/token``, the auth
manager's endpoint, which the generated client has no method for: it is one POST through the same
client's connection pool.

No message prints a credential: the URL may not carry one (user info, a token parameter), and a
server's answer is shown only through :func:`~pipelines.runtime.secrets.redact_known`, with the
user name, password and tokens this client sent hidden, on one short line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pipelines.exceptions import (
    AirflowError,
    AirflowUnreachable,
    DagPaused,
    LoginRefused,
    RunTimeout,
)
from pipelines.runtime.secrets import has_user_info, redact, redact_known, secret_query_keys

FINISHED = ("success", "failed")
LOG_LINES = 8  # the last lines of a failed task's log in its error
REPROCESS = ("none", "failed", "completed")  # a backfill's reprocess behaviours


@dataclass
class RemoteRun:
    """One run on Airflow as the client sees it: where it is and how it ended."""

    dag_id: str
    run_id: str
    ds: str
    url: str
    state: str = "queued"
    results: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    failed_task: str | None = None
    error: str | None = None


class AirflowRest:
    """One Airflow API server, logged in on first use.

    :param url: its base URL (``http://host:8080``)
    :param username: for ``/auth/token`` (with ``password``)
    :param token: a JWT to use instead of logging in
    :param request_timeout: seconds for one request (a wait's stream reads longer)
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise AirflowError(f"the Airflow URL must be http:// or https://, not {redact(url)!r}")
        _refuse_credentials(url)
        self.url = url.rstrip("/")
        self._login = (username, password)
        self._token = token
        self._sent: str | None = None  # the bearer token the requests carry, once logged in
        self.request_timeout = request_timeout

    # -- the connection -------------------------------------------------------------------------
    @cached_property
    def api(self) -> Any:
        """The generated client's ``ApiClient``, with the bearer token set."""
        from airflow_client import client

        configuration = client.Configuration(host=self.url)
        api = client.ApiClient(configuration)
        configuration.access_token = self._sent = self._token or self._login_token(api)
        return api

    def _login_token(self, api: Any) -> str:
        username, password = self._login
        if not username:
            raise LoginRefused(f"Airflow at {self.url} needs a user name and password, or a token")
        body = {"username": username, "password": password or ""}  # the client encodes it
        with self._calling("login"):
            answer = api.rest_client.request(
                "POST",
                f"{self.url}/auth/token",
                headers={"Content-Type": "application/json"},
                body=body,
                _request_timeout=self.request_timeout,
            )
        if answer.status in (401, 403):
            raise LoginRefused(f"Airflow at {self.url} refused the login of {username!r}")
        text = answer.read() if hasattr(answer, "read") else answer.data
        if answer.status >= 300:
            said = self._said(text)
            raise AirflowError(f"Airflow at {self.url}: login answered {answer.status}: {said}")
        return json.loads(text)["access_token"]

    def _said(self, body: Any) -> str:
        """A server's answer fit to print: its ``detail`` (else its text) on one short line, with
        every credential this client sent (user name, password, tokens) and whatever
        :func:`~pipelines.runtime.secrets.redact` finds replaced by ``***``."""
        return redact_known(_detail(body), *self._login, self._token, self._sent)

    @contextlib.contextmanager
    def _calling(self, what: str, dag_id: str | None = None) -> Iterator[None]:
        """Turn the client's and urllib3's exceptions into one line that says what failed."""
        from airflow_client.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as exc:
            raise self._refused(exc, what, dag_id) from None
        except HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise AirflowUnreachable(
                f"cannot reach Airflow at {self.url}: {redact(str(reason))}"
            ) from None

    def _refused(self, exc: Any, what: str, dag_id: str | None) -> AirflowError:
        status = exc.status
        if status == 401:
            return LoginRefused(
                f"Airflow at {self.url} refused the login (401) while asked to {what}"
            )
        if status == 403:
            return LoginRefused(f"Airflow at {self.url}: this user may not {what} (403)")
        if status == 404 and dag_id:
            return AirflowError(
                f"{dag_id} is not in Airflow at {self.url}: the DAG processor has not parsed it "
                "(yet), or this deployment serves another namespace"
            )
        detail = self._said(exc.body) or exc.reason
        return AirflowError(f"Airflow at {self.url} could not {what} ({status}): {detail}")

    def _apis(self, name: str) -> Any:
        from airflow_client.client import api

        return getattr(api, name)(self.api)

    # -- DAGs and runs --------------------------------------------------------------------------
    def require_running_dag(self, dag_id: str) -> None:
        """:raises DagPaused: its runs would be queued and never start"""
        with self._calling(f"read DAG {dag_id}", dag_id):
            dag = self._apis("DAGApi").get_dag(dag_id, _request_timeout=self.request_timeout)
        if dag.is_paused:
            raise DagPaused(
                f"{dag_id} is paused in Airflow at {self.url}: unpause it (web UI, or "
                f"`airflow dags unpause {dag_id}`), or its run is queued and never starts"
            )

    def run_url(self, dag_id: str, run_id: str) -> str:
        """The run's page in the web UI."""
        return f"{self.url}/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}"

    def start(self, dag_id: str, ds: str, conf: dict | None = None) -> RemoteRun:
        """Create the run of ``dag_id`` for logical date ``ds``, or clear the run that holds that
        date (Airflow keeps one run per logical date: a date run before, by the scheduler or a
        client, is run again; the steps are idempotent).

        :raises AirflowError: the date is in the future, or Airflow refused
        """
        from airflow_client.client.exceptions import ApiException
        from airflow_client.client.models import TriggerDAGRunPostBody

        logical = _midnight(ds)
        if logical > dt.datetime.now(dt.UTC):
            raise AirflowError(f"{dag_id}: {ds} is in the future; Airflow does not run it yet")
        self.require_running_dag(dag_id)
        run_id = f"client__{ds}"
        body = TriggerDAGRunPostBody(dag_run_id=run_id, logical_date=logical, conf=conf or {})
        with self._calling(f"start a run of {dag_id}", dag_id):
            try:
                self._apis("DagRunApi").trigger_dag_run(dag_id, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                run_id = self._clear_run_of(dag_id, logical)
        return RemoteRun(dag_id, run_id, ds, self.run_url(dag_id, run_id))

    def _clear_run_of(self, dag_id: str, logical: dt.datetime) -> str:
        """Clear the run that holds ``logical`` (whoever created it); its run id."""
        from airflow_client.client.models import DAGRunClearBody

        runs = self._apis("DagRunApi").get_dag_runs(
            dag_id, logical_date_gte=logical, logical_date_lte=logical, limit=1
        )
        if not runs.dag_runs:
            raise AirflowError(f"{dag_id}: Airflow refused the run for {logical:%Y-%m-%d} (409)")
        run_id = runs.dag_runs[0].dag_run_id
        self._apis("DagRunApi").clear_dag_run(dag_id, run_id, DAGRunClearBody(dry_run=False))
        return run_id

    def wait(
        self,
        run: RemoteRun,
        *,
        timeout: float,
        poll: float = 2.0,
        on_state: Callable[[RemoteRun], None] | None = None,
    ) -> RemoteRun:
        """Until ``run`` ends, on the run-wait endpoint: its state (``on_state`` hears it each
        ``poll`` seconds), and once it ends the return values of its result tasks.

        :raises RunTimeout: ``timeout`` seconds passed; the run goes on
        """
        started = time.monotonic()
        for answer in self._stream(run, poll):
            run.seconds = time.monotonic() - started
            run.state = answer.get("state", run.state)
            if on_state:
                on_state(run)
            if run.state in FINISHED:
                run.results = answer.get("results") or {}
                if run.state == "failed":
                    run.failed_task, run.error = self.failure(run.dag_id, run.run_id)
                return run
            if run.seconds > timeout:
                break
        raise RunTimeout(
            f"{run.dag_id}: still {run.state} after {timeout:.0f}s; the run goes on: "
            f"{run.run_id} ({run.url})"
        )

    def _stream(self, run: RemoteRun, poll: float) -> Iterator[dict]:
        """The endpoint's NDJSON lines as they come (one each ``poll`` seconds: the caller
        stops reading when its wait runs out)."""
        with self._calling(f"wait for {run.run_id} of {run.dag_id}", run.dag_id):
            answer = self._apis("DagRunApi").wait_dag_run_until_finished_without_preload_content(
                run.dag_id, run.run_id, interval=poll, _request_timeout=(10.0, poll + 60.0)
            )
            if answer.status >= 300:
                body = answer.read().decode(errors="replace")
                raise AirflowError(
                    f"Airflow at {self.url} could not wait for {run.run_id} of {run.dag_id} "
                    f"({answer.status}): {self._said(body)}"
                )
            try:
                buffered = b""
                for chunk in answer.stream(4096, decode_content=True):
                    buffered += chunk
                    *lines, buffered = buffered.split(b"\n")
                    yield from (json.loads(line) for line in lines if line.strip())
            finally:
                answer.release_conn()

    def results(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The results of a run that has ended (a cookbook's child)."""
        run = RemoteRun(dag_id, run_id, "", self.run_url(dag_id, run_id))
        return self.wait(run, timeout=self.request_timeout).results

    def failure(self, dag_id: str, run_id: str) -> tuple[str | None, str | None]:
        """The failed task of a run, and its error: the last lines of its log."""
        with self._calling(f"read the tasks of {run_id}", dag_id):
            tasks = self._apis("TaskInstanceApi").get_task_instances(
                dag_id, run_id, state=["failed"], order_by=["end_date"]
            )
        failed = tasks.task_instances
        if not failed:
            return None, None
        task = failed[0]
        with self._calling(f"read the log of {task.task_id}", dag_id):
            log = self._apis("TaskInstanceApi").get_log(
                dag_id, run_id, task.task_id, task.try_number, full_content=True
            )
        return task.task_id, redact(_last_lines(log.content))

    def latest_runs(self, dag_ids: Iterable[str]) -> dict[str, RemoteRun | None]:
        """The latest run of each DAG (the one to run last: newest ``run_after``), its day the
        partition key's (a workflow's run its inputs' events started), else the logical date's,
        else the ``run_after``'s; None for a DAG with no run yet. A DAG Airflow does not know (not
        parsed, or another namespace's deployment) is left out."""
        from airflow_client.client.exceptions import ApiException

        found: dict[str, RemoteRun | None] = {}
        for dag_id in dag_ids:
            with self._calling(f"read the runs of {dag_id}"):
                try:
                    answer = self._apis("DagRunApi").get_dag_runs(
                        dag_id,
                        limit=1,
                        order_by=["-run_after"],
                        _request_timeout=self.request_timeout,
                    )
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    continue
            if not answer.dag_runs:
                found[dag_id] = None
                continue
            run = answer.dag_runs[0]
            key = getattr(run, "partition_key", None)
            found[dag_id] = RemoteRun(
                dag_id,
                run.dag_run_id,
                key[:10] if key else (run.logical_date or run.run_after).date().isoformat(),
                self.run_url(dag_id, run.dag_run_id),
                state=str(getattr(run.state, "value", run.state)),
                seconds=float(run.duration or 0.0),
            )
        return found

    # -- backfills ------------------------------------------------------------------------------
    def create_backfill(
        self,
        dag_id: str,
        first: str,
        last: str,
        *,
        max_active_runs: int,
        reprocess: str = "none",
        backwards: bool = False,
        conf: dict | None = None,
    ) -> int:
        """A backfill of ``first`` .. ``last`` under the scheduler; its id."""
        from airflow_client.client.models import BackfillPostBody, ReprocessBehavior

        self.require_running_dag(dag_id)
        body = BackfillPostBody(
            dag_id=dag_id,
            from_date=_midnight(first),
            to_date=_midnight(last),
            max_active_runs=max_active_runs,
            reprocess_behavior=ReprocessBehavior(reprocess),
            run_backwards=backwards,
            dag_run_conf=conf or {},
        )
        with self._calling(f"create a backfill of {dag_id}", dag_id):
            return self._apis("BackfillApi").create_backfill(body).id

    def backfill_runs(self, dag_id: str, backfill_id: int) -> tuple[bool, list[RemoteRun]]:
        """Whether the backfill has completed, and its runs as they stand (by logical date)."""
        with self._calling(f"read backfill {backfill_id}", dag_id):
            backfill = self._apis("BackfillApi").get_backfill(backfill_id)
            answer = self._apis("DagRunApi").get_dag_runs(  # the runs it made or cleared
                dag_id,
                logical_date_gte=backfill.from_date,
                logical_date_lte=backfill.to_date,
                updated_at_gte=backfill.created_at,
                limit=1000,
                order_by=["logical_date"],
            )
        runs = [
            RemoteRun(
                dag_id,
                r.dag_run_id,
                r.logical_date.date().isoformat(),
                self.run_url(dag_id, r.dag_run_id),
                state=str(getattr(r.state, "value", r.state)),
                seconds=float(r.duration or 0.0),
            )
            for r in answer.dag_runs
        ]
        return backfill.completed_at is not None, runs


def _midnight(ds: str) -> dt.datetime:
    """The logical date of day ``ds`` (``YYYY-MM-DD``) as Airflow takes it: 00:00 UTC."""
    return dt.datetime.combine(dt.date.fromisoformat(ds), dt.time(), tzinfo=dt.UTC)


def _last_lines(content: Any) -> str:
    """The last lines of a task log (structured messages or text), without blank ones."""
    lines: list[str] = []
    for entry in getattr(content, "actual_instance", content) or []:
        event = getattr(entry, "event", entry)
        lines += [line for line in str(event).splitlines() if line.strip()]
    return "\n".join(lines[-LOG_LINES:])


def _detail(body: Any) -> str:
    """The ``detail`` of an error answer, else its text (whole: the caller redacts, then cuts)."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        detail = json.loads(text).get("detail")
        if detail:
            return str(detail)
    return text


def _refuse_credentials(url: str) -> None:
    """The Airflow URL names the server only: user info in it would not log in (the client
    sends no basic auth) and a token parameter would not reach the API, yet either would be
    printed with every message naming the server."""
    if has_user_info(url) or secret_query_keys(url):
        raise AirflowError(
            f"the Airflow URL {redact(url)!r} must not carry credentials: give them in "
            "PIPELINES_AIRFLOW_USERNAME and PIPELINES_AIRFLOW_PASSWORD, or PIPELINES_AIRFLOW_TOKEN "
            "(in Python: Client(url, username=..., password=...) or token=...)"
        )
