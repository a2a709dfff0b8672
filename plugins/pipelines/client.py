"""Submit runs and read their outputs from Python, the same locally and on a real Airflow.

    from pipelines import Client
    result = Client().submit("refund_model", date="2024-01-03")
    result.outputs["accuracy"]                  # a metric the run published, by name
    result.outputs.tables["cleaned.orders"]     # a table it wrote, read when first asked for

``Client()`` runs in this process without a scheduler or a metadata database (the local runner);
``Client(full_airflow=True)`` runs in this process through Airflow's ``dag.test()`` and its
database; ``Client(url=..., username=..., password=...)`` (or ``token=...``) starts the same DAGs
on a real Airflow through its REST API v2 (:mod:`pipelines.runs.airflow_rest`) and waits for them.
A run's outputs come from what its tasks recorded (:mod:`pipelines.runs.outputs`), wherever it ran.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.common.partitions import date_option
from pipelines.exceptions import AirflowError, PipelinesError, RunFailed
from pipelines.project.config import RUNNABLE, Entry, Kind, Project, load_project
from pipelines.project.run_dates import latest_date, run_dates
from pipelines.runs.airflow_rest import AirflowRest, RemoteRun
from pipelines.runs.cookbook import run_cookbook
from pipelines.runs.local import RunOutcome, configure, run_dag
from pipelines.runs.outputs import Outputs, Tables, latest, outputs_of, with_children
from pipelines.runtime import environment

ResultsOf = Callable[[str, str], dict]  # (dag id, run id) -> what the run's result tasks returned


@dataclass
class RunResult:
    """One submitted run of a dataset, workflow or cookbook for one logical date.

    :param outputs: what the run produced, by name (see :mod:`pipelines.runs.outputs`); None
        until a remote run submitted with ``wait=False`` has been waited for
    :param runs: the DAG runs it made, the submitted DAG's last (a local cookbook run holds its
        children's runs before its own)
    :param url: the run's page in Airflow's web UI (remote runs)
    """

    name: str
    dag_id: str
    logical_date: str
    state: str
    run_id: str | None = None
    outputs: Outputs = field(default=None, repr=False)  # type: ignore[assignment]
    runs: list[RunOutcome] = field(default_factory=list, repr=False)
    url: str | None = None
    error: str | None = None
    failed_task: str | None = None
    _pending: Callable[[float | None], RunResult] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.state == "success"

    @property
    def ds(self) -> str:
        return self.logical_date

    @property
    def days(self) -> list[str]:
        return [self.logical_date]

    @property
    def not_run(self) -> list[str]:
        return []

    def wait(self, timeout: float | None = None) -> RunResult:
        """Until the run ends (a remote run submitted with ``wait=False``); this result, done.

        :raises RunTimeout: the wait ran out (the run goes on)
        """
        if self._pending is not None:
            done = self._pending(timeout)
            self.__dict__.update({k: v for k, v in done.__dict__.items() if k != "_pending"})
            self._pending = None
        return self

    def raise_for_failure(self) -> RunResult:
        """:raises RunFailed: the run did not succeed (the message names the task, the error)"""
        if not self.ok:
            task = f": {self.failed_task} failed" if self.failed_task else f": {self.state}"
            where = f" ({self.url})" if self.url else ""
            raise RunFailed(f"{self.dag_id} {self.logical_date}{task}{where}\n{self.error or ''}")
        return self


class RunResults(list):
    """The runs of a submitted range, one :class:`RunResult` a day, with one ``outputs``: each
    output's value from the last day whose run succeeded, and the tables over every day."""

    def __init__(
        self,
        results: list[RunResult],
        days: list[str],
        tables: Tables,
        downstream: list[RunOutcome] | None = None,
    ) -> None:
        super().__init__(results)
        self.days = days
        self._tables = tables
        self.downstream = downstream or []  # the workflow runs downstream=True made

    @property
    def ok(self) -> bool:
        ran = bool(self) or not self.days  # nothing to run (no stale day) is not a failure
        done = all(r.ok for r in self) and all(r.ok for r in self.downstream)
        return ran and done and not self.not_run

    @property
    def not_run(self) -> list[str]:
        """The submitted days no run was made for (after a failure, without keep_going)."""
        ran = {r.logical_date for r in self}
        return [d for d in self.days if d not in ran]

    @property
    def runs(self) -> list[RunOutcome]:
        """Every DAG run the submission made, in order."""
        return [run for result in self for run in result.runs] + self.downstream

    @property
    def outputs(self) -> Outputs:
        good = [r for r in self if r.ok]
        values = latest([r.outputs.metrics for r in good])
        return Outputs(values, self._tables, good[-1].logical_date if good else None)

    def wait(self, timeout: float | None = None) -> RunResults:
        for result in self:
            result.wait(timeout)
        return self


class Client:
    """Submit dataset, workflow or cookbook runs for dates; read what they produced.

    :param url: base URL of an Airflow 3 API server; None runs in this process
    :param airflow_url: the same as ``url`` (the earlier spelling)
    :param full_airflow: in this process, run each DAG through Airflow's ``dag.test()``: the run,
        its task instances and asset events go to the metadata database (created when missing),
        as a scheduler's would. Slower (seconds per process); default: the local runner, which
        executes the same tasks with the same context in this process and needs no database
    :param username: for the API server's ``/auth/token``
    :param password: likewise (never logged)
    :param token: a JWT for the API server, instead of a user name and password
    :param namespace: default ``PIPELINES_NAMESPACE`` (applied to every name for you)
    :param poll_seconds: how often Airflow reports a remote run's state while it is waited for
    :param timeout_seconds: the default wait for one remote run
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        airflow_url: str | None = None,
        full_airflow: bool = False,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        namespace: str | None = None,
        poll_seconds: float = 2.0,
        timeout_seconds: float = 3600.0,
    ):
        url = url or airflow_url
        if url and full_airflow:
            raise PipelinesError("full_airflow runs in this process: it cannot go with a url")
        self.airflow = (
            AirflowRest(url, username=username, password=password, token=token) if url else None
        )
        self.airflow_url = self.airflow.url if self.airflow else None
        self.full_airflow = full_airflow
        self.namespace = namespace or environment.namespace()
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        if self.airflow is None:
            configure(database=full_airflow)

    def submit(
        self,
        name: str,
        date: str | dt.date | None = None,
        *,
        end: str | dt.date | None = None,
        conf: dict | None = None,
        wait: bool = True,
        timeout: float | None = None,
        allow_incomplete: bool = False,
        keep_going: bool = False,
        upstream: bool = False,
        stale: bool = False,
        downstream: bool = False,
        on_start: Callable[[list[str]], None] | None = None,
        on_run: Callable[[RunOutcome], None] | None = None,
        on_state: Callable[[RemoteRun], None] | None = None,
    ) -> RunResult | RunResults:
        """Run ``name`` (dataset, workflow or cookbook) for ``date``, or for every interval from
        ``date`` to ``end``.

        :param date: default: the latest complete interval
        :param end: the last date of a range: a :class:`RunResults` is returned
        :param conf: the run's ``dag_run.conf`` (a cookbook passes it on to its children)
        :param wait: False: a remote run is started and returned at once (``result.wait()``);
            a run in this process has always ended when ``submit`` returns
        :param timeout: seconds to wait for each remote run (default ``timeout_seconds``)
        :param allow_incomplete: also run an interval that has not ended yet
        :param keep_going: run the other days after a day failed (default: stop there)
        :param upstream: before a workflow's day, run every day of its inputs' windows that has
            not landed or failed, datasets and workflows, upstream first (in this process only;
            default: the workflow fails, naming them)
        :param stale: a workflow: run only the days (of ``date`` .. ``end``; without ``date``,
            of every day it wrote) whose output is stale (:mod:`pipelines.steps.staleness`);
            a :class:`RunResults` is returned, empty when none is
        :param downstream: a dataset: then rerun the stale days of the workflows that read it,
            upstream first (in this process only: on Airflow its rewrite signal does)
        :param on_start: called with the days once they are known, before the first run
        :param on_run: called with each DAG run's outcome as soon as it ends
        :param on_state: called when a remote run's state changes while it is waited for
        :raises ConfigError: a config file cannot be read at all
        :raises UnknownNameError: ``name`` is not a dataset, a workflow or a cookbook
        :raises DateError: a date is malformed, or cannot be run (see
            :mod:`pipelines.project.run_dates`)
        :raises AirflowError: Airflow is unreachable, refused the login, has the DAG paused or
            not at all, or the wait ran out (:class:`~pipelines.exceptions.RunTimeout`)
        """
        project = load_project()
        project.require_readable()
        entry = project.require(name, *RUNNABLE)  # the one time the name is resolved
        _refuse_mixed(entry, self.airflow is not None, upstream, stale, downstream)
        if stale and date is None:
            days = []  # every day it wrote: the stale ones are picked below
        else:
            first = latest_date(project, entry) if date is None else date_option(date, "date")
            last = date_option(end, "end") if end is not None else first
            days = run_dates(project, entry, first, last, allow_incomplete=allow_incomplete)
        if stale:
            from pipelines.steps.staleness import stale_days

            lake = project.lake(self.namespace)
            days = list(stale_days(entry.spec, lake, project, days if date else None))
        if on_start and days:
            on_start(days)
        run = _Submission(self, project, entry, conf, on_run, on_state, timeout)
        results: list[RunResult] = []
        for ds in days:
            result = run.remote(ds, wait) if self.airflow else run.local(ds, upstream)
            results.append(result)
            if not keep_going and wait and not result.ok:
                break
        after = run.downstream() if downstream and all(r.ok for r in results) else []
        if end is None and not stale:
            results[0].runs += after
            return results[0]
        tables = Tables(output_keys(project, entry), self.namespace, days)
        return RunResults(results, days, tables, after)


class _Submission:
    """The runs of one ``submit``: each day locally or on Airflow, and its :class:`RunResult`."""

    def __init__(self, client, project, entry: Entry, conf, on_run, on_state, timeout) -> None:
        self.client, self.project, self.entry, self.conf = client, project, entry, conf
        self.name = entry.name
        self.ns = client.namespace
        self.dag_id = entry.dag_id(self.ns)
        self.report = on_run or (lambda outcome: None)
        self.on_state = on_state
        self.timeout = timeout if timeout is not None else client.timeout_seconds

    def local(self, ds: str, upstream: bool) -> RunResult:
        runs = self._upstream(ds) if upstream else []
        if all(r.ok for r in runs):
            runs += self._run_locally(ds)
        last = runs[-1]  # the submitted DAG's run, or the child or upstream run that failed
        ours = last.dag_id == self.dag_id
        by_dag = {r.dag_id: r.results for r in runs if r.ds == ds}
        result = RunResult(
            self.name,
            self.dag_id,
            ds,
            last.state if ours else "failed",
            run_id=last.run_id if ours else None,
            runs=runs,
            error=last.error if ours else f"{last.dag_id}: {last.error or last.state}",
            failed_task=last.failed_task,
        )
        values = self.values(self.entry, "", lambda dag, _: by_dag.get(dag, {}))
        return self._with_outputs(result, values)

    def _run_locally(self, ds: str) -> list[RunOutcome]:
        full = self.client.full_airflow
        if self.entry.kind is Kind.COOKBOOK:
            return run_cookbook(
                self.project, self.entry, ds, self.report, full_airflow=full, conf=self.conf
            )
        outcome = run_dag(self.dag_id, ds, full_airflow=full, conf=self.conf)
        self.report(outcome)
        return [outcome]

    def _upstream(self, ds: str) -> list[RunOutcome]:
        """Run every missing or failed day of the windows a workflow reads for ``ds``,
        upstream first; stop at the first failure (a cookbook runs its own steps in order:
        nothing to add)."""
        if self.entry.kind is not Kind.WORKFLOW:
            return []
        from pipelines.steps.window_inputs import missing_upstream

        lake = self.project.lake(self.ns)
        outcomes: list[RunOutcome] = []
        for producer, day in missing_upstream(self.entry.spec, ds, lake, self.project):
            dag_id = self.project.dag_id(producer, self.ns)
            outcome = run_dag(dag_id, day, full_airflow=self.client.full_airflow)
            self.report(outcome)
            outcomes.append(outcome)
            if not outcome.ok:
                break
        return outcomes

    def downstream(self) -> list[RunOutcome]:
        """Rerun the stale days of every workflow reading the dataset, each workflow after
        those it reads (their days go stale as the ones before rerun): the local twin of the
        rewrite signal. A failed day does not stop the others."""
        from pipelines.project.workflows import readers_of
        from pipelines.steps.staleness import stale_days

        lake = self.project.lake(self.ns)
        outcomes: list[RunOutcome] = []
        workflows = list(self.project.workflows)
        for spec in readers_of(workflows, self.project.tables, {self.name}):
            dag_id = self.project.dag_id(spec.name, self.ns)
            for day in stale_days(spec, lake, self.project):
                outcome = run_dag(dag_id, day, full_airflow=self.client.full_airflow)
                self.report(outcome)
                outcomes.append(outcome)
        return outcomes

    def remote(self, ds: str, wait: bool) -> RunResult:
        airflow = self.client.airflow
        started = airflow.start(self.dag_id, ds, self.conf)
        result = RunResult(
            self.name, self.dag_id, ds, started.state, run_id=started.run_id, url=started.url
        )
        result._pending = lambda timeout: self._finish(started, timeout)
        return result.wait() if wait else result

    def _finish(self, run: RemoteRun, timeout: float | None) -> RunResult:
        airflow = self.client.airflow
        poll = self.client.poll_seconds
        limit = timeout if timeout is not None else self.timeout
        airflow.wait(run, timeout=limit, poll=poll, on_state=self.on_state)
        outcome = outcome_of(run)
        self.report(outcome)
        result = RunResult(
            self.name,
            run.dag_id,
            run.ds,
            run.state,
            run_id=run.run_id,
            runs=[outcome],
            url=run.url,
            error=run.error,
            failed_task=run.failed_task,
        )

        def results_of(dag_id: str, run_id: str) -> dict:
            if dag_id == run.dag_id:
                return run.results
            try:
                return airflow.results(dag_id, run_id)
            except AirflowError:  # a child that did not run (the parent failed before it)
                return {}

        return self._with_outputs(result, self.values(self.entry, run.run_id, results_of))

    def values(self, entry: Entry, run_id: str, results_of: ResultsOf) -> dict:
        """The outputs of the entry's run ``run_id``, a cookbook's with its children's (their
        runs' ids are derived from the parent's, as its trigger tasks derive them)."""
        dag_id = entry.dag_id(self.ns)
        own = outputs_of(entry.kind, results_of(dag_id, run_id))
        if entry.kind is not Kind.COOKBOOK:
            return own
        children = {
            child.name: self.values(child, environment.child_run_id(dag_id, run_id), results_of)
            for child in entry.in_order()
        }
        workflows = [c.name for c in entry.in_order() if c.kind is Kind.WORKFLOW]
        return with_children(own, children, workflows)

    def _with_outputs(self, result: RunResult, values: dict) -> RunResult:
        if not result.ok:
            values = {**values, **self._failed_checks(result.logical_date, values)}
        tables = Tables(output_keys(self.project, self.entry), self.ns, [result.logical_date])
        day = result.logical_date if result.ok else None
        result.outputs = Outputs(values, tables, day)
        return result

    def _failed_checks(self, ds: str, values: dict) -> dict[str, str]:
        """The checks a failed run's datasets recorded for ``ds`` when their check task failed
        (it returned nothing): ``checks`` (``orders.checks`` in a cookbook) names the tests."""
        found = {}
        lake = self.project.lake(self.ns)
        for dataset in self.entry.runs(Kind.DATASET):
            key = "checks" if self.entry.kind is Kind.DATASET else f"{dataset.name}.checks"
            if key in values:
                continue
            recorded = lake.cleaned(dataset.spec).snapshot().run_metrics(ds).get("checks")
            if isinstance(recorded, str) and recorded.startswith("failed"):
                found[key] = recorded
        return found


def _refuse_mixed(entry: Entry, remote: bool, upstream: bool, stale: bool, downstream: bool):
    """:raises PipelinesError: an option that does not apply to ``entry``, or not on Airflow"""
    if upstream and remote:
        raise PipelinesError("upstream=True runs in this process only; on Airflow, data decides")
    if stale and entry.kind is not Kind.WORKFLOW:
        raise PipelinesError(
            f"stale: {entry.name} is a {entry.kind}; only a workflow's output goes stale "
            "(pipelines status shows which days)"
        )
    if downstream and entry.kind is not Kind.DATASET:
        raise PipelinesError(
            f"downstream: {entry.name} is a {entry.kind}; it reruns the workflow days a "
            "dataset's runs made stale"
        )
    if downstream and remote:
        raise PipelinesError(
            "downstream runs in this process only; on Airflow the dataset's rewrite signal "
            "reruns the workflow days itself"
        )


def outcome_of(run: RemoteRun) -> RunOutcome:
    """A remote run's end as a local run's :class:`RunOutcome` (what a progress line shows)."""
    return RunOutcome(
        run.dag_id,
        run.ds,
        run.state,
        run.seconds,
        failed_task=run.failed_task,
        error=run.error,
        results=run.results,
        run_id=run.run_id,
    )


def output_keys(project: Project, entry: Entry | str) -> list[str]:
    """The tables a dataset, workflow or cookbook run writes, as ``layer.name``.

    :param entry: what runs (or its name, resolved here)
    """
    entry = project.resolve(entry, *RUNNABLE)
    names = [e.name for e in entry.runs(Kind.DATASET)]
    keys = [f"{layer}.{n}" for n in names for layer in ("raw", "cleaned", "quarantine")]
    keys += [f"aggregated.{a.name}" for n in names for a in project.aggregates_of(n)]
    return keys + [f"workflows.{w.name}" for w in entry.runs(Kind.WORKFLOW)]
