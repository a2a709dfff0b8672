"""Every YAML config file goes through one reader (:mod:`pipelines.project.yaml_files`): a YAML
bomb (billion laughs through aliases, 20,000 nested ``[``, a value containing itself) is refused
in one line naming the file, the line and the column, in well under two seconds of CPU, with
libyaml's parser and with PyYAML's own; and no problem message quotes a huge value whole."""

from __future__ import annotations

import re
import time

import pytest
import yaml

from pipelines.cli import main
from pipelines.exceptions import MESSAGE_CHARS, ConfigError, Problem
from pipelines.project import yaml_files
from pipelines.project.config import load_project
from pipelines.project.namespaces import load_rules


def laughs(indent: int) -> str:
    """Nine anchors, each nine aliases of the one before: 9**9 "lol"s once expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for anchor, alias in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"{anchor}: &{anchor} [{', '.join([f'*{alias}'] * 9)}]")
    return "".join(" " * indent + line + "\n" for line in lines)


# each file's bomb, placed where today's parsers would format or walk the expanded value
LAUGHS = {
    "workflows.yaml": "- name: lols\n  function: features:customer_features\n"
    "  inputs: {orders: {table: orders}}\n  description:\n" + laughs(4) + "  params: *i\n",
    "aggregates.yaml": "- name: lols\n  dataset: orders\n  description:\n"
    + laughs(4)
    + "  metrics: {n: *i}\n",
    "cookbooks.yaml": "- name: lols\n  description:\n" + laughs(4) + "  steps: *i\n",
    "columns.yaml": "orders:\n  tests:\n" + laughs(4) + "    min_rows: *i\n",
    "namespaces.yaml": "research:\n  description:\n" + laughs(4) + "  upstream: *i\n",
}
FILES = list(LAUGHS)
DEEP_FLOW = "[" * 20_000 + "]" * 20_000 + "\n"
DEEP_BLOCK = "- " * 100 + "x\n"  # 100 nested block lists on one line
SELF = "- &a {name: loop, steps: [*a]}\n"  # a value that contains itself
# few values, long ones: 100 KB of text, 8 GB of it once expanded (under the values allowed)
STRINGS = (
    f'a0: &a0 "{"x" * 100_000}"\n'
    f"a1: &a1 [{', '.join(['*a0'] * 100)}]\n"
    f"a2: &a2 [{', '.join(['*a1'] * 100)}]\n"
    f"a3: [{', '.join(['*a2'] * 8)}]\n"
)

CASES = [
    ("laughs", None, r"aliases expand to more than the 100,000 values allowed"),
    ("strings", STRINGS, r"\(line 3, column 5\): aliases expand to more than the 10,000,000 c"),
    ("deep-flow", DEEP_FLOW, r"nest"),  # libyaml: "exceeded maximum nesting depth"
    ("deep-block", DEEP_BLOCK, r"nested deeper than 64 levels"),
    ("self", SELF, r"anchor"),  # PyYAML: "found recursive anchor"
]


@pytest.fixture(params=["libyaml", "python"])
def parser(request, monkeypatch):
    """The reader on libyaml's parser, and on PyYAML's own (where PyYAML has no libyaml)."""
    if request.param == "python":
        monkeypatch.delattr(yaml, "CSafeLoader")
    yaml_files._loader.cache_clear()
    yield request.param
    yaml_files._loader.cache_clear()


def problems_of(include) -> list[Problem]:
    """What loading the project (and its namespace rules) reports, as every command loads it."""
    project = load_project(include)
    return [*project.problems, *project.namespace_problems()]


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize(("case", "text", "reason"), CASES, ids=[c[0] for c in CASES])
def test_a_yaml_bomb_is_one_line_naming_the_file_quickly(home, parser, file, case, text, reason):
    (home / "include" / file).write_text(LAUGHS[file] if text is None else text)
    started = time.process_time()
    found = [p for p in problems_of(home / "include") if p.file == file]
    spent = time.process_time() - started
    assert len(found) == 1, found
    said = str(found[0])
    assert said.startswith(f"{file}: yaml: cannot parse (line "), said
    assert "\n" not in said and len(said) < 300
    assert re.search(reason, said), said
    assert found[0].whole_file
    assert spent < 2.0, f"{spent:.2f}s of CPU to refuse {file}"


@pytest.mark.parametrize("command", [["list"], ["validate"]])
def test_a_bomb_in_namespaces_yaml_ends_every_command_in_one_line(home, capsys, command):
    """Every command reads namespaces.yaml: 20,000 nested ``[`` ended each in RecursionError."""
    (home / "include" / "namespaces.yaml").write_text(DEEP_FLOW)
    assert main(command) == 1
    captured = capsys.readouterr()
    lines = [ln for ln in (captured.out + captured.err).splitlines() if "namespaces.yaml" in ln]
    assert lines == [
        "namespaces.yaml: yaml: cannot parse (line 1, column 1001): while increasing flow level: "
        "exceeded maximum nesting depth"
    ]
    assert "Traceback" not in captured.err


def test_the_bomb_names_the_anchor_that_explodes(home):
    """The line named is the first anchor whose expansion is over the allowance (``f``: 9**6
    values and its own nodes), so the user finds it; the message says what was allowed, not a
    count that would be where the measure stopped rather than the whole expansion."""
    (home / "include" / "workflows.yaml").write_text(LAUGHS["workflows.yaml"])
    with pytest.raises(ConfigError) as raised:
        yaml_files.read_yaml(home / "include" / "workflows.yaml")
    assert str(raised.value) == (
        "workflows.yaml: yaml: cannot parse (line 10, column 8): aliases expand to more than "
        "the 100,000 values allowed (a YAML bomb?)"
    )


@pytest.mark.parametrize("command", [["validate"], ["status"], ["plan"]])
def test_long_strings_repeated_through_aliases_are_refused_by_size(home, capsys, command):
    """Workflow params of 100 KB that expand to 8 GB (few values, so under the values allowed)
    passed validate and list, then status and plan died with MemoryError hashing their JSON: each
    now ends in one line naming the anchor."""
    workflows = home / "include" / "workflows.yaml"
    bomb = "".join("    " + line + "\n" for line in STRINGS.splitlines())
    workflows.write_text(
        "- name: big\n  function: features:customer_features\n"
        "  inputs: {orders: {table: orders}}\n  params:\n" + bomb
    )
    started = time.process_time()
    assert main(command) == 1
    spent = time.process_time() - started
    captured = capsys.readouterr()
    lines = [ln for ln in (captured.out + captured.err).splitlines() if "workflows.yaml" in ln]
    assert lines == [
        "workflows.yaml: yaml: cannot parse (line 7, column 9): aliases expand to more than "
        "the 10,000,000 characters allowed (a YAML bomb?)"
    ]
    assert spent < 2.0, f"{spent:.2f}s of CPU"


def test_long_strings_within_the_size_allowed_load(home):
    """The size allowed grows with the file: a file of 2 MB may repeat it ten times."""
    path = home / "include" / "columns.yaml"
    path.write_text(f'a: &a "{"x" * 2_000_000}"\nb: [{", ".join(["*a"] * 9)}]\n')
    assert len(yaml_files.read_yaml(path)["b"]) == 9
    path.write_text(f'a: &a "{"x" * 2_000_000}"\nb: [{", ".join(["*a"] * 10)}]\n')
    with pytest.raises(ConfigError, match=r"more than the 20,000,\d+ characters allowed"):
        yaml_files.read_yaml(path)


def test_anchors_and_merge_keys_within_the_allowance_load(home, parser):
    """Aliases are refused only past the allowance: shared defaults still load as written."""
    entries = "".join(
        f"- name: wf_{i}\n  <<: *defaults\n  params: {{n: {i}}}\n" for i in range(500)
    )
    (home / "include" / "workflows.yaml").write_text(
        "- &defaults\n  name: wf\n  function: features:customer_features\n  owner: ml-team\n"
        "  inputs: {orders: {table: orders, window: 3d}}\n  primary_key: [customer_id]\n" + entries
    )
    (home / "include" / "cookbooks.yaml").write_text("[]\n")
    project = load_project(home / "include")
    assert [p for p in project.problems if p.file == "workflows.yaml"] == []
    assert len(project.workflows) == 501
    assert project.workflow("wf_499").params == {"n": 499}
    assert project.workflow("wf_499").owner == "ml-team"


def test_the_namespace_rules_refuse_a_bomb_as_a_config_error(home):
    (home / "include" / "namespaces.yaml").write_text(LAUGHS["namespaces.yaml"])
    with pytest.raises(ConfigError, match=r"^namespaces\.yaml: yaml: cannot parse \(line 8,"):
        load_rules(home / "include")


def test_a_file_that_cannot_be_read_is_one_line(home):
    (home / "include" / "aggregates.yaml").unlink()
    (home / "include" / "aggregates.yaml").mkdir()
    (found,) = [p for p in load_project(home / "include").problems if p.file == "aggregates.yaml"]
    assert str(found) == "aggregates.yaml: yaml: cannot read: Is a directory"


def test_no_problem_quotes_a_huge_value_whole(home):
    """A value written out in full (no alias) is still quoted only in part."""
    values = ", ".join(f'"value number {i}"' for i in range(20_000))
    (home / "include" / "workflows.yaml").write_text(
        "- name: big\n  function: features:customer_features\n"
        f"  inputs: {{orders: {{table: orders}}}}\n  params: [{values}]\n"
    )
    (found,) = [p for p in load_project(home / "include").problems if p.file == "workflows.yaml"]
    assert found.message.startswith("params must be a mapping of names to values, not ['value")
    assert len(found.message) <= MESSAGE_CHARS + 40
    assert found.message.endswith(" characters cut)")


def test_a_short_message_is_kept_whole():
    message = "x" * MESSAGE_CHARS
    assert Problem("a.yaml", None, "k", message).message == message
    assert Problem("a.yaml", None, "k", message + "y").message == (
        f"{message}... (1 character cut)"
    )
