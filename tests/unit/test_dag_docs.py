"""The docs the DAGs carry (doc_md) show every user string literally: one table cell and one
line per value, no HTML, no Jinja, whatever the registry, workflows.yaml or a name holds."""

from __future__ import annotations

import re

import pytest

from pipelines.project.registry import parse_registry
from pipelines.project.workflows import parse_workflow
from pipelines.wiring.docs import code, text
from pipelines.wiring.factory import registry_doc, workflow_doc

HEADER = "dataset,source,format,primary_key,ingestion,schedule,start_date,owner,description"
IMG = "<img src=x onerror=alert(1)>"
JINJA = "{{ conn.pipelines_lake.password }} {% raw %}"


def unsafe(doc: str) -> list[str]:
    """What must never be in a doc: HTML, Jinja, a raw control character."""
    found = re.findall(r"<\s*[a-zA-Z/!]|\{\{|\{%|\{#", doc)
    found += [c for c in doc if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0]
    return found


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Orders placed in the web shop", "Orders placed in the web shop"),
        ("é 中文", "é 中文"),
        ("a\nb", "a\\\\nb"),
        ("a | b", "a \\| b"),
        ("`x`", "\\`x\\`"),
        ("<b>&", "&#60;b&#62;&#38;"),
        ("{{ x }}", "&#123;&#123; x &#125;&#125;"),
        ("C:\\data", "C:\\\\data"),
        ("\x1b[2J", "\\\\x1b\\[2J"),
        ("", "–"),
    ],
)
def test_text_is_literal_markdown_in_one_cell(value, shown):
    assert text(value) == shown


def test_code_is_a_code_span_only_when_it_can_hold_the_value_literally():
    assert code("orders") == "`orders`"
    assert code("sample/orders/orders_{ds}.csv") == "`sample/orders/orders_{ds}.csv`"
    assert code("a`b") == text("a`b") == "a\\`b"
    assert code("a|b") == "a\\|b"
    assert code("{{ x }}") == text("{{ x }}")
    assert code(IMG) == text(IMG) and "<" not in code(IMG)


def test_a_description_with_a_newline_stays_in_its_table_cell():
    description = f'"first line\nsecond | line `x` {IMG} {JINJA}"'
    registry = parse_registry(
        f"{HEADER}\nd,in/{{ds}}.csv,csv,id,full,@daily,2024-01-01,me,{description}\n"
    )
    [dataset] = registry.datasets
    assert "\n" in dataset.description
    doc = registry_doc(dataset)
    table = doc.split("|---|---|\n")[1].splitlines()
    assert len(table) == len(dataset.row)  # one line per registry column
    assert all(re.fullmatch(r"\| .* \| .* \|", row) for row in table)
    [row] = [r for r in table if r.startswith("| `description` |")]
    assert row.count(" | ") == 1  # the value's pipe is escaped: still two cells
    assert unsafe(doc) == []


def test_a_params_key_with_a_backtick_and_html_is_no_html_in_the_workflow_doc():
    problems: list[str] = []
    entry = {
        "function": "probe:run",
        "inputs": {"orders": {"table": "orders"}},
        "params": {f"k`{IMG}": 1, JINJA: 2, "plain": 3},
        "primary_key": ["id"],
    }
    spec = parse_workflow(entry, "wf", problems.append)
    assert problems == [] and spec is not None
    doc = workflow_doc(spec)
    assert unsafe(doc) == []
    assert "`plain`" in doc and "k\\`&#60;img src=x onerror=alert(1)&#62;" in doc
