"""`pipelines run` / `backfill` as a new user meets them: every line says what happened.

In-process runs of the real command over a copy of the sample project (the local runner, the
default; `--airflow` runs the same through ``dag.test()``).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

import pipelines
from pipelines.cli import main
from pipelines.exceptions import LakeError

COMMAND_LINE = re.compile(
    r"^(starting |ok   |FAIL |\d+/\d+ runs|not run: |interrupted|error: |\w+\.(yaml|csv))"
)


def lines(capsys) -> list[str]:
    """The command's own lines: stdout's, then stderr's (an error or a config problem, which
    ends the command). The test session runs Airflow's logging at WARNING (conftest), so task
    logs (and their tracebacks) reach the streams too; the command alone runs it at CRITICAL
    (`cli.text.quiet_airflow`)."""
    out, err = capsys.readouterr()
    said = [line for line in out.strip().splitlines() if COMMAND_LINE.match(line)]
    assert not [line for line in said if line.startswith("error: ")]  # errors go to stderr
    return said + [line for line in err.strip().splitlines() if COMMAND_LINE.match(line)]


def test_a_backfill_announces_its_runs_and_each_line_says_what_the_run_did(
    home, airflow_db, capsys
):
    assert main(["backfill", "orders", "--start", "2024-01-01", "--end", "2024-01-02"]) == 0
    out = lines(capsys)
    assert out[0] == "starting 2 runs of orders: 2024-01-01 .. 2024-01-02"
    assert out[1].startswith("ok   local__orders 2024-01-01 (")
    assert out[1].endswith(
        "s): raw 6, cleaned 4, quarantined 2 (33%, 1 superseded), daily_revenue 2 rows"
    )
    assert out[2].endswith("s): raw 5, cleaned 3, quarantined 2 (40%, 1 superseded), "
                           "daily_revenue 4 rows")  # fmt: skip
    assert out[3] == "2/2 runs succeeded"


def test_the_time_on_a_line_is_the_run_s_wall_time(home, airflow_db, capsys):
    started = time.perf_counter()
    assert main(["run", "customers", "--date", "2024-01-01"]) == 0
    wall = time.perf_counter() - started
    shown = float(lines(capsys)[1].split("(", 1)[1].split("s)", 1)[0])
    assert 0.6 * wall <= shown <= wall + 0.1  # the run is most of the command's time


def test_a_failed_day_stops_the_backfill_and_says_which_days_did_not_run(home, airflow_db, capsys):
    (home / "include" / "sample" / "orders" / "orders_2024-01-02.csv").unlink()
    argv = ["backfill", "orders", "--start", "2024-01-01", "--end", "2024-01-04"]
    assert main(argv) == 1
    out = lines(capsys)
    assert out[2].startswith("FAIL local__orders 2024-01-02 (")
    assert "ingest.extract failed: orders: source for 2024-01-02 not found" in out[2]
    assert out[-2:] == [
        "1/2 runs succeeded",
        "not run: 2024-01-03 .. 2024-01-04 (2 days) (rerun them, or pass --keep-going)",
    ]
    assert main([*argv, "--keep-going"]) == 1
    out = lines(capsys)
    assert [line.split()[0] for line in out[1:5]] == ["ok", "FAIL", "ok", "ok"]
    assert out[-1] == "3/4 runs succeeded"


def test_ctrl_c_inside_a_task_says_interrupted_not_failed(home, airflow_db, capsys, monkeypatch):
    """Airflow's task runner catches the KeyboardInterrupt of a Ctrl-C inside a task and fails
    the task; the command still reports an interruption."""
    import pipelines.steps.dataset

    original = pipelines.steps.dataset.merge

    def slow_merge(*args):
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        time.sleep(3)
        return original(*args)

    monkeypatch.setattr(pipelines.steps.dataset, "merge", slow_merge)
    argv = ["backfill", "orders", "--start", "2024-01-01", "--end", "2024-01-03"]
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs as a background job
    assert main(argv) == 130
    out = lines(capsys)
    assert not [line for line in out if line.startswith("FAIL")]
    assert out[-1] == (
        "interrupted; not finished: 2024-01-01 .. 2024-01-03 (3 days) "
        "(runs are idempotent: run them again)"
    )
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_max_quarantine_pct_fails_a_run_that_quarantines_more(home, airflow_db, capsys):
    registry = home / "include" / "registry.csv"
    text = registry.read_text().splitlines()
    text = [f"{line},max_quarantine_pct" if line.startswith("dataset,") else line for line in text]
    text = [f"{line},20" if line.startswith("orders,") else line for line in text]
    text = [line if line.startswith(("dataset,", "orders,", "#")) else f"{line}," for line in text]
    registry.write_text("\n".join(text) + "\n")
    assert main(["run", "orders", "--date", "2024-01-01"]) == 1
    failed = lines(capsys)[1]
    assert "check.check_keys failed" in failed
    assert "2 of 6 raw rows quarantined (33%), over max_quarantine_pct=20" in failed
    with pytest.raises(LakeError, match="run its dataset: pipelines run orders --date"):
        pipelines.read("daily_revenue", "aggregated")  # the gate held: nothing aggregated


def test_outputs_hold_only_the_submitted_days_deliveries(home, airflow_db):
    from pipelines import Client

    Client().submit("orders", "2024-01-01", end="2024-01-04")
    results = Client().submit("orders", "2024-01-02", end="2024-01-03")
    assert results.ok and results.days == ["2024-01-02", "2024-01-03"]
    assert set(results.outputs["raw.orders"]["ds"]) == {"2024-01-02", "2024-01-03"}
    assert set(results.outputs["quarantine.orders"]["ds"]) <= {"2024-01-02", "2024-01-03"}
    assert len(results.outputs["cleaned.orders"]) == 8  # the table as it stands


def test_an_unreadable_config_file_fails_the_run_with_its_parse_error(home, airflow_db, capsys):
    (home / "include" / "aggregates.yaml").write_text("- name: x\n  metrics: {a: [\n")
    assert main(["run", "orders", "--date", "2024-01-01"]) == 1
    out = lines(capsys)
    assert out[0].startswith("aggregates.yaml: yaml: cannot parse (line ")
    assert len(out) == 1  # nothing ran


def test_naming_a_dataset_whose_row_is_invalid_says_why(home, airflow_db, capsys):
    registry = home / "include" / "registry.csv"
    registry.write_text(
        registry.read_text().replace(",incremental,@daily", ",incremntal,@daily", 1)
    )
    assert main(["run", "orders", "--date", "2024-01-01"]) == 1
    assert lines(capsys)[-1] == (
        "error: 'orders' is not valid, so it was skipped: registry.csv:3: ingestion: "
        "'incremntal' is not one of: full, incremental"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "orders", "--date", "2010/01/02"], "--date: '2010/01/02' is not a date"),
        (["run", "orders", "--date", "2010-02-30"], "--date: '2010-02-30' is not a real date"),
        (["backfill", "orders", "--start", "2024-01-01", "--end", "tomorrow"], "--end: 'tomorrow'"),
        (["read", "orders", "--layer", "raw", "--as-of", "2010-13-01"], "--as-of: '2010-13-01'"),
        (["run", "orders", "--date", "2023-12-31"], "orders: 2023-12-31 is before its start_date"),
    ],
)
def test_a_wrong_date_is_one_line_naming_the_option(home, airflow_db, capsys, argv, message):
    assert main(argv) == 1
    out = lines(capsys)
    assert len(out) == 1 and out[0].startswith(f"error: {message}")


def test_the_client_names_its_date_argument(home, airflow_db):
    from pipelines import Client
    from pipelines.exceptions import DateError

    with pytest.raises(DateError, match=r"^date: '2024/01/02' is not a date in the form"):
        Client().submit("orders", "2024/01/02")
    with pytest.raises(DateError, match=r"^end: 'soon' is not a date"):
        Client().submit("orders", "2024-01-02", end="soon")


def test_an_interval_still_running_needs_allow_incomplete(home, airflow_db, capsys):
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert main(["run", "customers", "--date", today]) == 1
    assert lines(capsys)[-1].startswith(f"error: customers: the interval of {today} ends ")
    assert main(["run", "customers", "--date", today, "--allow-incomplete"]) == 1  # no file
    out = lines(capsys)
    assert out[0] == f"starting 1 run of customers: {today}"
    assert f"source for {today} not found" in out[1]  # it did run, as asked


def test_a_run_in_another_namespace(home, airflow_db, capsys):
    # prod: a serving namespace, which ingests its own sources (see test_research.py for one
    # that reads serving's raw layer in place)
    assert main(["run", "customers", "--date", "2024-01-01", "--namespace", "prod"]) == 0
    assert lines(capsys)[1].startswith("ok   prod__customers 2024-01-01 (")
    assert len(pipelines.read("customers", "raw", namespace="prod")) == 5
    with pytest.raises(LakeError, match="no raw data for 'customers' in namespace 'local'"):
        pipelines.read("customers", "raw")
