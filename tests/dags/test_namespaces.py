"""Three namespaces (serving, master, research) side by side in one DagBag, each parsed from its
own DAG bundle checkout: no DAG id, asset, pool or lake path of one is another's, and each kind
schedules what it should."""

from __future__ import annotations

import json
import shutil

import pytest

from pipelines.wiring.timetable import PipelinesTimetable, TriggeredTimetable
from tests.conftest import REPO

GIT = "airflow.providers.git.bundles.git.GitDagBundle"
BUNDLES = {  # bundle name -> (tracking_ref, namespace, kind)
    "serving": ("serving", "serving", "serving"),
    "master": ("main", "main", "master"),
    "exp": ("Feature/Big-Change", "feature_big_change", "research"),
}
SETTINGS = """
serving: {pool: "{namespace}_pool"}
master: {cookbook: e2e_test, schedule: "@hourly", date: 2024-01-02}
research: {pool: "{namespace}_pool", upstream: serving}
"""


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    """A DagBag over a bundle storage folder holding three checkouts of this project."""
    from airflow.dag_processing.dagbag import DagBag

    from pipelines.runtime import bundles

    root = tmp_path_factory.mktemp("bundles")
    for name in BUNDLES:
        checkout = root / name / "tracking_repo"
        shutil.copytree(REPO / "dags", checkout / "dags")
        shutil.copytree(REPO / "include", checkout / "include")
        (checkout / "include" / "namespaces.yaml").write_text(SETTINGS)  # the default kinds
    config = [
        {"name": n, "classpath": GIT, "kwargs": {"tracking_ref": ref}}
        for n, (ref, _, _) in BUNDLES.items()
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PIPELINES_NAMESPACE", raising=False)
        mp.delenv("PIPELINES_HOME", raising=False)
        mp.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(root))
        mp.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(config))
        try:
            found = DagBag(dag_folder=str(root))
        finally:
            bundles._BOUND.clear()
    return found


def of(bag, namespace: str) -> dict:
    return {i: d for i, d in bag.dags.items() if i.startswith(f"{namespace}__")}


def test_each_bundle_gives_its_namespace_every_dag(bag):
    assert bag.import_errors == {}
    for _, namespace, _ in BUNDLES.values():
        assert sorted(i.removeprefix(f"{namespace}__") for i in of(bag, namespace)) == sorted(
            [
                "orders",
                "customers",
                "events",
                "payments",
                "workflow__customer_features",
                "workflow__train_refund_model",
                "cookbook__e2e_test",
                "cookbook__refund_model",
            ]
        )
    assert len(bag.dags) == 3 * 8


def test_no_two_namespaces_share_a_written_asset_a_pool_or_a_tag(bag):
    written: dict[str, set] = {}
    pools: dict[str, set] = {}
    for ref, namespace, kind in BUNDLES.values():
        tasks = [t for d in of(bag, namespace).values() for t in d.tasks]
        written[namespace] = {o.uri for t in tasks for o in t.outlets}
        pools[namespace] = {t.pool for t in tasks}
        assert all(namespace in d.tags and kind in d.tags for d in of(bag, namespace).values())
        for uri in written[namespace]:
            assert f"/{namespace}/" in uri, uri  # everything it writes is under its prefix
    names = [n for _, n, _ in BUNDLES.values()]
    for a in names:
        for b in names:
            if a < b:
                assert not written[a] & written[b], (a, b)
                assert not pools[a] & pools[b] or pools[a] == {"default_pool"} == pools[b]
    assert pools["serving"] == {"serving_pool"}
    assert pools["feature_big_change"] == {"feature_big_change_pool"}
    assert pools["main"] == {"default_pool"}


def test_research_reads_servings_raw_layer_in_place(bag):
    extract = of(bag, "feature_big_change")["feature_big_change__orders"].get_task("ingest.extract")
    assert [a.extra["table"] for a in extract.inlets] == ["serving.raw.orders"]
    assert extract.outlets == []
    merge = of(bag, "feature_big_change")["feature_big_change__orders"].get_task("clean.merge")
    assert [a.extra["table"] for a in merge.inlets] == ["serving.raw.orders"]
    assert {a.extra["table"] for a in merge.outlets} == {
        "feature_big_change.cleaned.orders",
        "feature_big_change.quarantine.orders",
    }


def test_schedules_follow_the_kind(bag):
    serving, master, research = (of(bag, n) for _, n, _ in BUNDLES.values())
    # not scheduled: TriggeredTimetable, which starts no run (as schedule=None) but gives a run
    # triggered for D the interval [D, next D) (NullTimetable recorded [D, D))
    for dag_id, dag in serving.items():
        if "__cookbook__" in dag_id:  # cookbooks.yaml: schedule null
            assert isinstance(dag.timetable, TriggeredTimetable), dag_id
        elif "__workflow__" not in dag_id:
            assert type(dag.timetable) is PipelinesTimetable and dag.catchup, dag_id
    assert type(serving["serving__workflow__customer_features"].timetable).__name__ == (
        "PartitionedAssetTimetable"
    )
    for dag_id, dag in [*master.items(), *research.items()]:
        if dag_id != "main__cookbook__e2e_test":
            assert isinstance(dag.timetable, TriggeredTimetable), (dag_id, dag.timetable)
            assert not dag.timetable.can_be_scheduled and dag.timetable.summary == "None"
    e2e = master["main__cookbook__e2e_test"]
    assert type(e2e.timetable) is PipelinesTimetable
    assert e2e.timetable._expression == "0 * * * *"
    assert e2e.get_task("trigger_orders").replay == "2024-01-02"
    assert e2e.get_task("trigger_orders").trigger_dag_id == "main__orders"


def test_two_bundles_whose_branches_give_one_namespace_are_an_import_error(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from pipelines.runtime import bundles

    for name in ("a", "b"):
        checkout = tmp_path / name / "tracking_repo"
        shutil.copytree(REPO / "dags", checkout / "dags")
        shutil.copytree(REPO / "include", checkout / "include")
    config = [
        {"name": "a", "classpath": GIT, "kwargs": {"tracking_ref": "Feature/X"}},
        {"name": "b", "classpath": GIT, "kwargs": {"tracking_ref": "feature-x"}},
    ]
    monkeypatch.delenv("PIPELINES_NAMESPACE", raising=False)
    monkeypatch.delenv("PIPELINES_HOME", raising=False)
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(config))
    try:
        found = DagBag(dag_folder=str(tmp_path / "a"))
    finally:
        bundles._BOUND.clear()
    assert found.dag_ids == []
    [error] = found.import_errors.values()
    assert "'Feature/X'" in error and "'feature-x'" in error and "feature_x" in error


def test_only_a_scheduled_run_replays_the_sample_day():
    import datetime as dt
    from types import SimpleNamespace

    from airflow.sdk.api.datamodels._generated import DagRunType

    from pipelines.wiring.cookbooks import replayed_day

    own = dt.datetime(2026, 12, 1, 15, tzinfo=dt.UTC)
    for run_type, want in [
        (DagRunType.SCHEDULED, dt.datetime(2024, 1, 2, tzinfo=dt.UTC)),  # as a task sees it
        ("scheduled", dt.datetime(2024, 1, 2, tzinfo=dt.UTC)),
        (DagRunType.MANUAL, own),
        (DagRunType.BACKFILL, own),
    ]:
        context = {"logical_date": own, "dag_run": SimpleNamespace(run_type=run_type)}
        assert replayed_day(context, "2024-01-02") == (want, want != own), run_type
        assert replayed_day(context, None) == (own, False)
