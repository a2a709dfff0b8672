"""docker-compose.yaml and Dockerfile (cannot be started here): every Airflow service sees the same
folders, namespace and lake, the image pins the tested Airflow, and mounts exist in the repo."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}


def compose():
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def pinned(package: str) -> str:
    text = (REPO / "requirements.lock").read_text()
    return re.search(rf"^{re.escape(package)}==(\S+)$", text, re.M).group(1)


def test_every_airflow_service_shares_folders_namespace_and_lake():
    services = compose()["services"]
    assert set(services) >= AIRFLOW_SERVICES
    envs = [services[name]["environment"] for name in sorted(AIRFLOW_SERVICES)]
    assert all(env == envs[0] for env in envs)
    env = envs[0]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/pipelines/dags"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/pipelines/plugins"
    assert env["PIPELINES_NAMESPACE"].startswith("${PIPELINES_NAMESPACE")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_mounted_folders_exist_and_match_the_environment():
    services = compose()["services"]
    mounts = services["scheduler"]["volumes"]
    targets = {m.split(":")[1] for m in mounts}
    assert {"/opt/pipelines/dags", "/opt/pipelines/plugins", "/opt/pipelines/include"} <= targets
    for mount in mounts:
        host = mount.split(":")[0]
        if not host.startswith("./"):  # a named volume: declared at the top level
            assert host in compose()["volumes"], host
        elif host != "./.lake":
            assert (REPO / host).is_dir(), host


def test_image_pins_the_tested_airflow_and_installs_the_lock():
    dockerfile = (REPO / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", dockerfile, re.M)
    assert base.group(1) == pinned("apache-airflow")
    assert base.group(2) == "3.11"
    assert "-r /opt/pipelines/requirements.lock" in dockerfile


def test_services_start_after_the_database_is_migrated():
    services = compose()["services"]
    assert services["airflow-init"]["command"] == ["db", "migrate"]
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        )


def test_the_bundles_give_a_serving_a_master_and_a_research_namespace():
    """One GitDagBundle per branch; the namespaces they give are distinct and of the three
    kinds, and nothing pins one namespace or project home over them."""
    import json

    from pipelines.components.bundles import GIT_BUNDLE, Bundle, check_bundles
    from pipelines.namespaces import load_rules

    env = compose()["services"]["dag-processor"]["environment"]
    bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert {b["classpath"] for b in bundles} == {GIT_BUNDLE}
    refs = [Bundle(b["name"], b["kwargs"]["tracking_ref"]) for b in bundles]
    check_bundles(refs)  # no two branches give one namespace
    rules = load_rules(REPO / "include")
    kinds = {b.namespace: str(rules.kind_of(b.namespace, b.ref)) for b in refs}
    assert kinds == {"serving": "serving", "main": "master", "research_example": "research"}
    assert env["PIPELINES_NAMESPACE"] == "${PIPELINES_NAMESPACE:-}"  # empty: the bundle decides
    assert env["PIPELINES_HOME"] == "${PIPELINES_HOME:-}"  # empty: the bundle's checkout
    assert env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] == "/opt/airflow/dag_bundles"
    mounts = {
        m.split(":")[1]: m.split(":")[0] for m in compose()["services"]["scheduler"]["volumes"]
    }
    assert mounts["/opt/airflow/dag_bundles"] == "dag-bundles"  # shared: workers run versions
    assert {b["kwargs"]["repo_url"] for b in bundles} == {"/opt/pipelines/repo"}
    assert mounts["/opt/pipelines/repo/.git"] == "./.git"
    assert pinned("apache-airflow-providers-git")
