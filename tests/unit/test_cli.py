"""The `pipelines` command in-process: exit codes and what reaches standard output."""

from __future__ import annotations

from pipelines.cli import main


def test_env_prints_only_exports(airflow_db, capsys):
    assert main(["env"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all(line.startswith("export ") for line in lines)
    assert any(line.startswith("export AIRFLOW__CORE__PLUGINS_FOLDER=") for line in lines)


def test_unknown_name_is_a_message_not_a_traceback(home, capsys):
    assert main(["read", "nope"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: no dataset named 'nope' in registry.csv; known: orders")
    assert "Traceback" not in err and out == ""  # stdout carries the command's output alone


def test_reading_before_any_run_says_what_to_do(home, capsys):
    assert main(["read", "orders"]) == 1
    assert "run: pipelines run orders --date YYYY-MM-DD" in capsys.readouterr().err


def test_list_shows_dag_ids_and_newest_raw_ds(home, capsys):
    from pipelines.steps.dataset import run_steps

    run_steps("orders", "2024-01-02", steps=("extract",))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["local__orders", "@daily", "incremental", "2024-01-02"] in rows
    assert ["local__customers", "@daily", "full", "-"] in rows
    assert "local__cookbook__e2e_test" in out


def test_plan_apply_parses_its_backfills_with_the_command_s_own_parser(monkeypatch):
    import argparse

    from pipelines.cli import _parser, parser, plan

    given = argparse.Namespace(url=None, timeout=60.0)  # plan --apply without --url
    words = ["backfill", "orders", "--start", "2024-01-01", "--end", "2024-01-03"]
    parsed = plan.backfill_args("orders", "2024-01-01", "2024-01-03", given)
    assert parsed == _parser().parse_args([*words, "--timeout", "60.0"])
    assert parsed.func is parser.cmd_backfill and parsed.max_active_runs == 4
    on_airflow = argparse.Namespace(url="http://airflow:8080", timeout=3600.0)
    parsed = plan.backfill_args("orders", "2024-01-01", "2024-01-03", on_airflow)
    assert parsed == _parser().parse_args([*words, "--url", "http://airflow:8080"])

    # an option added to the backfill command reaches plan --apply's arguments, at its default
    defined = parser._run_parser

    def with_an_option(p, name):
        defined(p, name)
        p.add_argument("--new-option", default="its default")

    monkeypatch.setattr(parser, "_run_parser", with_an_option)
    assert plan.backfill_args("orders", "2024-01-01", "2024-01-03", given).new_option == (
        "its default"
    )


def test_an_error_line_never_shows_a_credential_in_a_url_it_names(monkeypatch, capsys):
    """The last guard: whatever error a command raises, its line is redacted (user info, token
    parameters, as written or URL-encoded)."""
    from pipelines.cli import parser
    from pipelines.exceptions import AirflowUnreachable

    def fails(args):
        raise AirflowUnreachable(
            "cannot reach Airflow at http://admin:s3cret@host:8080: GET /x%3Ftoken%3Ds3cret failed"
        )

    monkeypatch.setattr(parser, "cmd_submit", fails)
    assert main(["submit", "orders", "--date", "2024-01-02"]) == 1
    assert capsys.readouterr().err == (
        "error: cannot reach Airflow at http://***@host:8080: GET /x%3Ftoken%3D*** failed\n"
    )


def test_repair_says_one_line_per_table_whatever_an_error_in_it_holds(home, monkeypatch, capsys):
    # a day that cannot be made again quotes its run's error, which may hold newlines and
    # escape sequences: the table's line stays one line, with both shown escaped
    from pipelines.project import namespaces
    from pipelines.steps import repair

    def repaired(project, lake, name, *, on_table):
        done = [repair.Repaired("cleaned/orders", None, unhealed="first\nsecond \x1b[2J")]
        for item in done:
            on_table(item)
        return done

    monkeypatch.setattr(repair, "repair", repaired)
    monkeypatch.setattr(namespaces, "require_present", lambda lake: None)  # a lake with tables
    assert main(["repair"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cleaned/orders: NOT healed: first\\nsecond \\x1b[2J"
    assert lines[1:] == ["repaired 0 tables; 1 table NOT healed (above)"]
