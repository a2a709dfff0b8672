"""Hostile text never acts on the terminal nor becomes markup: issue 26, cases 6 and 7.

Cell values, metric values, error messages, sources, a registry description and workflow params
keys holding escape sequences (``ESC]0;…BEL`` retitles a terminal, ``ESC[2J`` clears it), a C1
CSI, BEL, DEL, ``\\r``, ``\\n``, tabs, a right-to-left override, ``<img …>`` and ``{{ … }}`` go
through the real ``pipelines`` command (``main([...])``, its output captured) and through the
DAG factory's ``doc_md``. Each surface and value is a case (``escape_cases``); one whose raw
control text, bare HTML or unescaped Jinja reached the output counts in ``escapes_escaped`` and
fails its test. What a value is expected to look like is computed here, independently of the
package: Python's ``repr`` of it (the values hold no quote or backslash).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import yaml

from pipelines.cli import main
from tests.conftest import write_registry

DAY = "2024-01-01"
HOSTILE = [
    "\x1b]0;pwned\x07",  # OSC: sets the terminal's title, ended by BEL
    "\x1b[2J\x1b[H",  # CSI: clears the screen, cursor home
    "\x9b31mred",  # the same CSI as the one C1 byte
    "line1\nline2",
    "car\rriage",
    "tab\there",
    "bell\x07del\x7f",
    "\u202eevil.exe",  # right-to-left override
]
PLAIN = "é 中文 naïve"  # must print as it is
KEY = "k\x1b[31m"  # a primary key value that is an escape sequence
IMG = "<img src=x onerror=alert(1)>"
JINJA = "{{ conn.pipelines_lake.password }}{% raw %}"
DESCRIPTION = f"first line \x1b]0;t\x07\nsecond | line `x` {IMG} {JINJA}"
PARAMS = {f"k`{IMG}": 1, JINJA: 2, "a\nb": 3}
# what a terminal acts on: C0 but the line feed that ends each line, DEL, C1, line separators,
# bidi marks and overrides
RAW = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
MARKUP = re.compile(r"<\s*[A-Za-z/!?]|\{\{|\{%|\{#")


def shown(value: str) -> str:
    """How a value must appear on the terminal: as Python writes it, without the quotes."""
    return repr(value)[1:-1]


class Cases:
    """Counts each case in the reliability figures; a case that escaped fails the test at its
    end (after every case of it was counted)."""

    def __init__(self, figures):
        self.figures, self.escaped = figures, []

    def count(self, name: str, problem: str | None) -> None:
        self.figures["escape_cases"] += 1
        if problem:
            self.figures["escapes_escaped"] += 1
            self.escaped.append(f"{name}: {problem}")

    def check(self, name: str, text: str, *, wanted: tuple[str, ...] = ()) -> None:
        """Terminal output: no raw control character, each ``wanted`` text shown."""
        raw = sorted({repr(c) for c in RAW.findall(text)})
        missing = [w for w in wanted if w not in text]
        self.count(name, f"raw {raw}, not shown: {missing}" if raw or missing else None)

    def markup(self, name: str, doc: str) -> None:
        """A generated doc: no raw control character, no HTML tag, no Jinja."""
        found = RAW.findall(doc) + MARKUP.findall(doc)
        self.count(name, f"{found!r} in {doc!r}" if found else None)

    def verdict(self) -> None:
        assert not self.escaped, "\n".join(self.escaped)


@pytest.fixture
def cases(figures):
    return Cases(figures)


@pytest.fixture
def hostile(home):
    """One full dataset ``notes`` whose cells are the hostile values (its description hostile
    too), and two workflows over it: ``echo`` reports them as metrics, ``boom`` raises one."""
    write_registry(
        home,
        "dataset,source,format,primary_key,ingestion,schedule,start_date,owner,description\n"
        f"notes,notes/notes_{{ds}}.csv,csv,id,full,@daily,{DAY},me,{quoted(DESCRIPTION)}\n",
    )
    rows = [("id", "note"), (KEY, PLAIN), *((f"k{i}", v) for i, v in enumerate(HOSTILE))]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)  # every \r and \n inside a quoted field
    (home / "include" / "notes").mkdir()
    (home / "include" / "notes" / f"notes_{DAY}.csv").write_text(buffer.getvalue())
    workflow = {"inputs": {"notes": {"table": "notes"}}, "primary_key": ["id"]}
    entries = [
        {"name": "echo", "function": "hostile:echo", "params": PARAMS, **workflow},
        {"name": "boom", "function": "hostile:boom", **workflow},
    ]
    (home / "include" / "workflows.yaml").write_text(yaml.safe_dump(entries))
    (home / "include" / "workflows" / "hostile.py").write_text(
        textwrap.dedent(
            f"""
            from pipelines import Output

            HOSTILE = {HOSTILE!r}


            def echo(inputs, params, ds):
                metrics = {{f"m{{i}}": v for i, v in enumerate(HOSTILE)}}
                return Output(table=inputs["notes"][["id", "note"]], metrics=metrics)


            def boom(inputs, params, ds):
                raise ValueError(HOSTILE[0] + " and " + HOSTILE[3])
            """
        )
    )
    return home


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def output(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_read_shows_every_hostile_cell_escaped_and_json_exact(hostile, capsys, cases):
    from pipelines.steps.dataset import run_steps

    run_steps("notes", DAY)
    capsys.readouterr()
    code, out, err = output(capsys, ["read", "notes"])
    assert code == 0 and err.strip() == f"({len(HOSTILE) + 1} rows)"
    assert len(out.splitlines()) == len(HOSTILE) + 2  # the header, a line per row
    for value in [*HOSTILE, KEY]:
        cases.check(f"read {value!r}", out, wanted=(shown(value),))
    cases.check("read: plain text as it is", out, wanted=(PLAIN,))
    code, out, _ = output(capsys, ["read", "notes", "--format", "json"])
    records = [json.loads(line) for line in out.splitlines()]
    cases.check("read --format json", out)
    assert code == 0 and {r["note"] for r in records} == {*HOSTILE, PLAIN}  # exact values
    assert {r["id"] for r in records} >= {KEY}
    cases.verdict()


def test_run_lines_show_text_metrics_and_errors_on_one_line(hostile, capsys, cases):
    from pipelines.steps.dataset import run_steps

    run_steps("notes", DAY)
    capsys.readouterr()
    code, out, _ = output(capsys, ["run", "echo", "--date", DAY])
    [line] = [line for line in out.splitlines() if line.startswith("ok ")]
    assert code == 0
    for i, value in enumerate(HOSTILE):
        cases.check(f"run line, metric {value!r}", line, wanted=(f"m{i} {shown(value)}",))
    cases.check("run command output", out)
    # a failed run, through the real command in its own process: what a terminal gets (here
    # the tests' own Airflow log level would add the task's log, which the command keeps quiet)
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__LOGGING__LOGGING_LEVEL"}
    entry = "from pipelines.cli import entry; entry()"  # what the console script runs
    command = [sys.executable, "-c", entry, "run", "boom", "--date", DAY]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    [line] = [line for line in done.stdout.splitlines() if line.startswith("FAIL ")]
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    wanted = (f"{shown(HOSTILE[0])} and {shown(HOSTILE[3])}",)
    cases.check("failed run line, error", line, wanted=wanted)
    cases.check("failed run output", done.stdout + done.stderr)
    cases.verdict()


def test_plan_and_validate_lines_escape_hostile_config(hostile, capsys, cases):
    from pipelines.steps.dataset import run_steps

    run_steps("notes", DAY)
    output(capsys, ["plan", "--apply"])  # records the project's config
    registry = hostile / "include" / "registry.csv"
    source = f"notes/{HOSTILE[0]}_{{ds}}.csv"
    registry.write_text(registry.read_text().replace("notes/notes_{ds}.csv", quoted(source)))
    code, out, _ = output(capsys, ["plan"])
    assert code == 2
    cases.check("plan: a changed source", out, wanted=(shown(source),))
    registry.write_text(registry.read_text() + f"bad{HOSTILE[1]},x,csv,id,full,@daily,{DAY},,\n")
    code, out, err = output(capsys, ["validate"])
    assert code == 1 and "bad" in out
    cases.check("validate: a bad name", out + err)
    cases.verdict()


def test_namespace_diff_shows_hostile_keys_escaped(hostile, capsys, cases, monkeypatch):
    from pipelines.lake.tables import commit_with_retry
    from pipelines.project.config import load_project
    from pipelines.steps.dataset import run_steps

    monkeypatch.setenv("PIPELINES_NAMESPACE", "serving")
    run_steps("notes", DAY)
    monkeypatch.setenv("PIPELINES_NAMESPACE", "exp")  # research: serving's raw, in place
    run_steps("notes", DAY)
    project = load_project()
    cleaned = project.lake().cleaned(project.dataset("notes"))

    def edit(base):
        frame = cleaned.read_partition(DAY, base)
        frame = frame[frame["id"] != KEY].copy()  # a row only serving has
        frame.loc[frame["id"] == "k0", "note"] = HOSTILE[1]  # and one exp changed
        return cleaned.commit(base, {DAY: frame})

    commit_with_retry(cleaned, edit)
    capsys.readouterr()
    code, out, _ = output(capsys, ["namespace", "diff", "serving", "--table", "notes"])
    assert "e.g. only in serving" in out
    cases.check("namespace diff: a key only in serving", out, wanted=(f"id={shown(KEY)}",))
    code, out, _ = output(capsys, ["namespace", "diff", "serving", "--json"])
    cases.check("namespace diff --json", out)
    [cleaned_diff] = [t for t in json.loads(out)["tables"] if t["layer"] == "cleaned"]
    assert cleaned_diff["examples"]["only_right"][0]["key"] == {"id": KEY}  # the exact value
    cases.verdict()


def test_dag_docs_hold_no_raw_control_text_html_or_jinja(hostile, cases):
    from pipelines.wiring.factory import build_dags

    dags = build_dags()
    for dag_id in ("local__notes", "local__workflow__echo", "local__workflow__boom"):
        dag = dags[dag_id]
        cases.markup(f"{dag_id} doc_md", dag.doc_md)
        for task in dag.tasks:
            cases.markup(f"{dag_id}.{task.task_id} doc_md", task.doc_md or "")
    doc = dags["local__notes"].doc_md
    table = doc.split("|---|---|\n")[1].splitlines()
    rows = [r for r in table if r.startswith("| `description` |")]
    whole = len(rows) == 1 and rows[0].count(" | ") == 1 and rows[0].endswith(" |")
    cases.count("registry doc: the description one row of two cells", None if whole else table)
    params = dags["local__workflow__echo"].doc_md.split("params: ")[1].split("; key:")[0]
    assert params.count(", ") == len(PARAMS) - 1  # each key shown, none ends another's span
    cases.verdict()
