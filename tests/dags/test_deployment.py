"""docker-compose.yaml and Dockerfile (cannot be started here): every Airflow service sees the same
folders, namespace and lake, the image pins the tested Airflow, mounts exist in the repo, the S3
lake on MinIO is created before Airflow starts and reached through the connection the package
uses, and the Celery profile stays in its profile."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import yaml

from tests.conftest import REPO

AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}
CELERY_SERVICES = {"redis", "celery-worker"}
ONE_SHOTS = {"airflow-init", "lake-bucket"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose():
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def airflow_services() -> dict:
    """Every service running the Airflow image: the core ones and the Celery worker."""
    services = compose()["services"]
    return {name: s for name, s in services.items() if s.get("image") == "pipelines-airflow:0.1.0"}


def resolved(value: str) -> str:
    """``value`` as Compose gives it with none of its variables set: each ``${X:-default}``
    becomes its default, ``$$`` a ``$``."""
    return _VARIABLE.sub(lambda m: m.group(2) or "", value).replace("$$", "$")


def lake_connection(env: dict, monkeypatch) -> tuple[str, dict]:
    """The connection id the package uses under ``env`` (asking
    :func:`environment.lake_conn_id`), and its ``AIRFLOW_CONN_*`` JSON."""
    from pipelines.runtime import environment

    if environment.LAKE_CONN_ENV in env:
        monkeypatch.setenv(environment.LAKE_CONN_ENV, resolved(env[environment.LAKE_CONN_ENV]))
    else:
        monkeypatch.delenv(environment.LAKE_CONN_ENV, raising=False)
    conn_id = environment.lake_conn_id()
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    assert variable in env, f"no {variable} for the lake connection {conn_id!r}"
    return conn_id, json.loads(env[variable])


def bucket_command() -> re.Match:
    """The one-shot's ``mc alias set ALIAS URL ...`` and ``mc mb --ignore-existing A/BUCKET``."""
    command = " ".join(compose()["services"]["lake-bucket"]["command"])
    found = re.search(
        r"mc alias set (?P<alias>\S+) (?P<url>\S+) .*"
        r"mc mb --ignore-existing (?P<mb_alias>[^/\s]+)/(?P<bucket>[^/\s]+)",
        command,
    )
    assert found, command
    return found


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
    for name in set(airflow_services()) - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        ), name


def test_the_bundles_give_a_serving_a_master_and_a_research_namespace():
    """One GitDagBundle per branch; the namespaces they give are distinct and of the three
    kinds, and nothing pins one namespace or project home over them."""
    import json

    from pipelines.project.namespaces import load_rules
    from pipelines.runtime.bundles import GIT_BUNDLE, Bundle, check_bundles

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


def test_the_airflow_services_are_the_core_ones_and_the_celery_worker():
    assert set(airflow_services()) == AIRFLOW_SERVICES | {"celery-worker"}
    assert {"minio", "lake-bucket"} | CELERY_SERVICES <= set(compose()["services"])


def test_every_image_is_pinned():
    for name, service in compose()["services"].items():
        image = resolved(service["image"])
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
    assert re.fullmatch(
        r"minio/minio:RELEASE\.\S+", resolved(compose()["services"]["minio"]["image"])
    )
    assert re.fullmatch(
        r"minio/mc:RELEASE\.\S+", resolved(compose()["services"]["lake-bucket"]["image"])
    )


def test_every_long_running_service_has_a_health_check():
    """The one-shots are what others wait to complete; everything else stays up and says
    whether it is healthy, and whatever is waited for as healthy has a check to wait on."""
    services = compose()["services"]
    waits = [
        (target, dep["condition"])
        for service in services.values()
        for target, dep in service.get("depends_on", {}).items()
    ]
    assert {t for t, c in waits if c == "service_completed_successfully"} == ONE_SHOTS
    for name in set(services) - ONE_SHOTS:
        assert services[name].get("healthcheck", {}).get("test"), f"{name}: no health check"
    for target in {t for t, c in waits if c == "service_healthy"}:
        assert services[target].get("healthcheck", {}).get("test"), target
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name


def test_airflow_starts_after_minio_is_healthy_and_the_bucket_exists():
    services = compose()["services"]
    assert services["lake-bucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    init = services["airflow-init"]["depends_on"]
    assert init["minio"]["condition"] == "service_healthy"
    assert init["postgres"]["condition"] == "service_healthy"
    for name, service in airflow_services().items():
        assert service["depends_on"]["lake-bucket"]["condition"] == (
            "service_completed_successfully"
        ), name


def test_the_bucket_the_one_shot_creates_is_the_lake_s_bucket():
    made = bucket_command()
    assert made["mb_alias"] == made["alias"]
    for name, service in airflow_services().items():
        lake = urlsplit(resolved(service["environment"]["PIPELINES_LAKE"]))
        assert (lake.scheme, lake.netloc) == ("s3", made["bucket"]), name
        assert lake.path.strip("/"), f"{name}: the lake is a prefix in the bucket, not its root"


def test_the_lake_connection_reaches_minio_with_its_credentials(monkeypatch):
    """The connection the package picks (PIPELINES_LAKE_CONN_ID, else its default) is defined
    in every Airflow service, is an aws connection to the minio service's S3 port, and logs in
    with the credentials MinIO and the bucket one-shot are started with."""
    services = compose()["services"]
    minio = services["minio"]
    command = minio["command"]
    port = int(command[command.index("--address") + 1].rpartition(":")[2])
    assert f"{port}:{port}" in minio["ports"]
    assert services["lake-bucket"]["environment"] == minio["environment"]
    user, password = (
        minio["environment"]["MINIO_ROOT_USER"],
        minio["environment"]["MINIO_ROOT_PASSWORD"],
    )
    assert resolved(user) and len(resolved(password)) >= 8  # MinIO refuses shorter ones
    for name, service in airflow_services().items():
        conn_id, conn = lake_connection(service["environment"], monkeypatch)
        assert conn["conn_type"] == "aws", (name, conn_id)
        endpoint = urlsplit(conn["extra"]["endpoint_url"])
        assert (endpoint.hostname, endpoint.port) == ("minio", port), name
        assert conn["extra"]["region_name"], name
        assert (conn["login"], conn["password"]) == (user, password), name
    assert bucket_command()["url"] == conn["extra"]["endpoint_url"]


def pipelines_variables_read() -> tuple[set[str], set[str]]:
    """The ``PIPELINES_*`` names the package's source spells out, and the prefixes it reads a
    family of variables under (``PIPELINES_AIRFLOW_`` + name)."""
    found = set()
    for path in (REPO / "plugins" / "pipelines").rglob("*.py"):
        found |= set(re.findall(r"\b(PIPELINES_[A-Z0-9_]*)(\{?)", path.read_text()))
    names = {name for name, brace in found if not brace and not name.endswith("_")}
    return names, {name for name, brace in found if brace}  # not ``PIPELINES_*`` in prose


def test_every_pipelines_variable_is_one_the_package_reads_and_the_same_everywhere():
    names, prefixes = pipelines_variables_read()
    assert {"PIPELINES_LAKE", "PIPELINES_LAKE_CONN_ID", "PIPELINES_NAMESPACE"} <= names
    services = airflow_services()
    set_here = {
        k for s in services.values() for k in s["environment"] if k.startswith("PIPELINES_")
    }
    assert {"PIPELINES_LAKE", "PIPELINES_NAMESPACE", "PIPELINES_HOME"} <= set_here
    for variable in set_here:
        assert variable in names or variable.startswith(tuple(prefixes)), (
            f"{variable}: the package reads no such variable"
        )
        values = {name: s["environment"].get(variable) for name, s in services.items()}
        assert len(set(values.values())) == 1, f"{variable}: {values}"


def test_the_celery_profile_switches_the_executor_and_stays_in_its_profile():
    services = compose()["services"]
    profiled = {name for name, s in services.items() if "profiles" in s}
    assert profiled == CELERY_SERVICES
    for name in CELERY_SERVICES:
        assert services[name]["profiles"] == ["celery"], name
    for name in set(services) - CELERY_SERVICES:  # starts without the profile
        assert not set(services[name].get("depends_on", {})) & CELERY_SERVICES, name
    worker = services["celery-worker"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["command"][-1].rstrip().endswith("exec airflow celery worker")
    assert '"$$AIRFLOW__CORE__EXECUTOR" != CeleryExecutor' in worker["command"][-1]
    core = services["scheduler"]["environment"]
    assert {k: v for k, v in worker["environment"].items() if k != "DUMB_INIT_SETSID"} == core
    assert core["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    broker = urlsplit(core["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    database = urlsplit(core["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    results = urlsplit(core["AIRFLOW__CELERY__RESULT_BACKEND"])
    assert (results.scheme, results.netloc, results.path) == (
        "db+postgresql",
        database.netloc,
        database.path,
    )
    # the celery provider and redis come with the regular apache/airflow image, not its -slim one
    assert re.search(r"^FROM apache/airflow:\d", (REPO / "Dockerfile").read_text(), re.M)


def sample_database_sources() -> dict[str, object]:
    """The sample registry's database sources: dataset name -> its SqlSource."""
    from pipelines.project.config import load_project

    project = load_project(REPO / "include")
    return {d.name: d.sql for d in project.datasets if d.sql is not None}


def test_the_source_database_is_a_postgres_of_its_own_seeded_from_the_repo():
    """shop-db is not Airflow's metadata database: another service, another data volume; its
    seed is a folder of the repo mounted read-only where the image runs it on first start, and
    it creates every table the sample's database sources read."""
    services = compose()["services"]
    shop = services["shop-db"]
    assert resolved(shop["image"]).startswith("postgres:")
    metadata = urlsplit(services["scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert metadata.hostname == "postgres" != "shop-db"
    data = {m.split(":")[1]: m.split(":")[0] for m in shop["volumes"]}
    assert data["/var/lib/postgresql/data"] in compose()["volumes"]
    assert data["/var/lib/postgresql/data"] not in services["postgres"]["volumes"][0]
    [seed] = [m for m in shop["volumes"] if ":/docker-entrypoint-initdb.d" in m]
    host, _, mode = seed.split(":")
    assert mode == "ro" and host.startswith("./include/")
    scripts = sorted((REPO / host).glob("*.sql"))
    assert [p.name for p in scripts] == ["seed.sql"]
    seed_sql = scripts[0].read_text()
    sources = sample_database_sources()
    assert sources, "no sample dataset reads a database"
    for name, source in sources.items():
        assert source.query is None, name  # a table the seed creates
        table = r"\.".join(source.table)
        assert re.search(rf"^CREATE TABLE {table} \(", seed_sql, re.M), (name, source.table)
    assert "\\" not in seed_sql  # plain SQL: psql in the image and psycopg in the tests run it


def test_the_sample_s_database_connection_is_in_every_airflow_service(monkeypatch):
    """Each connection a sample database source names is an ``AIRFLOW_CONN_*`` variable of every
    Airflow service, the same everywhere, that the package's own lookup turns into a PostgreSQL
    hook on the shop-db service with the database, user and password shop-db is started with;
    that password is a demo value a variable replaces, not a secret."""
    from pipelines.runtime import databases

    shop = compose()["services"]["shop-db"]
    credentials = {k: resolved(v) for k, v in shop["environment"].items()}
    assert "demo" in credentials["POSTGRES_PASSWORD"]  # says what it is
    assert shop["environment"]["POSTGRES_PASSWORD"].startswith("${SHOP_DB_PASSWORD:-")
    services = airflow_services()
    for source in sample_database_sources().values():
        variable = f"AIRFLOW_CONN_{source.conn_id.upper()}"
        values = {name: s["environment"].get(variable) for name, s in services.items()}
        assert len(set(values.values())) == 1 and None not in values.values(), values
        value = resolved(next(iter(values.values())))
        monkeypatch.setenv(variable, value)
        connection = databases.hook(source.conn_id).get_connection(source.conn_id)
        assert connection.conn_type == "postgres"
        assert (connection.host, connection.port) == ("shop-db", 5432)
        assert connection.schema == credentials["POSTGRES_DB"]  # the database, in Airflow's terms
        assert connection.login == credentials["POSTGRES_USER"]
        assert connection.password == credentials["POSTGRES_PASSWORD"]
    init = services["airflow-init"]["depends_on"]  # which every other Airflow service awaits
    assert init["shop-db"]["condition"] == "service_healthy"  # up before any DAG runs


def test_the_local_demo_runs_no_database_source():
    """`make demo` has no database server: nothing its commands name runs a database source,
    directly or as a cookbook's child (the compose stack runs it, and `make test` through
    tests/integration/test_sample_database.py)."""
    from pipelines.project.config import load_project

    project = load_project(REPO / "include")
    sources = set(sample_database_sources())
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    words = set(recipe.group(1).split())
    cookbooks = [c for c in project.cookbooks if c.name in words]
    assert cookbooks, "the demo runs no cookbook: read its recipe again"
    run = words | {child.name for c in cookbooks for child in c.children}
    assert {d.name for d in project.datasets} & run  # the recipe was read
    assert not run & sources, recipe.group(1)
