"""workflows.yaml: every valid and invalid kind of entry, the window arithmetic, and the test
helper on three-row frames."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from pipelines.common.partitions import Layer
from pipelines.common.windows import Window
from pipelines.exceptions import PipelinesError
from pipelines.project.config import Kind, load_project
from pipelines.steps.output import Output, WorkflowError
from pipelines.testing import run_workflow


def write(home, text: str, module: str | None = None) -> None:
    (home / "include" / "workflows.yaml").write_text(textwrap.dedent(text))
    if module is not None:
        (home / "include" / "workflows" / "probe.py").write_text(textwrap.dedent(module))


def problems(home) -> list[str]:
    return [str(p) for p in load_project().problems if p.file == "workflows.yaml"]


def test_the_shipped_workflows_are_valid(home):
    project = load_project()
    assert [w.name for w in project.workflows] == ["customer_features", "train_refund_model"]
    features = project.workflow("customer_features")
    assert [(i.alias, i.table, i.layer, str(i.window)) for i in features.inputs] == [
        ("orders", "orders", Layer.CLEANED, "3d"),
        ("customers", "customers", Layer.CLEANED, "all"),
    ]
    assert features.primary_key == ("customer_id",) and features.owner == "ml-team"
    assert project.kind_of("train_refund_model") is Kind.WORKFLOW
    assert project.dag_id("train_refund_model") == "local__workflow__train_refund_model"


ENTRY = """
- name: probe
  function: probe:run
  inputs:
    {inputs}
{rest}"""


@pytest.mark.parametrize(
    ("inputs", "rest", "message"),
    [
        ("o: {table: nothing}", "", "input o: no dataset named 'nothing' for layer cleaned"),
        ("o: {table: orders, layer: aggregated}", "", "no aggregate named 'orders'"),
        ("o: {table: nope, layer: workflows}", "", "no workflow named 'nope'"),
        ("o: {table: orders, layer: quarantine}", "", "layer 'quarantine' must be one of"),
        ("o: {table: orders, window: 0d}", "", "window '0d' must be 1d (day D), Nd"),
        ("o: {table: orders, window: week}", "", "window 'week' must be"),
        ("o: {table: orders, window: 3}", "", "window 3 must be"),
        ("o: {table: customers, window: 3d}", "", "customers is a full dataset"),
        ("o: {table: orders, colour: red}", "", "input o: unknown keys: colour"),
        ("o: {table: orders}", "schedule: '@daily'", "every input must have window: all"),
        ("o: {table: orders, window: all}", "schedule: '@hourly'", "runs more than once a day"),
        ("o: {table: orders}", "primary_key: [1]", "primary_key must be a list of column"),
        ("o: {table: orders}", "params: [1, 2]", "params must be a mapping"),
        ("o: {table: orders}", "colour: red", "unknown keys: colour"),
    ],
)
def test_a_bad_entry_is_one_problem_naming_it_and_skips_only_itself(home, inputs, rest, message):
    write(home, ENTRY.format(inputs=inputs, rest=textwrap.indent(rest, "  ")))
    (home / "include" / "workflows.yaml").write_text(
        (home / "include" / "workflows.yaml").read_text()
        + "\n- name: fine\n  function: probe:run\n  inputs: {o: orders}\n"
    )
    found = problems(home)
    assert len(found) == 1 and found[0].startswith("workflows.yaml: probe: "), found
    assert message in found[0]
    assert [w.name for w in load_project().workflows] == ["fine"]


@pytest.mark.parametrize("module", ["signal", "json.tool", "pandas", "pipelines"])
def test_a_module_named_like_python_or_airflow_s_own_is_refused(home, module):
    write(home, f"- name: probe\n  function: '{module}:run'\n  inputs: {{o: orders}}\n")
    assert "is the name of a Python or Airflow module; rename the file" in problems(home)[0]


@pytest.mark.parametrize("function", ["probe", "probe:", "pro be:run", ":run", "a:b:c", 3])
def test_a_function_path_must_be_module_colon_callable(home, function):
    write(home, f"- name: probe\n  function: {function!r}\n  inputs: {{o: orders}}\n")
    assert "must be 'module:callable'" in problems(home)[0]


def test_cycles_between_workflows_name_the_loop_and_skip_what_reads_them(home):
    write(
        home,
        """
        - name: a
          function: probe:run
          inputs: {x: {table: b, layer: workflows}}
        - name: b
          function: probe:run
          inputs: {x: {table: a, layer: workflows}}
        - name: c
          function: probe:run
          inputs: {x: {table: a, layer: workflows}}
        """,
    )
    found = problems(home)
    assert "workflows.yaml: a: workflows depend on each other in a cycle: a -> b -> a" in found
    assert "workflows.yaml: b: workflows depend on each other in a cycle: b -> a -> b" in found
    assert any(p.startswith("workflows.yaml: c: input workflow 'a' was skipped") for p in found)
    assert load_project().workflows == ()


def test_a_workflow_may_read_a_workflow_declared_after_it(home):
    write(
        home,
        """
        - name: late_reader
          function: probe:run
          inputs: {x: {table: early, layer: workflows}}
        - name: early
          function: probe:run
          inputs: {o: orders}
        """,
    )
    assert problems(home) == []
    assert [w.name for w in load_project().workflows] == ["late_reader", "early"]


def test_params_are_kept_literally_never_rendered(home):
    write(
        home,
        """
        - name: probe
          function: probe:run
          inputs: {o: orders}
          params: {greeting: "{{ ds }} {% if x %}", nested: {n: 1}}
        """,
    )
    spec = load_project().workflow("probe")
    assert spec.params == {"greeting": "{{ ds }} {% if x %}", "nested": {"n": 1}}


def test_parsing_never_imports_the_function_but_validate_reports_it(home, capsys):
    write(
        home,
        """
        - name: probe
          function: probe:missing
          inputs: {o: orders}
        - name: broken
          function: nowhere:run
          inputs: {o: orders}
        """,
        module="import sys\nsys.modules['probe_was_imported'] = sys\ndef run(i, p, ds): ...\n",
    )
    import sys

    assert load_project().workflow("probe") is not None
    assert "probe_was_imported" not in sys.modules
    from pipelines.cli import main

    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "workflows.yaml: probe: function 'probe:missing': module probe has no function " in out
    assert "workflows.yaml: broken: function 'nowhere:run': no module nowhere" in out

    sys.modules.pop("probe_was_imported", None)


def test_a_syntax_error_names_the_file_line_and_column(home, capsys):
    write(home, "- name: probe\n  function: probe:run\n  inputs: {o: orders}\n", "def run(:\n")
    from pipelines.cli import main

    assert main(["validate"]) == 1
    assert "syntax error (probe.py, line 1, column" in capsys.readouterr().out


# -- windows ----------------------------------------------------------------------------------
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05", "2024-01-06"]


@pytest.mark.parametrize(
    ("window", "ds", "snapshots", "expected"),
    [
        ("1d", "2024-01-03", False, ["2024-01-03"]),
        ("1d", "2024-01-04", False, []),
        ("3d", "2024-01-03", False, ["2024-01-01", "2024-01-02", "2024-01-03"]),
        ("3d", "2024-01-05", False, ["2024-01-03", "2024-01-05"]),
        ("2d", "2024-01-01", False, ["2024-01-01"]),
        ("all", "2024-01-05", False, ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05"]),
        ("all", "2023-12-31", False, []),
        ("1d", "2024-01-04", True, []),
        ("1d", "2024-01-05", True, ["2024-01-05"]),
        ("all", "2024-01-04", True, ["2024-01-03"]),
        ("all", "2024-01-06", True, ["2024-01-06"]),
    ],
)
def test_a_window_selects_days_up_to_d_and_never_after(window, ds, snapshots, expected):
    assert Window.parse(window).select(DAYS, ds, snapshots=snapshots) == expected


def test_window_text_round_trips_and_defaults_to_one_day():
    assert Window.parse(None) == Window(1) and str(Window.parse("7d")) == "7d"
    assert Window.parse("all").days is None and str(Window.parse("all")) == "all"
    assert Window.parse("1d").days_of("2024-03-01") == ("2024-03-01", "2024-03-01")
    assert Window.parse("3d").days_of("2024-03-01") == ("2024-03-01", "2024-02-28")


# -- the test helper --------------------------------------------------------------------------
ORDERS = pd.DataFrame(
    {
        "dt": ["2024-01-01", "2024-01-02", "2024-01-02"],
        "order_id": [1, 2, 3],
        "customer_id": ["c1", "c1", "c2"],
        "status": ["placed", "refunded", "paid"],
        "amount": [10.0, 5.0, 7.5],
    }
)
CUSTOMERS = pd.DataFrame(
    {
        "ds": ["2024-01-02"] * 3,
        "customer_id": ["c1", "c2", "c3"],
        "country": ["NL", "DE", "FR"],
        "signup_date": pd.to_datetime(["2023-12-01", "2024-01-01", "2024-01-02"]),
    }
)


def test_run_workflow_calls_the_shipped_function_on_three_rows(home):
    out = run_workflow(
        "customer_features", inputs={"orders": ORDERS, "customers": CUSTOMERS}, ds="2024-01-02"
    )
    assert isinstance(out, Output) and out.metrics == {}
    rows = out.table.set_index("customer_id")
    assert rows.loc["c1", "orders"] == 2 and rows.loc["c1", "spend"] == 15.0
    assert bool(rows.loc["c1", "refunded"]) and not bool(rows.loc["c2", "refunded"])
    assert rows.loc["c3", "orders"] == 0 and rows.loc["c3", "tenure_days"] == 0
    trained = run_workflow("train_refund_model", {"features": out.table}, "2024-01-02")
    assert trained.metrics["training_rows"] == 3 and 0 <= trained.metrics["accuracy"] <= 1


PROBE = """
import pandas as pd
from pipelines import Output

def dupes(inputs, params, ds):
    return pd.DataFrame({"k": [1, 1], "v": [1, 2]})

def fails(inputs, params, ds):
    raise ValueError("no customers on " + ds)

def grouped(inputs, params, ds):
    return inputs["o"].groupby("customer_id").agg(k=("order_id", "count"))

def hidden(inputs, params, ds):
    return pd.DataFrame({"k": [1], "_score": [0.5]})

def mutates(inputs, params, ds):
    params.setdefault("seen", []).append(ds)
    return pd.DataFrame({"k": [len(params["seen"])]})

def listed(inputs, params, ds):
    return [1, 2, 3]

def nested(inputs, params, ds):
    return Output(table=pd.DataFrame({"k": [1]}), metrics={"bad": {"a": 1}})

def echo(inputs, params, ds):
    return Output(table=pd.DataFrame({"p": [params["text"]]}), metrics={"n": len(inputs["o"])})
"""


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("dupes", "probe: primary_key k: 1 duplicate and 0 null keys in the result"),
        (
            "fails",
            "probe: probe:fails raised ValueError: no customers on 2024-01-02 (probe.py, line",
        ),
        ("listed", "probe: returned list; return a pandas DataFrame"),
        ("hidden", "probe: column '_score' starts with '_', which the lake keeps for its own"),
        ("nested", "probe: metric 'bad' is dict; a metric is a number or short text"),
    ],
)
def test_run_workflow_applies_the_checks_of_a_real_run(home, function, message):
    write(
        home,
        f"- name: probe\n  function: probe:{function}\n  inputs: {{o: orders}}\n"
        "  primary_key: [k]\n",
        PROBE,
    )

    with pytest.raises(WorkflowError) as caught:
        run_workflow("probe", {"o": ORDERS}, "2024-01-02")
    assert str(caught.value).startswith(message)


def test_run_workflow_passes_params_as_written_and_checks_the_aliases(home):
    write(
        home,
        "- name: probe\n  function: probe:echo\n  inputs: {o: orders}\n"
        "  params: {text: '{{ ds }}'}\n",
        PROBE,
    )

    out = run_workflow("probe", {"o": ORDERS}, "2024-01-02")
    assert out.table["p"].tolist() == ["{{ ds }}"] and out.metrics == {"n": 3}
    with pytest.raises(
        PipelinesError, match="inputs must be exactly o; missing: o; not declared: x"
    ):
        run_workflow("probe", {"x": ORDERS}, "2024-01-02")


def test_an_edited_module_is_imported_again_in_the_same_process(home):
    import os

    write(home, "- name: probe\n  function: probe:echo\n  inputs: {o: orders}\n", PROBE)
    params = {"text": "first"}
    assert run_workflow("probe", {"o": ORDERS}, "2024-01-02", params=params).metrics == {"n": 3}
    module = home / "include" / "workflows" / "probe.py"
    module.write_text(PROBE.replace('metrics={"n": len(inputs["o"])}', 'metrics={"n": -1}'))
    later = module.stat().st_mtime + 2
    os.utime(module, (later, later))
    assert run_workflow("probe", {"o": ORDERS}, "2024-01-02", params=params).metrics == {"n": -1}


def test_a_named_index_is_kept_as_columns_and_params_are_never_shared(home):
    write(
        home,
        "- name: probe\n  function: probe:grouped\n  inputs: {o: orders}\n"
        "- name: again\n  function: probe:mutates\n  inputs: {o: orders}\n",
        PROBE,
    )
    out = run_workflow("probe", {"o": ORDERS}, "2024-01-02")
    assert list(out.table.columns) == ["customer_id", "k"] and out.table["k"].tolist() == [2, 1]
    for _ in range(2):  # the function's change to its params does not reach the next run
        assert run_workflow("again", {"o": ORDERS}, "2024-01-02").table["k"].tolist() == [1]
    assert load_project().workflow("again").params == {}
