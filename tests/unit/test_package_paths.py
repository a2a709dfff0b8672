"""Paths the package finds from its own files: the checkout's dags/ and plugins/ (what a local
run points Airflow at) and the package folder (what a workflow's error skips to find the user's
line). A module moved one folder deeper must not shift them."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pipelines
from pipelines.project.workflows import WorkflowSpec
from pipelines.runtime import environment
from pipelines.steps import workflow

REPO = Path(__file__).resolve().parents[2]


def test_the_package_and_its_checkout_are_found_from_the_package_itself():
    assert Path(pipelines.__file__).resolve().parent == environment.PACKAGE_DIR
    assert environment.CHECKOUT == REPO
    assert (environment.CHECKOUT / "dags" / "pipelines_dags.py").is_file()
    assert (environment.CHECKOUT / "plugins" / "pipelines_plugin.py").is_file()


def test_a_local_run_points_airflow_at_the_checkouts_dags_and_plugins(tmp_path, monkeypatch):
    from pipelines.runs.local import configure

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.delenv("AIRFLOW__CORE__DAGS_FOLDER")
    monkeypatch.delenv("AIRFLOW__CORE__PLUGINS_FOLDER")
    configure(database=False)
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(REPO / "plugins")


def test_a_workflow_error_names_the_users_line_even_through_a_package_function(tmp_path):
    """The user's function calls a function of the package that raises: the line said is the
    user's, not the package's (frames under the package folder are skipped)."""
    module = tmp_path / "usermod_paths.py"
    module.write_text(
        textwrap.dedent(
            """\
            from pipelines.common.partitions import parse_date

            def build(inputs, params, ds):
                return parse_date("not a date")
            """
        )
    )
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)  # noqa: S102
    spec = WorkflowSpec("w", "usermod_paths:build", (), {}, ("id",))
    try:
        workflow.call(spec, namespace["build"], {}, "2024-01-02")
    except Exception as exc:  # noqa: BLE001
        said = str(exc)
    assert said.endswith("(usermod_paths.py, line 4)"), said
