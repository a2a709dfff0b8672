"""Security: no registry or config value reaches a shell, ``eval`` or a Jinja template; secrets come
only from Airflow connections and are never printed; lake paths always stay under the root."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from pipelines.exceptions import LakeError, PipelinesError
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Storage
from tests.conftest import REPO
from tests.reliability.s3server import BUCKET, PASSWORD, Fault
from tests.reliability.workload import DAYS, Env

CODE = sorted([*(REPO / "plugins" / "pipelines").rglob("*.py"), *(REPO / "dags").glob("*.py")])
FORBIDDEN_CALLS = {  # bare names are builtins; dotted ones are methods (re.compile is fine)
    "eval",
    "exec",
    "compile",
    "__import__",
    "Template",
    ".system",
    ".popen",
    ".execv",
    ".execvp",
    ".spawnv",
    ".Template",
    ".from_string",
}
FORBIDDEN_MODULES = {"subprocess", "jinja2", "pickle", "shelve", "marshal"}
HOSTILE = "{{ conn.pipelines_lake.password }} {% raw %} $(id) `id`"


def calls_and_imports(path: Path) -> tuple[set[str], set[str], bool]:
    tree = ast.parse(path.read_text(), str(path))
    calls, modules, shell = set(), set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            calls.add(
                f".{func.attr}" if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            )
            shell |= any(k.arg == "shell" for k in node.keywords)
        elif isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return calls, modules, shell


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(REPO)))
def test_no_shell_eval_or_template_engine_in_the_code(path):
    calls, modules, shell = calls_and_imports(path)
    assert not calls & FORBIDDEN_CALLS
    assert not modules & FORBIDDEN_MODULES
    assert not shell
    assert "BashOperator" not in path.read_text()


def test_no_task_has_a_templated_field_holding_config_text(tmp_path, monkeypatch):
    """Every task of every DAG (datasets and cookbooks) built from a registry full of Jinja."""
    from pipelines.project.config import load_project
    from pipelines.wiring.factory import build_dags

    shutil.copytree(REPO / "include", tmp_path / "include")
    registry = tmp_path / "include" / "registry.csv"
    lines = registry.read_text().splitlines()
    header = lines[0].split(",")
    hostile = [line for line in lines[1:] if line.startswith("orders,")][0].split(",")
    hostile[0] = "hostile"
    hostile[header.index("owner")] = f'"{HOSTILE}"'
    hostile[header.index("description")] = f'"{HOSTILE}"'
    registry.write_text("\n".join([*lines, ",".join(hostile)]) + "\n")
    monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
    project = load_project(tmp_path / "include")
    assert project.problems == () and project.dataset("hostile").owner == HOSTILE
    dags = build_dags(project)
    assert "local__hostile" in dags and any("cookbook" in d for d in dags)
    for dag in dags.values():
        assert not dag.render_template_as_native_obj
        for task in dag.tasks:
            for name in task.template_fields:
                value = str(getattr(task, name, ""))
                assert "{{" not in value and "{%" not in value, (dag.dag_id, task.task_id, name)
            if task.task_type.endswith("Operator") and "Trigger" not in task.task_type:
                assert task.template_fields == (), (dag.dag_id, task.task_id)


@pytest.mark.parametrize(
    ("root", "path"),
    [
        ("/lake", "/lake/../etc/passwd"),
        ("/lake", "/lake2/x"),
        ("/lake", "/lake/ns/../../x"),
        ("/lake", "/"),
        ("s3://b/lake", "s3://b/lake/../other/x"),
        ("s3://b/lake", "s3://b/lakeside/x"),
        ("s3://b/lake", "s3://other/lake/x"),
    ],
)
def test_a_path_outside_the_lake_root_is_refused_after_normalisation(root, path):
    with pytest.raises(LakeError, match="is outside the lake root"):
        Storage(root, conn_id="unused").check_inside(path)


@pytest.mark.parametrize("name", ["../x", "../../etc", "a/../../b", "..", "x/../../../y"])
def test_tables_cannot_leave_the_lake(tmp_path, name):
    lake = Lake(str(tmp_path / "lake"), "local")
    with pytest.raises(LakeError):
        lake.manifest("cleaned", name).snapshot()
    assert not (tmp_path / "etc").exists() and not (tmp_path / "x").exists()


def test_a_partition_cannot_be_written_outside_its_table(tmp_path):
    import pandas as pd

    from pipelines.lake.tables import EMPTY

    table = Lake(str(tmp_path / "lake"), "local").raw("t")
    with pytest.raises(ValueError, match="is not a date in the form YYYY-MM-DD"):
        table.commit(EMPTY, {"../../../../escaped": pd.DataFrame({"a": [1]})})
    assert not list(tmp_path.rglob("*.parquet"))


@pytest.mark.parametrize("value", ["../x", "a/b", "Prod", "x" * 41, "ns;rm -rf /", ""])
def test_an_unsafe_namespace_is_refused(monkeypatch, tmp_path, value):
    from pipelines.runtime import environment

    monkeypatch.setenv("PIPELINES_NAMESPACE", value)
    if value == "":  # unset: the project's git branch, and outside a checkout the default
        monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
        assert environment.namespace() == "local"
        return
    with pytest.raises(PipelinesError, match="PIPELINES_NAMESPACE"):
        environment.namespace()


@pytest.mark.parametrize(
    "lake",
    [f"s3://AKIAEXAMPLE:{PASSWORD}@bucket/lake", f"s3://bucket/lake?secret_key={PASSWORD}"],
)
def test_credentials_in_the_lake_uri_are_refused_without_printing_them(monkeypatch, capsys, lake):
    from pipelines import cli

    monkeypatch.setenv("PIPELINES_LAKE", lake)
    assert cli.main(["show"]) == 1
    out = "".join(capsys.readouterr())
    assert "PIPELINES_LAKE: the lake URI must not carry credentials" in out
    assert "Airflow connection 'pipelines_lake'" in out and PASSWORD not in out


def test_credentials_in_a_source_are_refused_by_validate_without_printing_them(tmp_path, capsys):
    from pipelines import cli

    (tmp_path / "registry.csv").write_text(
        "dataset,source,primary_key,ingestion,start_date\n"
        f"leak,s3://AKIAEXAMPLE:{PASSWORD}@bucket/x,id,full,2024-01-01\n"
        f"leak2,s3://bucket/x.csv?password={PASSWORD},id,full,2024-01-01\n"
    )
    assert cli.main(["validate", str(tmp_path / "registry.csv")]) == 1
    out = "".join(capsys.readouterr())
    assert "registry.csv:2: source: credentials must not be written in the URI" in out
    assert "registry.csv:3: source: the URI query carries a secret" in out
    assert PASSWORD not in out


def test_a_failing_s3_run_never_prints_the_connection_password(
    airflow_db, s3, project, monkeypatch, capfd, caplog
):
    """The lake denies everything: the task fails, and neither the error, the task log nor the
    CLI show the connection's password."""
    from pipelines import cli
    from pipelines.runs.local import run_dag

    env = Env(str(project), f"s3://{BUCKET}/denied", extra=s3.connection_env())
    for key, value in {"PIPELINES_HOME": env.home, "PIPELINES_LAKE": env.lake, **env.extra}.items():
        monkeypatch.setenv(key, value)
    s3.inject(*(Fault(m, "/denied", 403, "AccessDenied", 10_000) for m in ("GET", "PUT", "HEAD")))
    try:
        outcome = run_dag("local__ledger", DAYS[0])
        code = cli.main(["read", "ledger", "--layer", "raw"])
    finally:
        assert s3.clear() > 0
    assert not outcome.ok and outcome.failed_task == "ingest.extract" and code == 1
    printed = "".join(capfd.readouterr()) + caplog.text + str(outcome.error)
    assert "Access Denied" in printed or "AccessDenied" in printed or "denied" in printed
    assert PASSWORD not in printed
