"""What the commands print is safe for a terminal: a control character in a value (an escape
sequence, a newline, a bidi override) is shown escaped, once, in every line, table and JSON."""

from __future__ import annotations

import ast
import json

import pandas as pd
import pytest

from pipelines.cli.text import json_text, say, table
from pipelines.common.control_chars import escaped
from tests.conftest import REPO

HOSTILE = {
    "\x1b]0;pwned\x07": "\\x1b]0;pwned\\x07",  # OSC: retitles the terminal, ended by BEL
    "\x1b[2J\x1b[H": "\\x1b[2J\\x1b[H",  # CSI: clears the screen
    "\x9b2J": "\\x9b2J",  # the same CSI as one C1 byte
    "a\nb": "a\\nb",
    "a\r\tb": "a\\r\\tb",
    "del\x7f": "del\\x7f",
    "\u202eevil": "\\u202eevil",  # right-to-left override
    "\u2066x\u2069": "\\u2066x\\u2069",
    "one\u2028two": "one\\u2028two",
}
PLAIN = ["é", "中文", "naïve café", "👩\u200d💻", "a\\b", "tab-free, ascii ~!@#$%^&*()"]


@pytest.mark.parametrize("raw", HOSTILE)
def test_a_control_character_is_shown_as_its_escape(raw):
    assert escaped(raw) == HOSTILE[raw]


@pytest.mark.parametrize("text", PLAIN)
def test_other_text_is_shown_as_it_is(text):
    assert escaped(text) == text


def test_escaping_twice_changes_nothing_more():
    for raw in HOSTILE:
        assert escaped(escaped(raw)) == escaped(raw)


def test_a_line_stays_one_line_and_a_table_one_row_per_row(capsys):
    say("metric note a\nb \x1b[2J")
    table([("NAME", "VALUE"), ("x\x1b]0;t\x07", "a\nb"), ("é", "中文")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "metric note a\\nb \\x1b[2J"
    assert len(lines) == 4
    assert lines[2] == "x\\x1b]0;t\\x07  a\\nb"  # columns aligned on the escaped width
    assert lines[3].startswith("é") and lines[3].endswith("中文")


RAW = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), 0x202E, 0x2066)} - {"\n"}


def test_json_text_is_the_same_json_with_nothing_raw():
    values = [*HOSTILE, *PLAIN]
    dumped = json_text(json.dumps(values, indent=2))
    assert not set(dumped) & RAW and json.loads(dumped) == values
    lines = json_text(pd.DataFrame({"v": values}).to_json(orient="records", lines=True))
    assert not set(lines) & RAW  # pandas writes DEL raw: json_text does not
    assert [json.loads(line)["v"] for line in lines.splitlines()] == values


def test_read_s_table_escapes_cells_and_column_names():
    from pipelines.cli.lake import _escaped_cells

    frame = pd.DataFrame({"note\x1b": ["\x1b[2J", "é", None], "n": [1, 2, 3]})
    shown = _escaped_cells(frame)
    assert list(shown.columns) == ["note\\x1b", "n"]
    assert shown.iloc[:2, 0].tolist() == ["\\x1b[2J", "é"] and shown["n"].tolist() == [1, 2, 3]
    assert "\x1b" not in shown.to_string(index=False)


def test_a_run_line_holds_its_text_metrics_and_error_on_one_line(capsys):
    from pipelines.cli.runs import Progress
    from pipelines.runs.local import RunOutcome
    from pipelines.wiring.operators import WorkflowOperator

    results = {WorkflowOperator.task_path(): {"rows": 2, "metrics": {"note": "a\nb\x1b[2J"}}}
    progress = Progress("wf", "local__workflow__wf")
    progress.show(RunOutcome("local__workflow__wf", "2024-01-02", "success", 1.0, results=results))
    failed = RunOutcome(
        "local__workflow__wf", "2024-01-03", "failed", 1.0, "work.run", "bad \x1b]0;x\x07\nline"
    )
    progress.show(failed)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "ok   local__workflow__wf 2024-01-02 (1.0s): 2 rows, note a\\nb\\x1b[2J",
        "FAIL local__workflow__wf 2024-01-03 (1.0s): work.run failed: bad \\x1b]0;x\\x07\\nline",
    ]


# the prints that do not go through cli.text, each for its reason: `env`'s exports are for
# `eval` (exact), `read --format json`'s lines are json_text, a remote run's state line is
# rewritten in place with "\r" (its text escaped)
UNSAFE_PRINTS_ALLOWED = {"project.py": 1, "lake.py": 1, "remote.py": 2}


def test_every_command_prints_through_the_one_owner():
    for path in sorted((REPO / "plugins" / "pipelines" / "cli").glob("*.py")):
        if path.name == "text.py":
            continue
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
        ]
        assert len(calls) == UNSAFE_PRINTS_ALLOWED.get(path.name, 0), path.name
