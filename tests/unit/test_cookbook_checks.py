"""cookbooks.yaml ``checks``: a key must be a dataset or workflow the cookbook runs, a bound key
must be one the checks know; each mistake is one line naming the cookbook and the key, with a
suggestion when a name is close, and skips only that cookbook."""

from __future__ import annotations

import pytest

from pipelines.exceptions import UnknownNameError
from pipelines.project.config import load_project

GOOD = """
- name: good
  steps: [orders, customers, customer_features, train_refund_model]
  checks:
    orders: {min_rows: 3}
    train_refund_model: {min_rows: 0, metrics: {accuracy: {min: 0.5, max: 1}, rows: {max: 9}}}
"""


def load(home, checks: str, steps: str = "[orders, train_refund_model]", extra: str = ""):
    """The project with ``good`` and a cookbook ``bad`` (its ``steps`` and ``checks``)."""
    text = f"{GOOD}\n- name: bad\n  steps: {steps}\n  checks: {checks}\n{extra}"
    (home / "include" / "cookbooks.yaml").write_text(text)
    return load_project(home / "include")


def lines(project) -> list[str]:
    return [str(p) for p in project.problems]


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        (
            "{orders: {min_row: 3}}",
            "checks: orders: unknown key 'min_row'; did you mean 'min_rows'? "
            "known: min_rows, metrics",
        ),
        (
            "{train_refund_model: {metric: {accuracy: {min: 0.5}}}}",
            "checks: train_refund_model: unknown key 'metric'; did you mean 'metrics'? "
            "known: min_rows, metrics",
        ),
        (
            "{train_refund_model: {metrics: {accuracy: {minimum: 0.5}}}}",
            "checks: train_refund_model: metrics: accuracy: unknown key 'minimum'; "
            "did you mean 'min'? known: min, max",
        ),
        (
            "{train_refund_model: {metrics: {accuracy: {mx: 1}}}}",
            "checks: train_refund_model: metrics: accuracy: unknown key 'mx'; "
            "did you mean 'max'? known: min, max",
        ),
        (
            "{orders: {limit: 3}}",
            "checks: orders: unknown key 'limit'; known: min_rows, metrics",
        ),
        (
            "{orders: {min_rows: -1}}",
            "checks: orders: min_rows must be a whole number >= 0, got -1",
        ),
        (
            "{orders: {min_rows: true}}",
            "checks: orders: min_rows must be a whole number >= 0, got True",
        ),
        (
            "{train_refund_model: {metrics: {accuracy: {min: high}}}}",
            "checks: train_refund_model: metrics: accuracy: min must be a number, got 'high'",
        ),
        (
            "{train_refund_model: {metrics: {accuracy: {min: 0.9, max: 0.5}}}}",
            "checks: train_refund_model: metrics: accuracy: min 0.9 is above max 0.5: "
            "no value passes",
        ),
        (
            "{train_refund_model: {metrics: {accuracy: {}}}}",
            "checks: train_refund_model: metrics: accuracy: must be {min: X, max: Y} "
            "(either or both), got {}",
        ),
        (
            "{train_refund_model: {metrics: [accuracy]}}",
            "checks: train_refund_model: metrics must map a metric to {min: X, max: Y}, "
            "got ['accuracy']",
        ),
        (
            "{orders: 3}",
            "checks: orders: must be a mapping of min_rows, metrics, got 3",
        ),
        (
            "[orders]",
            "checks must map a step to {min_rows: N} (a workflow also to "
            "metrics: {NAME: {min: X, max: Y}})",
        ),
    ],
)
def test_a_bad_bound_is_named_and_skips_only_its_cookbook(home, checks, expected):
    project = load(home, checks)
    assert lines(project) == [f"cookbooks.yaml: bad: {expected}"]
    assert [c.name for c in project.cookbooks] == ["good"]


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        (
            "{ordrs: {min_rows: 3}}",
            "checks: 'ordrs' is not a step of this cookbook; did you mean 'orders'?",
        ),
        (
            "{train_refund_modle: {min_rows: 3}}",
            "checks: 'train_refund_modle' is not a step of this cookbook; "
            "did you mean 'train_refund_model'?",
        ),
        (
            "{zzz: {min_rows: 3}}",
            "checks: 'zzz' is not a step of this cookbook; "
            "the steps it can check: orders, train_refund_model",
        ),
        (
            "{events: {min_rows: 3}}",
            "checks: 'events' is a dataset, not a step of this cookbook; "
            "the steps it can check: orders, train_refund_model",
        ),
        (
            "{daily_revenue: {min_rows: 3}}",
            "checks: 'daily_revenue' is an aggregate, not a step: the step is its dataset "
            "'orders' (a check on 'orders' bounds its cleaned rows; every aggregate of a dataset "
            "step must have rows)",
        ),
        (
            "{good: {min_rows: 3}}",
            "checks: 'good' is a cookbook, which has no rows or metrics: key each check by a "
            "dataset or workflow it runs",
        ),
        (
            "{orders: {metrics: {rows: {min: 1}}}}",
            "checks: orders: metrics: 'orders' is a dataset; only a workflow has metrics",
        ),
    ],
)
def test_a_check_on_what_is_not_a_step_is_named_and_skips_only_its_cookbook(home, checks, expected):
    project = load(home, checks)
    assert lines(project) == [f"cookbooks.yaml: bad: {expected}"]
    assert [c.name for c in project.cookbooks] == ["good"]
    with pytest.raises(UnknownNameError, match="^'bad' is not valid, so it was skipped: "):
        project.require("bad")


def test_every_mistake_of_a_cookbook_is_listed(home):
    project = load(home, "{orders: {min_row: 1}, ordrs: {min_rows: 1}}")
    assert lines(project) == [
        "cookbooks.yaml: bad: checks: orders: unknown key 'min_row'; did you mean 'min_rows'? "
        "known: min_rows, metrics",
    ]  # a bound is checked with its entry: the entry is skipped before its keys are looked up
    project = load(home, "{ordrs: {min_rows: 1}, daily_revenue: {min_rows: 1}}")
    assert lines(project) == [
        "cookbooks.yaml: bad: checks: 'ordrs' is not a step of this cookbook; "
        "did you mean 'orders'?",
        "cookbooks.yaml: bad: checks: 'daily_revenue' is an aggregate, not a step: the step is "
        "its dataset 'orders' (a check on 'orders' bounds its cleaned rows; every aggregate of a "
        "dataset step must have rows)",
    ]


def test_a_step_of_a_nested_cookbook_may_be_checked(home):
    """What verify checks is every dataset and workflow the cookbook runs, nested ones too."""
    project = load(
        home,
        "{train_refund_model: {min_rows: 4}, events: {min_rows: 1}}",
        steps="[good, events]",
    )
    assert lines(project) == []
    assert [c.name for c in project.cookbooks] == ["good", "bad"]
    assert project.cookbook("bad").checks["train_refund_model"] == {"min_rows": 4}


def test_under_a_skipped_nested_cookbook_only_what_is_no_step_anywhere_is_named(home):
    """``inner`` is skipped (an unknown step): what it would run is not known, so a check on a
    dataset stays (the line about ``inner`` says why ``bad`` fails when run); a typo is named."""
    extra = "- name: inner\n  steps: [events, nothing_here]\n"
    project = load(home, "{events: {min_rows: 1}}", steps="[inner, orders]", extra=extra)
    assert lines(project) == [
        "cookbooks.yaml: inner: unknown dataset, workflow or cookbook: 'nothing_here'"
    ]
    project = load(home, "{evnts: {min_rows: 1}}", steps="[inner, orders]", extra=extra)
    assert lines(project)[1:] == [
        "cookbooks.yaml: bad: checks: 'evnts' is not a step of this cookbook; "
        "the steps it can check: orders"
    ]


def test_validate_prints_the_line_and_fails(home, capsys):
    load(home, "{ordrs: {min_rows: 3}, orders: {min_rows: 3}}")
    from pipelines.cli import main

    assert main(["validate"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "cookbooks.yaml: bad: checks: 'ordrs' is not a step of this cookbook; "
        "did you mean 'orders'?"
    ]
    assert "1 cookbook valid; 1 problem" in captured.err
