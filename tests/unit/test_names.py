"""Every public entry point that takes a name answers a name of the wrong kind alike: one line
saying what the name is, what was wanted and which names of that kind exist; never a traceback."""

from __future__ import annotations

import pytest

import pipelines
from pipelines.cli import main
from pipelines.exceptions import UnknownNameError
from pipelines.project.config import RUNNABLE, load_project

DATASETS = "known: orders, customers, events, payments"
WORKFLOWS = "customer_features, train_refund_model"
COOKBOOKS = "e2e_test, refund_model"
AGGREGATE = "'daily_revenue' is an aggregate (aggregates.yaml)"
COOKBOOK = "'e2e_test' is a cookbook (cookbooks.yaml)"
DATASET = "'orders' is a dataset (registry.csv)"


def _run_steps(name):
    from pipelines.steps.dataset import run_steps

    run_steps(name, "2024-01-02")


def _submit(name):
    pipelines.Client().submit(name, "2024-01-02")


def _run_cookbook(name):
    from pipelines.runs.cookbook import run_cookbook

    run_cookbook(load_project(), name, "2024-01-02")


def _verify(name):
    from pipelines.inspection.cookbook_checks import verify
    from pipelines.lake.lake import Lake

    verify(load_project(), name, Lake.from_env())


def _output_keys(name):
    from pipelines.client import output_keys

    output_keys(load_project(), name)


def _read_aggregated(name):
    pipelines.read(name, "aggregated")


def _dag_id(name):
    load_project().dag_id(name)


CASES = [
    # entry point, a name of the wrong kind, the message
    (_run_steps, "daily_revenue", f"{AGGREGATE}, not a dataset; {DATASETS}"),
    (_run_steps, "e2e_test", f"{COOKBOOK}, not a dataset; {DATASETS}"),
    (pipelines.read, "daily_revenue", f"{AGGREGATE}, not a dataset; {DATASETS}"),
    (pipelines.read, "e2e_test", f"{COOKBOOK}, not a dataset; {DATASETS}"),
    (
        _read_aggregated,
        "e2e_test",
        f"{COOKBOOK}, not an aggregate; known: daily_revenue, customers_by_country",
    ),
    (
        _read_aggregated,
        "orders",
        f"{DATASET}, not an aggregate; known: daily_revenue, customers_by_country",
    ),
    (
        _submit,
        "daily_revenue",
        f"{AGGREGATE}, not a dataset, workflow or cookbook; {DATASETS}, {WORKFLOWS}, {COOKBOOKS}",
    ),
    (
        _output_keys,
        "daily_revenue",
        f"{AGGREGATE}, not a dataset, workflow or cookbook; {DATASETS}, {WORKFLOWS}, {COOKBOOKS}",
    ),
    (
        _dag_id,
        "daily_revenue",
        f"{AGGREGATE}, not a dataset, workflow or cookbook; {DATASETS}, {WORKFLOWS}, {COOKBOOKS}",
    ),
    (_run_cookbook, "daily_revenue", f"{AGGREGATE}, not a cookbook; known: {COOKBOOKS}"),
    (_run_cookbook, "orders", f"{DATASET}, not a cookbook; known: {COOKBOOKS}"),
    (_verify, "daily_revenue", f"{AGGREGATE}, not a cookbook; known: {COOKBOOKS}"),
    (_verify, "orders", f"{DATASET}, not a cookbook; known: {COOKBOOKS}"),
]


@pytest.mark.parametrize(
    ("call", "name", "message"),
    CASES,
    ids=[f"{call.__name__.strip('_')}-{name}" for call, name, _ in CASES],
)
def test_a_name_of_the_wrong_kind_is_one_clear_error(home, airflow_db, call, name, message):
    with pytest.raises(UnknownNameError) as caught:
        call(name)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "daily_revenue", "--date", "2024-01-02"],
            f"{AGGREGATE}, not a dataset, workflow or cookbook",
        ),
        (
            ["backfill", "daily_revenue", "--start", "2024-01-01", "--end", "2024-01-02"],
            f"{AGGREGATE}, not a dataset, workflow or cookbook",
        ),
        (["read", "e2e_test"], f"{COOKBOOK}, not a dataset"),
        (["read", "daily_revenue", "--layer", "raw"], f"{AGGREGATE}, not a dataset"),
        (["read", "orders", "--layer", "aggregated"], f"{DATASET}, not an aggregate"),
    ],
)
def test_the_command_prints_the_same_error_without_a_traceback(
    home, airflow_db, capsys, argv, message
):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_unknown_name_says_where_it_was_looked_for_and_what_exists(home):
    with pytest.raises(UnknownNameError) as caught:
        load_project().require("nope", *RUNNABLE)
    assert str(caught.value) == (
        "no dataset, workflow or cookbook named 'nope' in registry.csv, workflows.yaml or "
        f"cookbooks.yaml; {DATASETS}, {WORKFLOWS}, {COOKBOOKS}"
    )
