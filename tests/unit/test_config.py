"""aggregates.yaml and cookbooks.yaml specs: good entries load, bad ones are named and skipped."""

from __future__ import annotations

from pipelines.project.config import load_project
from tests.conftest import REPO


def write(home, aggregates: str = "[]", cookbooks: str = "[]"):
    (home / "include" / "aggregates.yaml").write_text(aggregates)
    (home / "include" / "cookbooks.yaml").write_text(cookbooks)
    return load_project(home / "include")


def test_shipped_config_is_valid():
    project = load_project(REPO / "include")
    assert project.problems == ()
    assert [d.name for d in project.datasets] == ["orders", "customers", "events", "payments"]
    assert project.cookbook("e2e_test") is not None


def test_aggregate_spec_parsed(home):
    project = write(
        home,
        """
- name: revenue
  dataset: orders
  group_by: [status]
  metrics: {n: count, total: "sum:amount", buyers: "count_distinct:customer_id"}
""",
    )
    (spec,) = project.aggregates
    assert spec.metric_map == {
        "n": ("count", None),
        "total": ("sum", "amount"),
        "buyers": ("count_distinct", "customer_id"),
    }
    assert spec.columns == {"status", "amount", "customer_id"}


def test_bad_aggregates_are_reported_and_skipped(home):
    project = write(
        home,
        """
- name: ok_one
  dataset: orders
  metrics: {n: count}
- name: ghost
  dataset: nope
  metrics: {n: count}
- name: badfn
  dataset: orders
  metrics: {n: "median:amount"}
- name: nocol
  dataset: orders
  metrics: {n: "sum"}
- name: orders
  dataset: orders
  metrics: {n: count}
""",
    )
    assert [a.name for a in project.aggregates] == ["ok_one"]
    text = [str(p) for p in project.problems]
    assert "aggregates.yaml: ghost: dataset 'nope' is not a valid dataset of registry.csv" in text
    assert any(
        t.startswith("aggregates.yaml: badfn: metric n: 'median:amount': function") for t in text
    )
    assert "aggregates.yaml: nocol: metric n: 'sum' needs a column, as 'sum:column'" in text
    assert "aggregates.yaml: orders: name 'orders' is already used by a dataset" in text


def test_cookbook_with_unknown_step_skips_only_that_cookbook(home):
    project = write(
        home,
        cookbooks="""
- name: good
  steps: [orders, customers]
- name: bad
  steps: [orders, nothing_here]
- name: nested
  steps: [good, {name: events, after: [good]}]
""",
    )
    assert [c.name for c in project.cookbooks] == ["good", "nested"]
    assert [str(p) for p in project.problems] == [
        "cookbooks.yaml: bad: unknown dataset, workflow or cookbook: 'nothing_here'"
    ]
    nested = project.cookbook("nested")
    assert nested.children[1].after == ("good",)


def test_a_cookbook_naming_a_skipped_cookbook_stays_and_says_why_when_it_runs(home):
    """``outer`` names ``inner``, which was skipped: ``outer`` itself still loads (and lists),
    and what resolves its children gets the one-line error a name of a skipped entry gets."""
    import pytest

    from pipelines.exceptions import UnknownNameError

    project = write(
        home,
        cookbooks="""
- name: inner
  steps: [orders, nothing_here]
- name: outer
  steps: [customers, inner]
""",
    )
    assert [c.name for c in project.cookbooks] == ["outer"]
    outer = project.require("outer")
    assert outer.dag_id("ns") == "ns__cookbook__outer"
    with pytest.raises(UnknownNameError, match=r"^'inner' is not valid, so it was skipped: "):
        outer.children  # noqa: B018


def test_yaml_syntax_error_names_the_place(home):
    project = write(home, aggregates="- name: x\n  metrics: {n: count\n")
    assert str(project.problems[0]).startswith("aggregates.yaml: yaml: cannot parse (line")


def test_a_name_ending_in_a_newline_is_refused_in_every_file(home):
    """``^...$`` with ``match`` lets a trailing newline through (a lake folder ``agg\\n``, a DAG
    id across two lines): every name is checked whole."""
    (home / "include" / "workflows.yaml").write_text(
        '- name: "features\\n"\n  function: features:customer_features\n'
        "  inputs: {orders: {table: orders}}\n"
        "- name: windowed\n  function: features:customer_features\n"
        '  inputs: {"orders\\n": {table: orders}, customers: {table: customers, window: "3d\\n"}}\n'
    )
    project = write(
        home,
        '- name: "agg\\n"\n  dataset: orders\n  metrics: {n: count}\n'
        '- name: by_status\n  dataset: orders\n  group_by: ["status\\n"]\n  metrics: {n: count}\n',
        '- name: "book\\n"\n  steps: [orders]\n',
    )
    said = "\n".join(map(str, project.problems))
    for name in ("'features\\n'", "'agg\\n'", "'book\\n'", "'orders\\n'", "'3d\\n'"):
        assert name in said, (name, said)
    assert "by_status" in said  # its group_by column
    assert not project.workflows and not project.aggregates and not project.cookbooks
