"""A supervisor without a database: it answers what Airflow's task runner asks while one task of a
local run executes in this process, and keeps what the task reported.

On a worker the Task SDK's task runner talks to its supervisor through ``SUPERVISOR_COMMS``: it
asks for XComs and connections, reports rendered fields, and ends the task by sending its
terminal state with the asset events of its outlets. Here :class:`LocalSupervisor` answers from
memory for one DAG run: XComs are kept as the JSON text the API server would store, a connection
or a variable is only what the environment and the secrets backends hold (never the metadata
database), and the terminal message becomes a :class:`TaskTry`. The task itself goes through the
task runner's own ``run`` and ``finalize``, as under ``dag.test()``: the template context,
pre/post execute, callbacks, the XCom push, the exception-to-state mapping and the retry decision
are Airflow's. A request that needs a scheduler or a database (trigger a DAG run, count runs,
read asset events) fails the task, saying so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipelines.runtime.secrets import connection_from_metadata, no_metadata_database

UNAVAILABLE = "not available in a local run (no scheduler, no database): run with --airflow"


@dataclass(frozen=True)
class AssetEvent:
    """One asset event a task emitted, as Airflow records it: one per partition key.

    :param extra: the event's metadata (the step's counts), as stored (JSON)
    """

    task_id: str
    uri: str
    name: str
    extra: dict = field(default_factory=dict)
    partition_key: str | None = None


@dataclass
class TaskTry:
    """How one try of a task ended.

    :param state: a task instance state (``success``, ``failed``, ``skipped``, ``up_for_retry``...)
    :param retry_delay: for ``up_for_retry``, the delay the task asked for (None: its own)
    """

    state: str
    error: BaseException | None = None
    events: list[AssetEvent] = field(default_factory=list)
    retry_delay: dt.timedelta | None = None


class LocalSupervisor:
    """The ``SUPERVISOR_COMMS`` of one local DAG run: XComs in memory, one task at a time."""

    def __init__(self) -> None:
        self._xcoms: dict[tuple, str] = {}  # (dag_id, run_id, task_id, map_index, key) -> JSON
        self._ended: Any = None  # the terminal message of the running task
        self.dag_version_id = uuid.uuid4()  # one version of the DAG per run, as one parse
        self._answers: dict[str, Callable[[Any], Any]] = {
            "SucceedTask": self._end,
            "TaskState": self._end,
            "RetryTask": self._end,
            "SetXCom": self._set_xcom,
            "DeleteXCom": self._delete_xcom,
            "GetXCom": self._get_xcom,
            "GetXComSequenceSlice": self._get_xcom_slice,
            "GetXComCount": self._count_xcoms,
            "GetConnection": _connection,
            "GetVariable": _variable,
            "ValidateInletsAndOutlets": _all_active,
            "GetPrevSuccessfulDagRun": _no_previous_run,
            # what the UI would show, secrets the task runner already masked: nothing to answer
            "SetRenderedFields": _nothing,
            "SetRenderedMapIndex": _nothing,
            "MaskSecret": _nothing,
        }

    def run_task(self, task: Any, dag_run: Any, try_number: int) -> TaskTry:
        """Run one try of ``task`` for ``dag_run`` (the Task SDK's ``DagRun``) as a worker would."""
        import structlog
        from airflow.sdk.api.datamodels._generated import TaskInstanceState, TIRunContext
        from airflow.sdk.execution_time import task_runner

        started = dt.datetime.now(dt.UTC)
        ti = task_runner.RuntimeTaskInstance.model_construct(
            id=uuid.uuid4(),
            task_id=task.task_id,
            dag_id=task.dag_id,
            run_id=dag_run.run_id,
            try_number=try_number,
            map_index=-1,
            dag_version_id=self.dag_version_id,
            task=task,
            _ti_context_from_server=TIRunContext(
                dag_run=dag_run,
                max_tries=task.retries,
                should_retry=try_number <= task.retries,  # what the API server decides
                start_date=started,
            ),
            max_tries=task.retries,
            start_date=started,
            state=TaskInstanceState.RUNNING,
        )
        self._ended = None
        log = structlog.get_logger(logger_name="task")
        with self._installed(task_runner), _sigterm_kept():
            try:
                context = ti.get_template_context()
            except Exception as exc:  # bad params, say: the task fails before it starts
                return TaskTry("failed", exc)
            state, _, error = task_runner.run(ti, context, log)
            context["exception"] = error
            task_runner.finalize(ti, state, context, log, error)
        return self._try(ti.task_id, str(getattr(state, "value", state)), error, dag_run)

    def send(self, msg: Any) -> Any:
        """Answer one request of the task runner (None where a supervisor sends nothing back)."""
        answer = self._answers.get(type(msg).__name__, _not_found)
        return answer(msg)

    @contextlib.contextmanager
    def _installed(self, task_runner: Any) -> Iterator[None]:
        """This object as the task runner's ``SUPERVISOR_COMMS`` while inside."""
        missing = object()
        before = getattr(task_runner, "SUPERVISOR_COMMS", missing)
        task_runner.SUPERVISOR_COMMS = self
        try:
            yield
        finally:
            if before is missing:
                del task_runner.SUPERVISOR_COMMS
            else:
                task_runner.SUPERVISOR_COMMS = before

    def _try(self, task_id: str, state: str, error: BaseException | None, dag_run) -> TaskTry:
        ended = self._ended
        kind = type(ended).__name__
        if kind == "SucceedTask":
            return TaskTry(state, error, recorded_events(task_id, ended, dag_run.partition_key))
        asked = getattr(ended, "retry_delay_seconds", None) if kind == "RetryTask" else None
        delay = None if asked is None else dt.timedelta(seconds=asked)
        return TaskTry(state, error, retry_delay=delay)

    # -- the answers ---------------------------------------------------------------------------
    def _end(self, msg: Any) -> None:
        self._ended = msg

    def _set_xcom(self, msg: Any) -> None:
        self._xcoms[_xcom_key(msg)] = json.dumps(msg.value)

    def _delete_xcom(self, msg: Any) -> None:
        self._xcoms.pop(_xcom_key(msg), None)

    def _get_xcom(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComResult

        stored = self._xcoms.get(_xcom_key(msg))
        return XComResult(key=msg.key, value=None if stored is None else json.loads(stored))

    def _get_xcom_slice(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        return XComSequenceSliceResult(root=self._mapped(msg)[msg.start : msg.stop : msg.step])

    def _count_xcoms(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComCountResponse

        return XComCountResponse(len=len(self._mapped(msg)))

    def _mapped(self, msg: Any) -> list:
        """Every map index's value of one task's XCom key, in map-index order."""
        wanted = (msg.dag_id, msg.run_id, msg.task_id, msg.key)
        rows = [
            (index, json.loads(text))
            for (dag_id, run_id, task_id, index, key), text in self._xcoms.items()
            if (dag_id, run_id, task_id, key) == wanted
        ]
        return [value for _, value in sorted(rows, key=lambda row: row[0])]


def _xcom_key(msg: Any) -> tuple:
    index = getattr(msg, "map_index", None)
    return (msg.dag_id, msg.run_id, msg.task_id, -1 if index is None else index, msg.key)


def _nothing(msg: Any) -> None:
    return None


def _all_active(msg: Any) -> Any:
    """No database, so no asset has been retired: every inlet and outlet is active."""
    from airflow.sdk.execution_time.comms import InactiveAssetsResult

    return InactiveAssetsResult(inactive_assets=[])


def _no_previous_run(msg: Any) -> Any:
    """No database, so no history: ``prev_*_success`` are None."""
    from airflow.sdk.execution_time.comms import PrevSuccessfulDagRunResult

    return PrevSuccessfulDagRunResult()


def _not_found(msg: Any) -> Any:
    """What a request this supervisor cannot answer gets: the task fails, saying so."""
    from airflow.sdk.execution_time.comms import ErrorResponse

    return ErrorResponse(detail={"message": f"{type(msg).__name__}: {UNAVAILABLE}"})


def _connection(msg: Any) -> Any:
    """A connection as the API server answers a worker: from the server side's secrets
    backends, the metadata database among them (one made with ``airflow connections add``).
    A metadata database that does not exist is not asked (asking would create it): the task
    runner then looks in the environment and the task's own secrets backends."""
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time.comms import ConnectionResult, ErrorResponse

    with _outside_the_task():
        found, _ = connection_from_metadata(msg.conn_id)
    if found is not None:
        fields = ("conn_type", "host", "schema", "login", "password", "port", "extra")
        return ConnectionResult(conn_id=msg.conn_id, **{f: getattr(found, f) for f in fields})
    return ErrorResponse(error=ErrorType.CONNECTION_NOT_FOUND, detail={"conn_id": msg.conn_id})


def _variable(msg: Any) -> Any:
    """A variable as the API server answers a worker (see :func:`_connection`)."""
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse, VariableResult

    if no_metadata_database() is None:
        from airflow.models.variable import Variable

        with _outside_the_task():
            value = Variable.get_variable_from_secrets(msg.key)
        if value is not None:
            return VariableResult(key=msg.key, value=value)
    return ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND, detail={"key": msg.key})


@contextlib.contextmanager
def _outside_the_task() -> Iterator[None]:
    """While answering the task runner: look things up as the server does, not through the
    task's ``SUPERVISOR_COMMS`` (Airflow's models route a lookup made inside a task there)."""
    from airflow.sdk.execution_time import task_runner

    comms = task_runner.__dict__.pop("SUPERVISOR_COMMS", None)
    try:
        yield
    finally:
        if comms is not None:
            task_runner.SUPERVISOR_COMMS = comms


def recorded_events(task_id: str, ended: Any, run_key: str | None) -> list[AssetEvent]:
    """The asset events the API server records from a task's success message: for each outlet
    asset of the task (at its end), one per partition key the task gave it with the task's
    metadata for it, else one empty event with the run's partition key; an event through an
    asset alias is one of the asset it names."""
    payloads: dict[tuple[str, str], list[dict]] = {}
    events = []
    for event in ended.outlet_events or ():
        key = event["dest_asset_key"]
        if "source_alias_name" in event:
            events.append(AssetEvent(task_id, key["uri"], key["name"], _stored(event), run_key))
        else:
            payloads.setdefault((key["name"], key["uri"]), []).append(event)
    for outlet in ended.task_outlets or ():
        if outlet.type != "Asset" or not (outlet.name and outlet.uri):
            continue
        for payload in payloads.get((outlet.name, outlet.uri)) or [{}]:
            key = payload.get("partition_key") or run_key
            events.append(AssetEvent(task_id, outlet.uri, outlet.name, _stored(payload), key))
    return events


def _stored(event: dict) -> dict:
    """An event's metadata as the database holds it (JSON; none: ``{}``)."""
    return json.loads(json.dumps(event.get("extra") or {}))


@contextlib.contextmanager
def _sigterm_kept() -> Iterator[None]:
    """The task runner points SIGTERM at the task's ``on_kill`` (a worker is a throw-away
    process): give this process its own handler back when the task ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
