"""Run jobs and read their outputs from Python.

    from pipelines import Client
    results = Client().submit("orders", date="2024-01-02")
    results.ok                              # True when every run succeeded
    results.outputs["cleaned.orders"]       # a DataFrame, read when first asked for
    Client().submit("refund_model", date="2024-01-03").outputs["accuracy"]   # a workflow metric

``Client()`` runs in-process without a scheduler or a metadata database (the local runner);
``Client(full_airflow=True)`` runs in-process through Airflow's ``dag.test()`` and its database;
``Client(airflow_url=...)`` triggers the same DAGs on a real Airflow through its REST API and
waits for them. Outputs are read from the lake either way.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from pipelines.components import environment
from pipelines.config import RUNNABLE, Kind, Project, load_project
from pipelines.cookbooks.local import run_cookbook
from pipelines.exceptions import PipelinesError
from pipelines.local import RunOutcome, configure, run_dag
from pipelines.partitions import date_option
from pipelines.run_dates import run_dates


class Outputs(Mapping):
    """``"{layer}.{name}"`` -> DataFrame, and each metric by name -> its value, read lazily
    from the lake and cached.

    Raw and quarantine hold the submitted days' deliveries only; cleaned and aggregated tables
    are read whole, as they stand; a workflow's table holds every day (with ``ds``). A metric is
    the value recorded with its version by the run of ``metrics_day``, the last submitted day
    whose runs all succeeded (none: no metrics): a workflow's under its own name (``accuracy``)
    and as ``{workflow}.{metric}`` (a bare name two workflows report is only there in the second
    form); a dataset's counts as ``{dataset}.raw``, ``.cleaned``, ``.quarantined``,
    ``.superseded`` and its ``.checks``.
    """

    def __init__(
        self,
        keys: list[str],
        namespace: str,
        days: list[str],
        workflows: list[str] | None = None,
        datasets: Mapping[str, str] | None = None,
        metrics_day: str | None = None,
    ):
        self._keys = keys
        self._namespace = namespace
        self._days = days
        self._workflows = workflows or []
        self._datasets = dict(datasets or {})  # name -> ingestion kind
        self.metrics_day = metrics_day  # the last day whose runs all succeeded (None: none)
        self._cache: dict = {}
        self._metrics: dict | None = None

    def _all_metrics(self) -> dict:
        """Every metric of the workflows and datasets for the last day (read once)."""
        if self._metrics is None:
            from pipelines.partitions import Layer
            from pipelines.workflows import metrics_of

            lake = load_project().lake(self._namespace)
            found: dict = {}
            day = self.metrics_day
            for name, kind in self._datasets.items() if day else ():
                cleaned = lake.table(Layer.CLEANED, name, kind=kind).snapshot()
                counted = cleaned.run_metrics(day)
                found.update({f"{name}.{count}": n for count, n in counted.items()})
            bare: dict = {}
            for name in self._workflows:
                reported = metrics_of(name, day, lake) if day else {}
                for metric, value in reported.items():
                    found[f"{name}.{metric}"] = value
                    bare.setdefault(metric, []).append(value)
            found.update({m: v[0] for m, v in bare.items() if len(v) == 1 and m not in found})
            self._metrics = found
        return self._metrics

    def __getitem__(self, key: str):
        if key in self._all_metrics():
            return self._metrics[key]
        if key not in self._keys:
            raise KeyError(f"{key!r}; outputs are: {', '.join(self)}")
        if key not in self._cache:
            from pipelines.reader import read, read_deliveries

            layer, name = key.split(".", 1)
            if layer in ("raw", "quarantine"):
                frame = read_deliveries(name, layer, self._days, self._namespace)
            else:
                frame = read(name, layer, self._namespace)
            self._cache[key] = frame
        return self._cache[key]

    @property
    def metrics(self) -> dict:
        """Every metric of the last submitted day, by name."""
        return dict(self._all_metrics())

    def __iter__(self) -> Iterator[str]:
        return iter([*self._keys, *(k for k in self._all_metrics() if k not in self._keys)])

    def __len__(self) -> int:
        return len(list(iter(self)))


@dataclass
class Results:
    """The runs a submission made, the days it was for, and the tables they wrote."""

    runs: list[RunOutcome]
    days: list[str]
    outputs: Outputs = field(repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs) and not self.not_run

    @property
    def not_run(self) -> list[str]:
        """The submitted days no run was made for (after a failure, without keep_going)."""
        ran = {r.ds for r in self.runs}
        return [d for d in self.days if d not in ran]


def output_keys(project: Project, name: str) -> list[str]:
    """The tables a dataset, workflow or cookbook run writes, as ``layer.name``."""
    names = _steps(project, name, Kind.DATASET)
    keys = [f"{layer}.{n}" for n in names for layer in ("raw", "cleaned", "quarantine")]
    keys += [f"aggregated.{a.name}" for n in names for a in project.aggregates_of(n)]
    return keys + [f"workflows.{w}" for w in _steps(project, name, Kind.WORKFLOW)]


def _steps(project: Project, name: str, kind: Kind) -> list[str]:
    """The entries of ``kind`` a run of ``name`` runs (itself, or a cookbook's steps)."""
    from pipelines.cookbooks.checks import steps_of

    found = project.require(name, *RUNNABLE)
    if project.kind_of(name) is Kind.COOKBOOK:
        return steps_of(project, name, kind)
    return [found.name] if project.kind_of(name) is kind else []


class Client:
    """Submit dataset or cookbook runs for dates; read what they wrote.

    :param airflow_url: base URL of an Airflow 3 API server; None runs in-process
    :param full_airflow: in-process, run each DAG through Airflow's ``dag.test()``: the run,
        its task instances and asset events go to the metadata database (created when missing),
        as a scheduler's would. Slower (seconds per process); default: the local runner, which
        executes the same tasks with the same context in this process and needs no database
    :param username: for the API server's ``/auth/token``
    :param password: likewise (never logged)
    :param namespace: default ``PIPELINES_NAMESPACE``
    """

    def __init__(
        self,
        airflow_url: str | None = None,
        *,
        full_airflow: bool = False,
        username: str | None = None,
        password: str | None = None,
        namespace: str | None = None,
        poll_seconds: float = 2.0,
        timeout_seconds: float = 3600.0,
    ):
        if airflow_url and not airflow_url.startswith(("http://", "https://")):
            raise PipelinesError(f"airflow_url must be http:// or https://, not {airflow_url!r}")
        if airflow_url and full_airflow:
            raise PipelinesError("full_airflow runs in-process: it cannot go with airflow_url")
        self.airflow_url = airflow_url.rstrip("/") if airflow_url else None
        self.full_airflow = full_airflow
        self._auth = (username, password)
        self.namespace = namespace or environment.namespace()
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self._token: str | None = None
        if self.airflow_url is None:
            configure(database=full_airflow)

    def submit(
        self,
        name: str,
        date: str | dt.date,
        *,
        end: str | dt.date | None = None,
        allow_incomplete: bool = False,
        keep_going: bool = False,
        upstream: bool = False,
        on_start: Callable[[list[str]], None] | None = None,
        on_run: Callable[[RunOutcome], None] | None = None,
    ) -> Results:
        """Run ``name`` (dataset, workflow or cookbook) for ``date``, or every interval from date
        to end.

        :param allow_incomplete: also run an interval that has not ended yet
        :param keep_going: run the other days after a day failed (default: stop there)
        :param upstream: before a workflow's day, run the datasets and workflows it reads whose
            day has not landed (in-process only; default: the workflow fails, naming them)
        :param on_start: called with the days once they are known, before the first run
        :param on_run: called with each run's outcome as soon as it ends
        :raises ConfigError: a config file cannot be read at all
        :raises UnknownNameError: ``name`` is not a dataset, a workflow or a cookbook
        :raises DateError: a date is malformed, or cannot be run (see :mod:`pipelines.run_dates`)
        """
        project = load_project()
        project.require_readable()
        project.require(name, *RUNNABLE)
        first = date_option(date, "date")
        last = date_option(end, "end") if end is not None else first
        days = run_dates(project, name, first, last, allow_incomplete=allow_incomplete)
        if on_start:
            on_start(days)
        report = on_run or (lambda outcome: None)
        runs: list[RunOutcome] = []
        for ds in days:
            new = self._upstream(project, name, ds, report) if upstream else []
            if all(o.ok for o in new):
                new += self._run_one(project, name, ds, report)
            runs.extend(new)
            if not keep_going and not all(o.ok for o in new):
                break
        workflows = _steps(project, name, Kind.WORKFLOW)
        datasets = {n: project.dataset(n).ingestion for n in _steps(project, name, Kind.DATASET)}
        ran = {r.ds for r in runs}
        good = [d for d in days if d in ran and all(r.ok for r in runs if r.ds == d)]
        last = good[-1] if good else None  # metrics are those of a day whose runs succeeded
        keys = output_keys(project, name)
        outputs = Outputs(keys, self.namespace, days, workflows, datasets, last)
        return Results(runs, days, outputs)

    def _upstream(
        self, project: Project, name: str, ds: str, report: Callable[[RunOutcome], None]
    ) -> list[RunOutcome]:
        """Run what a workflow reads and has not landed for ``ds``, upstream first; stop at the
        first failure (a cookbook runs its own steps in order: nothing to add)."""
        if project.kind_of(name) is not Kind.WORKFLOW:
            return []
        if self.airflow_url:
            raise PipelinesError("upstream=True runs in-process only; on Airflow, data decides")
        from pipelines.workflows import missing_upstream

        lake = project.lake(self.namespace)
        outcomes: list[RunOutcome] = []
        for producer in missing_upstream(project.workflow(name), ds, lake, project):
            outcome = self._run_dag(project.dag_id(producer, self.namespace), ds)
            report(outcome)
            outcomes.append(outcome)
            if not outcome.ok:
                return outcomes
        return outcomes

    def _run_one(
        self, project: Project, name: str, ds: str, report: Callable[[RunOutcome], None]
    ) -> list[RunOutcome]:
        if not self.airflow_url and project.kind_of(name) is Kind.COOKBOOK:
            return run_cookbook(project, name, ds, report, full_airflow=self.full_airflow)
        if self.airflow_url:
            outcome = self._remote(project, name, ds)
        else:
            outcome = self._run_dag(project.dag_id(name, self.namespace), ds)
        report(outcome)
        return [outcome]

    def _run_dag(self, dag_id: str, ds: str) -> RunOutcome:
        return run_dag(dag_id, ds, full_airflow=self.full_airflow)

    # -- a real Airflow ---------------------------------------------------------------------
    def _remote(self, project: Project, name: str, ds: str) -> RunOutcome:
        dag_id = project.dag_id(name, self.namespace)
        started = time.monotonic()
        run_id = self._start_remote(dag_id, ds)
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        while time.monotonic() - started < self.timeout_seconds:
            status, run = self._call("GET", path)
            if status >= 300:
                raise PipelinesError(f"{dag_id}: cannot read run {run_id} ({status}): {run}")
            if run.get("state") in ("success", "failed"):
                return RunOutcome(dag_id, ds, run["state"], time.monotonic() - started)
            time.sleep(self.poll_seconds)
        return RunOutcome(dag_id, ds, "timeout", time.monotonic() - started)

    def _start_remote(self, dag_id: str, ds: str) -> str:
        """Create the run for ``ds``, or clear the run that already holds that date; its run id.

        Airflow keeps one run per logical date: a date submitted before, or already run by the
        scheduler, is cleared and run again (the steps are idempotent) rather than waited for
        under a run id that does not exist. A paused DAG or a future date would never run.
        """
        logical = f"{ds}T00:00:00+00:00"
        if dt.datetime.fromisoformat(logical) > dt.datetime.now(dt.UTC):
            raise PipelinesError(f"{dag_id}: {ds} is in the future; Airflow does not run it yet")
        status, dag = self._call("GET", f"/api/v2/dags/{dag_id}")
        if status >= 300:
            raise PipelinesError(f"{dag_id}: not found in Airflow ({status}): {dag}")
        if dag.get("is_paused"):
            raise PipelinesError(f"{dag_id} is paused in Airflow: unpause it, or no run starts")
        run_id = f"client__{ds}"
        body = {"dag_run_id": run_id, "logical_date": logical}
        status, answer = self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        if status == 409:
            return self._clear_run_of(dag_id, ds, logical)
        if status >= 300:
            raise PipelinesError(f"{dag_id}: Airflow refused the run ({status}): {answer}")
        return run_id

    def _clear_run_of(self, dag_id: str, ds: str, logical: str) -> str:
        """Clear the run that holds logical date ``ds`` (whoever created it); its run id."""
        query = urllib.parse.urlencode({"logical_date_gte": logical, "logical_date_lte": logical})
        status, answer = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")
        runs = answer.get("dag_runs", []) if status < 300 else []
        if not runs:
            raise PipelinesError(f"{dag_id}: Airflow refused the run for {ds} (409): {answer}")
        run_id = runs[0]["dag_run_id"]
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/clear"
        status, answer = self._call("POST", path, {"dry_run": False})
        if status >= 300:
            raise PipelinesError(f"{dag_id}: Airflow did not clear {run_id} ({status}): {answer}")
        return run_id

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        import urllib.error
        import urllib.request  # http.client, email: only for a real Airflow

        headers = {"Content-Type": "application/json"}
        if path.startswith("/api/"):
            headers["Authorization"] = f"Bearer {self._bearer()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.airflow_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, {"detail": exc.read().decode(errors="replace")[:500]}
        except urllib.error.URLError as exc:
            raise PipelinesError(f"cannot reach {self.airflow_url}: {exc.reason}") from None

    def _bearer(self) -> str:
        if self._token is None:
            user, password = self._auth
            status, answer = self._call(
                "POST", "/auth/token", {"username": user, "password": password}
            )
            if status >= 300 or "access_token" not in answer:
                raise PipelinesError(f"Airflow at {self.airflow_url} refused the login ({status})")
            self._token = answer["access_token"]
        return self._token
