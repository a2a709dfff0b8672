"""``pipelines submit`` in this process: progress, the outputs as a table or as JSON, the clear
errors of a wrong use (a real Airflow: tests/e2e/test_client.py)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from pipelines import Client
from pipelines.cli import main
from pipelines.project.config import load_project
from pipelines.project.run_dates import latest_date


def test_submit_prints_each_run_and_the_outputs_by_name(home, capsys):
    # the first day: the 3-day window of customer_features is whole (nothing before start_date)
    assert main(["submit", "refund_model", "--date", "2024-01-01"]) == 0
    out = _lines(capsys.readouterr().out)
    assert out[0] == "starting 1 run of refund_model: 2024-01-01"
    assert [line.split()[:2] for line in out[1:6]] == [
        ["ok", "local__orders"],
        ["ok", "local__customers"],
        ["ok", "local__workflow__customer_features"],
        ["ok", "local__workflow__train_refund_model"],
        ["ok", "local__cookbook__refund_model"],
    ]
    table = dict(line.split(None, 1) for line in out[6:] if not line.startswith("tables:"))
    assert table["output"] == "value"
    assert table["passed"] == "12" and table["orders.rows_raw"] == "6"
    assert 0.5 <= float(table["accuracy"]) <= 1
    assert out[-1].startswith("tables: raw.orders, cleaned.orders,")


def _lines(out: str) -> list[str]:
    """The command's own lines (the suite lets Airflow log warnings to standard output)."""
    return [line for line in out.splitlines() if not re.match(r"\d{4}-\d\d-\d\dT", line)]


def test_submit_json_holds_the_outputs_the_client_returns(home, capsys):
    assert main(["submit", "orders", "--start", "2024-01-01", "--end", "2024-01-02", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # nothing but the JSON on standard output
    assert printed["ok"] is True and printed["name"] == "orders"
    assert [r["logical_date"] for r in printed["runs"]] == ["2024-01-01", "2024-01-02"]
    assert {r["state"] for r in printed["runs"]} == {"success"}
    again = Client().submit("orders", "2024-01-02")
    assert printed["outputs"] == again.outputs.metrics  # the range's outputs: its last day's
    assert printed["outputs"]["rows_raw"] == 5 and printed["tables"][0] == "raw.orders"


def test_a_failed_run_exits_1_with_the_task_and_its_error(home, capsys):
    (home / "include" / "sample" / "orders" / "orders_2024-01-02.csv").unlink()
    assert main(["submit", "orders", "--date", "2024-01-02"]) == 1
    out = capsys.readouterr().out
    assert "FAIL local__orders 2024-01-02" in out and "ingest.extract failed" in out
    assert "orders_2024-01-02.csv" in out and "no outputs (no run succeeded)" in out
    # (the session logs Airflow's task logs, tracebacks too, at WARNING: see test_run_command)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "ordrs"], "no dataset, workflow or cookbook named 'ordrs'"),
        (["submit", "ordrs"], "did you mean orders?"),
        (["submit", "orders", "--date", "2024-01-02", "--start", "2024-01-01"], "not both"),
        (["submit", "orders", "--start", "2024-01-01"], "--start and --end go together"),
        (["submit", "orders", "--date", "2024-01-02", "--conf", "{nope"], "--conf: not JSON"),
        (["submit", "orders", "--date", "2024-01-02", "--conf", "[1]"], "a JSON object"),
        (["submit", "orders", "--url", "ftp://x"], "must be http:// or https://"),
        (
            [
                "backfill",
                "orders",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-02",
                "--run-backwards",
            ],
            "--run-backwards is for an Airflow backfill: give --url",
        ),
    ],
)
def test_wrong_use_is_one_line(home, capsys, argv, message):
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err and out == ""


def test_without_a_date_the_latest_complete_interval_is_run(home):
    project = load_project()
    now = dt.datetime(2024, 1, 3, 5, tzinfo=dt.UTC)
    assert latest_date(project, "orders", now) == dt.date(2024, 1, 2)
    assert latest_date(project, "refund_model", now) == dt.date(2024, 1, 2)


def test_conf_reaches_the_run(home):
    from pipelines.runs import dag_folder
    from pipelines.runs.local import configure
    from pipelines.runs.local_run import manual_run

    configure(database=False)
    dag = dag_folder.load("local__orders")
    logical = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert manual_run(dag, logical, {"note": "rerun"}).conf == {"note": "rerun"}
    result = Client().submit("orders", "2024-01-02", conf={"note": "rerun"})
    assert result.ok and result.outputs["rows_raw"] == 5


@pytest.fixture
def resolved(monkeypatch):
    """Every name :meth:`Project.require` resolves, in order."""
    from pipelines.project.config import Project

    names: list[str] = []
    require = Project.require

    def counting(self, name, *kinds):
        names.append(name)
        return require(self, name, *kinds)

    monkeypatch.setattr(Project, "require", counting)
    return names


def test_a_cookbook_submit_resolves_its_name_once(home, resolved, monkeypatch):
    """The client resolves the submitted name once; the cookbook's children reach the dates,
    the runner and the outputs as entries (the DAG runs are stubbed: no task runs here)."""
    from pipelines.runs import cookbook
    from pipelines.runs.local import RunOutcome

    ran: list[str] = []

    def run_dag(dag_id, ds, **kwargs):
        ran.append(dag_id)
        return RunOutcome(dag_id, ds, "success", 0.0)

    monkeypatch.setattr(cookbook, "run_dag", run_dag)
    result = Client().submit("refund_model", "2024-01-02")
    assert result.ok and ran[-1] == "local__cookbook__refund_model" and len(ran) == 5
    assert "workflows.train_refund_model" in list(result.outputs.tables)  # (none is read)
    assert resolved == ["refund_model"]


def test_a_real_cookbook_run_resolves_each_name_once_per_entry_point(home, resolved):
    """A real local run of the cookbook: the client resolves the cookbook once, and so does each
    other entry point that names an entry: the DAG file building the cookbook's parent DAG (its
    children's DAG ids come from the entry), the cookbook's verify task, each workflow's run task
    (the datasets' tasks look their row up, they resolve no name). The first day: its windows
    are whole."""
    result = Client().submit("refund_model", "2024-01-01")
    assert result.ok and 0.5 <= result.outputs["accuracy"] <= 1
    assert sorted(resolved) == [
        "customer_features",  # its run task
        "refund_model",  # the client
        "refund_model",  # the DAG file, building the parent DAG
        "refund_model",  # the verify task
        "train_refund_model",  # its run task
    ]
