"""Namespaces follow DAG bundles: a real ``airflow dag-processor`` over two ``GitDagBundle``s.

The test makes a git repository whose tree is the project (``dags/`` and ``include/``; the
``pipelines`` package comes from the deployment's plugins folder, as in production), on branches
``serving`` and ``Feature/Exp-1``, in a local bare repository. Each bundle follows one branch and
its DAGs are that branch's namespace's (``serving__*``, ``feature_exp_1__*``), built from that
checkout's own ``include/``. Only the dag-processor runs (no scheduler, no api-server); what it
parsed is read from the stack's PostgreSQL metadata database. Tasks run through ``airflow dags
test`` in the same Airflow home, which parses the bundle's checkout itself. Git may only use local
paths (``GIT_ALLOW_PROTOCOL=file``) and reads no user or system git config: nothing leaves the
machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipelines.inspection.reader import read
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project
from pipelines.runtime.environment import cookbook_dag_id, dataset_dag_id, workflow_dag_id
from tests.e2e.airflow_stack import BIN, REPO, AirflowStack

pytestmark = pytest.mark.slow

GIT_BUNDLE = "airflow.providers.git.bundles.git.GitDagBundle"  # Airflow's classpath

SERVING, FEATURE, CLASH = "serving", "Feature/Exp-1", "feature-exp-1"  # CLASH: feature_exp_1 too
# git reads no user or system config (no url rewrites, hooks, credential helpers) and may only
# use local paths; the same holds for the git the dag-processor runs
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_ALLOW_PROTOCOL": "file",
    "GIT_TERMINAL_PROMPT": "0",
}
_AUTHOR = {"GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@localhost"}
_AUTHOR |= {"GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@localhost"}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV, **_AUTHOR}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


class Origin:
    """A bare repository (the bundles' ``repo_url``) and a clone of it to commit and push from
    (which holds branch ``serving`` between pushes)."""

    def __init__(self, root: Path):
        self.bare, self.work = root / "origin.git", root / "work"
        git(root, "init", "-q", "--bare", "-b", SERVING, str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        junk = shutil.ignore_patterns("__pycache__", "*.pyc")
        for folder in ("dags", "include"):
            shutil.copytree(REPO / folder, self.work / folder, ignore=junk)
        git(self.work, "checkout", "-q", "-b", SERVING)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", "the project")
        for branch in (FEATURE, CLASH):
            git(self.work, "branch", branch)
        git(self.work, "push", "-q", "origin", SERVING, FEATURE, CLASH)

    def head(self, branch: str) -> str:
        return git(self.bare, "rev-parse", f"refs/heads/{branch}")

    def push(self, branch: str, change: Callable[[Path], None], message: str) -> str:
        """Commit ``change(checkout)`` on ``branch`` and push it; the new commit."""
        git(self.work, "checkout", "-q", branch)
        change(self.work)
        git(self.work, "commit", "-q", "-a", "-m", message)
        git(self.work, "push", "-q", "origin", branch)
        git(self.work, "checkout", "-q", SERVING)  # the checkout holds serving's tree again
        return self.head(branch)


class DagProcessor(AirflowStack):
    """Only ``airflow dag-processor``, over GitDagBundles of ``origin`` (name -> branch).

    PIPELINES_HOME and PIPELINES_NAMESPACE are not set: they would win over the bundle.
    """

    COMMANDS = {"dag-processor": ["dag-processor"]}

    def __init__(self, home: Path, origin: Origin, bundles: dict[str, str]):
        super().__init__(home)
        (home / "no-dags").mkdir()
        self.env.pop("PIPELINES_HOME", None)
        self.env.pop("PIPELINES_NAMESPACE", None)
        config = [
            {
                "name": name,
                "classpath": GIT_BUNDLE,
                "kwargs": {
                    "tracking_ref": branch,
                    "repo_url": str(origin.bare),  # a local path: no git connection needed
                    "subdir": "dags",
                    "refresh_interval": 3,
                },
            }
            for name, branch in bundles.items()
        ]
        self.env.update(
            GIT_ENV,
            AIRFLOW__CORE__DAGS_FOLDER=str(home / "no-dags"),  # not a bundle: never parsed
            AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(config),
            AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH=str(home / "bundles"),
            AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL="2",
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",
        )

    def dags(self) -> dict[str, tuple[str, str, bool]]:
        """Every DAG in the database: dag_id -> (bundle_name, bundle_version, is_stale)."""
        rows = self.query("SELECT dag_id, bundle_name, bundle_version, is_stale FROM dag")
        return {d: (b, v, bool(s)) for d, b, v, s in rows}

    def import_errors(self) -> dict[str, str]:
        """bundle_name -> stacktrace of its files' import errors."""
        rows = self.query("SELECT bundle_name, filename, stacktrace FROM import_error")
        return {b: f"{f}: {s}" for b, f, s in rows}

    def bundle_versions(self) -> dict[str, str]:
        return dict(self.query("SELECT name, version FROM dag_bundle"))

    def versions(self, bundle: str) -> list[tuple]:
        """Every stored version of the bundle's DAGs: its DAG row's bundle version, each
        dag_version (id, number, bundle version) and its serialized DAG (id, hash)."""
        return self.query(
            "SELECT d.dag_id, d.bundle_version, v.id, v.version_number, v.bundle_version,"
            " s.id, s.dag_hash FROM dag d"
            " JOIN dag_version v ON v.dag_id = d.dag_id"
            " JOIN serialized_dag s ON s.dag_version_id = v.id"
            " WHERE d.bundle_name = %s ORDER BY d.dag_id, v.version_number",
            bundle,
        )

    def tags(self, dag_id: str) -> set[str]:
        return {t for (t,) in self.query("SELECT name FROM dag_tag WHERE dag_id = %s", dag_id)}

    def last_parsed(self, bundle: str) -> list[dt.datetime]:
        rows = self.query("SELECT last_parsed_time FROM dag WHERE bundle_name = %s", bundle)
        return [t.astimezone(dt.UTC) for (t,) in rows if t]  # timestamptz: aware datetimes

    def wait(self, what: str, probe: Callable[[], object], done, timeout: float):
        """``probe()`` once ``done(it)`` holds; an assertion naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            self.check_alive()
            seen = probe()
            if done(seen):
                return seen
            time.sleep(0.5)
        raise AssertionError(f"{what}: not within {timeout}s; last seen {seen}\n{self.logs()}")


def dag_ids(namespace: str, include: Path, extra_datasets: tuple[str, ...] = ()) -> set[str]:
    """The DAG ids the project in ``include`` gives ``namespace``."""
    project = load_project(include, strict=True)
    return {
        *(dataset_dag_id(d.name, namespace) for d in project.datasets),
        *(dataset_dag_id(name, namespace) for name in extra_datasets),
        *(workflow_dag_id(w.name, namespace) for w in project.workflows),
        *(cookbook_dag_id(c.name, namespace) for c in project.cookbooks),
    }


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Origin:
    return Origin(tmp_path_factory.mktemp("git"))


@contextlib.contextmanager
def _running(home: Path, origin: Origin, bundles: dict[str, str]) -> Iterator[DagProcessor]:
    processor = DagProcessor(home, origin, bundles)
    try:
        with processor.stopped_on_sigterm():
            processor.start()
            yield processor
    finally:
        processor.stop()


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory, origin):
    bundles = {"serving": SERVING, "exp": FEATURE}
    with _running(tmp_path_factory.mktemp("bundles"), origin, bundles) as processor:
        yield processor


@pytest.fixture(scope="module")
def clashing(tmp_path_factory, origin):
    """serving plus two bundles whose branches both normalise to ``feature_exp_1``; once every
    bundle's file was parsed (DAGs or an import error)."""
    bundles = {"serving": SERVING, "exp": FEATURE, "exp_again": CLASH}
    with _running(tmp_path_factory.mktemp("clash"), origin, bundles) as processor:

        def parsed() -> set[str]:
            with_dags = {b for b, _, stale in processor.dags().values() if not stale}
            return with_dags | set(processor.import_errors())

        processor.wait("every bundle parsed", parsed, lambda seen: seen >= set(bundles), 90)
        yield processor


def test_each_bundle_gets_its_branchs_namespace_and_a_push_changes_only_its_own(
    two_bundles, origin
):
    airflow = two_bundles
    include = origin.work / "include"
    serving_ids, exp_ids = dag_ids("serving", include), dag_ids("feature_exp_1", include)
    want = {**dict.fromkeys(serving_ids, "serving"), **dict.fromkeys(exp_ids, "exp")}
    first = {"serving": origin.head(SERVING), "exp": origin.head(FEATURE)}

    def parsed(allowed: set[str]) -> Callable[[], dict]:
        """The DAGs, failing at once on an import error or a DAG id not in ``allowed``."""

        def probe() -> dict:
            errors, dags = airflow.import_errors(), airflow.dags()
            assert not errors, f"import errors: {errors}\n{airflow.logs()}"
            assert set(dags) <= allowed, f"unexpected DAGs: {sorted(set(dags) - allowed)}"
            return dags

        return probe

    started = time.monotonic()
    dags = airflow.wait(
        "both namespaces' DAGs",
        parsed(set(want)),
        lambda dags: {d: b for d, (b, _, stale) in dags.items() if not stale} == want,
        timeout=90,
    )
    print(f"first parse of both bundles: {time.monotonic() - started:.1f}s after start")
    assert dags == {d: (b, first[b], False) for d, b in want.items()}  # no other DAG, none stale
    assert airflow.bundle_versions() == first
    # the kind comes from each checkout's include/namespaces.yaml (default rules)
    assert {"serving"} <= airflow.tags("serving__orders")
    assert "research" not in airflow.tags("serving__orders")
    assert {"feature_exp_1", "research"} <= airflow.tags("feature_exp_1__orders")
    serving_before = airflow.versions("serving")
    assert len(serving_before) == len(serving_ids)  # one version each

    def add_extra(checkout: Path) -> None:
        """A dataset ``extra``: orders' row under another name."""
        registry = checkout / "include" / "registry.csv"
        text = registry.read_text()
        [orders] = [line for line in text.splitlines() if line.startswith("orders,")]
        registry.write_text(text + "extra" + orders.removeprefix("orders") + "\n")

    pushed_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    commit = origin.push(FEATURE, add_extra, "a dataset more")
    exp_after = dag_ids("feature_exp_1", include, extra_datasets=("extra",))

    def refreshed(dags) -> bool:
        live = {d: (b, v) for d, (b, v, stale) in dags.items() if not stale}
        return {d for d, (b, _) in live.items() if b == "exp"} == exp_after and all(
            v == commit for d, (b, v) in live.items() if b == "exp"
        )

    allowed = serving_ids | exp_after
    dags = airflow.wait("the pushed commit in feature_exp_1", parsed(allowed), refreshed, 60)
    print(f"push -> new DAG in the database: {time.monotonic() - started:.1f}s")
    assert dags == {
        **{d: ("serving", first["serving"], False) for d in serving_ids},
        **{d: ("exp", commit, False) for d in exp_after},
    }
    assert airflow.bundle_versions() == {"serving": first["serving"], "exp": commit}
    assert {"feature_exp_1", "research"} <= airflow.tags("feature_exp_1__extra")

    # serving's file is parsed again after the push (and after exp's refresh fetched the commit
    # into serving's bare repository too): its DAGs, versions and serialized DAGs stay as they were
    airflow.wait(
        "serving parsed again after the push",
        lambda: airflow.last_parsed("serving"),
        lambda times: len(times) == len(serving_ids) and min(times) > pushed_at,
        timeout=30,
    )
    assert airflow.versions("serving") == serving_before
    assert not airflow.import_errors()


DAY = "2024-01-01"
ONLY_SERVING = "4242,c9,placed,1.00,2024-01-01T13:00:00Z,2024-01-01\n"  # an order of serving's
ONLY_RESEARCH = "orders_by_customer"  # an aggregate only Feature/Exp-1's aggregates.yaml has
_AGGREGATE = f"""
- name: {ONLY_RESEARCH}
  dataset: orders
  group_by: [customer_id]
  metrics:
    orders: count
"""


def test_a_task_runs_with_its_bundles_namespace_and_checkout(two_bundles, origin):
    """``airflow dags test`` of a bundle's DAG (same Airflow home and bundle config as the
    dag-processor, PIPELINES_LAKE set, no PIPELINES_HOME or PIPELINES_NAMESPACE): its tasks write
    that bundle's namespace and read the project of that bundle's checkout at task time.

    Serving's sample gets an order only serving's branch has: the raw layer shows serving's task
    read its source from serving's checkout (not this repo's include/), and research's cleaned
    layer that research reads serving's raw in place. Feature/Exp-1 gets an aggregate only its
    branch has: its table shows the research task loaded that branch's aggregates.yaml.
    """
    airflow = two_bundles
    lake, storage = airflow.home / "lake", airflow.home / "bundles"
    assert airflow.env["PIPELINES_LAKE"] == str(lake)
    assert not {"PIPELINES_HOME", "PIPELINES_NAMESPACE"} & set(airflow.env)

    def add_order(checkout: Path) -> None:
        sample = checkout / "include" / "sample" / "orders" / f"orders_{DAY}.csv"
        sample.write_text(sample.read_text() + ONLY_SERVING)

    def add_aggregate(checkout: Path) -> None:
        aggregates = checkout / "include" / "aggregates.yaml"
        aggregates.write_text(aggregates.read_text() + _AGGREGATE)

    heads = {
        "serving": origin.push(SERVING, add_order, "an order only serving has"),
        "exp": origin.push(FEATURE, add_aggregate, "an aggregate only research has"),
    }

    def at_heads() -> dict[str, set]:
        errors = airflow.import_errors()
        assert not errors, f"import errors: {errors}\n{airflow.logs()}"
        live = [(b, v) for b, v, stale in airflow.dags().values() if not stale]
        return {b: {v for name, v in live if name == b} for b in heads}

    started = time.monotonic()
    airflow.wait(
        "both pushes parsed",
        at_heads,
        lambda seen: seen == {b: {v} for b, v in heads.items()},
        timeout=60,
    )
    print(f"pushes -> parsed: {time.monotonic() - started:.1f}s")

    def dags_test(dag_id: str, bundle: str) -> None:
        """``airflow dags test dag_id DAY``: no --bundle-name, so Airflow walks the configured
        bundles in order, checking each out at its ``tracking_ref`` (``tracking_repo/``, no
        version) and parsing it until one has the DAG; the tasks run in that process."""
        airflow.check_alive()
        started = time.monotonic()
        done = subprocess.run(
            [str(BIN / "airflow"), "dags", "test", dag_id, DAY],
            env=airflow.env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        output = done.stdout + done.stderr
        took = time.monotonic() - started
        (airflow.home / f"dags-test-{dag_id}.log").write_text(output)
        assert done.returncode == 0, (
            f"{dag_id}: exit {done.returncode} ({took:.0f}s)\n{output[-6000:]}"
        )
        print(f"airflow dags test {dag_id}: {took:.1f}s")
        states = dict(
            airflow.query(
                "SELECT state, COUNT(*) FROM dag_run WHERE dag_id = %s GROUP BY state", dag_id
            )
        )
        assert states == {"success": 1}, (dag_id, states, output[-6000:])
        tasks = airflow.query("SELECT task_id, state FROM task_instance WHERE dag_id = %s", dag_id)
        assert tasks and {s for _, s in tasks} == {"success"}, (dag_id, tasks, output[-6000:])
        [(fileloc,)] = airflow.query("SELECT fileloc FROM dag WHERE dag_id = %s", dag_id)
        assert fileloc == str(storage / bundle / "tracking_repo" / "dags" / "pipelines_dags.py")
        print(f"  {dag_id} parsed from {fileloc}; tasks {sorted(t for t, _ in tasks)}")

    dags_test("serving__orders", "serving")  # first: research reads serving's raw in place
    dags_test("feature_exp_1__orders", "exp")

    # each namespace wrote under its own prefix only: no research raw copy, nothing for "local"
    assert {p.name for p in lake.iterdir() if p.is_dir()} == {"serving", "feature_exp_1"}
    assert (lake / "serving" / "raw" / "orders" / f"ds={DAY}").is_dir()
    assert (lake / "serving" / "cleaned" / "orders").is_dir()
    assert (lake / "feature_exp_1" / "cleaned" / "orders").is_dir()
    assert not (lake / "feature_exp_1" / "raw").exists()
    assert not (lake / "local").exists()
    # the claims name the bundle's branch and the kind its checkout's namespaces.yaml gives it
    claim = {
        ns: json.loads((lake / ns / "_namespace.json").read_text())
        for ns in ("serving", "feature_exp_1")
    }
    assert claim == {
        "serving": {"namespace": "serving", "branch": SERVING, "kind": "serving"},
        "feature_exp_1": {"namespace": "feature_exp_1", "branch": FEATURE, "kind": "research"},
    }

    # read back with each checkout's own project
    projects = {b: load_project(storage / b / "tracking_repo" / "include") for b in heads}
    serving = Lake(str(lake), "serving")
    research = Lake(str(lake), "feature_exp_1", upstream="serving")

    def order_ids(frame) -> set[int]:
        return set(frame["order_id"].dropna().astype("Int64"))

    raw = read("orders", "raw", as_of=DAY, project=projects["serving"], lake=serving)
    assert len(raw) == 7 and 4242 in order_ids(raw)  # the sample of serving's checkout
    cleaned = read("orders", "cleaned", project=projects["serving"], lake=serving)
    assert order_ids(cleaned) == {1001, 1002, 1003, 1004, 4242}
    cleaned = read("orders", "cleaned", project=projects["exp"], lake=research)
    assert order_ids(cleaned) == {1001, 1002, 1003, 1004, 4242}  # serving's raw, read in place

    # the aggregate only Feature/Exp-1's include/ has: built by the research task, not serving's
    assert (lake / "feature_exp_1" / "aggregated" / ONLY_RESEARCH).is_dir()
    assert not (lake / "serving" / "aggregated" / ONLY_RESEARCH).exists()
    assert (lake / "serving" / "aggregated" / "daily_revenue").is_dir()
    table = read(ONLY_RESEARCH, "aggregated", project=projects["exp"], lake=research)
    counts = dict(zip(table["customer_id"], table["orders"].astype(int), strict=True))
    assert counts["c9"] == 1, counts


def test_two_branches_with_one_namespace_are_refused(clashing):
    errors = clashing.import_errors()
    for bundle in ("exp", "exp_again"):
        assert bundle in errors, (bundle, errors)
        for word in ("NamespaceError", repr(FEATURE), repr(CLASH), "'feature_exp_1'"):
            assert word in errors[bundle], (bundle, word, errors[bundle])
    assert not [d for d in clashing.dags() if d.startswith("feature_exp_1__")]


def test_a_clash_leaves_other_bundles_alone(clashing, origin):
    assert "serving" not in clashing.import_errors()
    live = {d for d, (b, _, stale) in clashing.dags().items() if b == "serving" and not stale}
    assert live == dag_ids("serving", origin.work / "include")
