"""Declared columns: ``include/columns.yaml``, one entry per dataset, beside the registry.

The registry stays one row per dataset; what a dataset's columns are is declared here, as dbt
model contracts and dlt column hints declare it::

    orders:
      new_columns: evolve        # evolve | freeze | discard_row | discard_value
      bad_values: discard_row    # discard_row | discard_value | freeze
      tests: {min_rows: 1, max_row_change_pct: 50}
      columns:
        id:        {type: text, tests: [not_null, unique]}
        amount:    {type: "decimal(12,2)", format: {decimal: ",", thousands: "."}}
        ordered:   {type: date, format: "%m/%d/%Y"}
        paid:      {type: boolean, format: "ja/nein"}
        "Water flow [l/s]": {rename: water_flow, type: float}
        status:    {tests: [{accepted_values: [new, paid]}]}
        customer:  {tests: [{relationships: customers.id}]}

A column's ``type`` is one of :data:`TYPES`; ``format`` reads text that needs one (a date's
``strftime`` pattern, a number's decimal and thousands marks, a boolean's words); ``rename``
gives an awkward header a clean name (the name every other file then uses). Row tests
(:data:`ROW_TESTS`) send a row that breaks them to quarantine; table tests (``unique``,
``relationships`` and the dataset's ``tests``) decide its check stage.

Contracts, in dlt's words: ``new_columns`` is what happens to a column the delivery has and the
declaration does not (``evolve``: it is added, typed by the lossless inference; ``freeze``: the
run fails; ``discard_row``: a row with a value in it goes to quarantine; ``discard_value``: the
column is dropped). ``bad_values`` is what happens to a value that does not fit its type or a
row test (``discard_row``: the row goes to quarantine with the column, value and rule;
``discard_value``: the value becomes null and the row is kept; ``freeze``: the run fails).

Every problem is one line naming the file, its line, the dataset, the column and what is wrong;
a bad entry is skipped (its dataset runs undeclared) and ``validate`` reports it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.exceptions import ConfigError, Problem
from pipelines.project.registry_values import COLUMN_RE, COLUMN_RULE, NAME_RE
from pipelines.project.yaml_files import compose_yaml

COLUMNS = "columns.yaml"
# declared type -> the kind the typing code knows (a decimal keeps its precision and scale)
TYPES = {
    "text": "string",
    "integer": "int",
    "float": "float",
    "boolean": "bool",
    "date": "date",
    "timestamp": "timestamp",
}
DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
ROW_TESTS = ("not_null", "accepted_values", "min", "max", "pattern")
TABLE_TESTS = ("unique", "relationships")
DATASET_TESTS = ("min_rows", "max_row_change_pct", "max_quarantined_pct")
COLUMN_KEYS = ("type", "format", "rename", "tests", "description")
ENTRY_KEYS = ("new_columns", "bad_values", "tests", "columns", "description")


class NewColumns(enum.StrEnum):
    EVOLVE = "evolve"
    FREEZE = "freeze"
    DISCARD_ROW = "discard_row"
    DISCARD_VALUE = "discard_value"


class BadValues(enum.StrEnum):
    DISCARD_ROW = "discard_row"
    DISCARD_VALUE = "discard_value"
    FREEZE = "freeze"


@dataclass(frozen=True)
class NumberFormat:
    """How a number is written: its decimal mark and the thousands mark it may carry."""

    decimal: str = "."
    thousands: str = ""


@dataclass(frozen=True)
class Test:
    """One test of a column: ``name`` and its argument (None for ``not_null``/``unique``; the
    values of ``accepted_values``; the bound of ``min``/``max``; the pattern; for
    ``relationships`` the ``(dataset, column)`` its values must exist in)."""

    name: str
    arg: Any = None

    @property
    def is_row_test(self) -> bool:
        return self.name in ROW_TESTS

    def __str__(self) -> str:
        if self.arg is None:
            return self.name
        if self.name == "relationships":
            return f"relationships: {self.arg[0]}.{self.arg[1]}"
        if self.name == "accepted_values":
            return f"accepted_values: [{', '.join(map(str, self.arg))}]"
        return f"{self.name}: {self.arg}"


@dataclass(frozen=True)
class Column:
    """One declared column: its header as delivered, and what it is."""

    name: str
    type: str | None = None  # as declared: text, integer, decimal(p,s), ...; None: inferred
    format: str | NumberFormat | tuple[tuple[str, ...], tuple[str, ...]] | None = None
    rename: str | None = None
    tests: tuple[Test, ...] = ()
    line: int = 0

    @property
    def stored(self) -> str:
        """The name the column has in the lake and in every other file."""
        return self.rename or self.name

    @property
    def kind(self) -> str | None:
        """The kind the typing code knows (``decimal(p,s)`` as declared; None: inferred)."""
        if self.type is None:
            return None
        return TYPES.get(self.type, self.type)

    def test(self, name: str) -> Test | None:
        return next((t for t in self.tests if t.name == name), None)


@dataclass(frozen=True)
class Declaration:
    """A dataset's declared columns, its contracts and its table tests."""

    dataset: str
    columns: tuple[Column, ...] = ()
    new_columns: NewColumns = NewColumns.EVOLVE
    bad_values: BadValues = BadValues.DISCARD_ROW
    min_rows: int | None = None
    max_row_change_pct: float | None = None
    max_quarantined_pct: float | None = None
    line: int = 0

    def column(self, name: str) -> Column | None:
        """The declared column delivered as ``name`` or stored as ``name``."""
        return next((c for c in self.columns if name in (c.name, c.stored)), None)

    @property
    def renames(self) -> dict[str, str]:
        """``header -> clean name`` of the renamed columns."""
        return {c.name: c.rename for c in self.columns if c.rename}

    @property
    def kinds(self) -> dict[str, str]:
        """``stored name -> kind`` of the typed columns, in declaration order."""
        return {c.stored: c.kind for c in self.columns if c.kind}

    def as_config(self) -> dict[str, Any]:
        """JSON-safe, in a fixed order: what ``plan`` compares with the recorded config."""
        return {
            "new_columns": str(self.new_columns),
            "bad_values": str(self.bad_values),
            "tests": {
                k: v
                for k, v in (
                    ("min_rows", self.min_rows),
                    ("max_row_change_pct", self.max_row_change_pct),
                    ("max_quarantined_pct", self.max_quarantined_pct),
                )
                if v is not None
            },
            "columns": {
                c.name: {
                    "type": c.type,
                    "format": _format_text(c.format),
                    "rename": c.rename,
                    "tests": [str(t) for t in c.tests],
                }
                for c in self.columns
            },
        }


def _format_text(fmt) -> str | None:
    if fmt is None or isinstance(fmt, str):
        return fmt
    if isinstance(fmt, NumberFormat):
        return f"decimal {fmt.decimal!r}, thousands {fmt.thousands!r}"
    return f"{','.join(fmt[0])}/{','.join(fmt[1])}"


@dataclass(frozen=True)
class Declarations:
    """Every good entry of ``columns.yaml`` by dataset, and what was wrong with the rest."""

    by_dataset: Mapping[str, Declaration] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


def load_declarations(path: Path) -> Declarations:
    """Parse ``columns.yaml`` (no file: nothing declared). Line numbers come from the YAML
    nodes, so a problem names where it is."""
    import yaml

    if not path.exists():
        return Declarations()
    try:
        root = compose_yaml(path)
    except ConfigError as exc:
        return Declarations({}, tuple(exc.problems))
    if root is None:
        return Declarations()
    if not isinstance(root, yaml.MappingNode):
        why = "must be a YAML mapping of dataset name -> its columns"
        return Declarations({}, (Problem(COLUMNS, 1, "file", why, True),))
    found: dict[str, Declaration] = {}
    problems: list[Problem] = []
    for key, value in root.value:
        name, line = _scalar(key), key.start_mark.line + 1
        report = _Report(problems, line, str(name))
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            report(f"dataset name {name!r} must match {NAME_RE.pattern}")
            continue
        if name in found:
            report("declared twice")
            continue
        declaration = _declaration(name, value, line, report)
        if declaration is not None and not report.failed:
            found[name] = declaration
    return Declarations(found, tuple(problems))


@dataclass
class _Report:
    problems: list[Problem]
    line: int
    dataset: str
    failed: bool = False

    def __call__(self, message: str, line: int | None = None, column: str | None = None) -> None:
        where = f"{self.dataset}.{column}" if column else self.dataset
        self.problems.append(Problem(COLUMNS, line or self.line, where, message))
        self.failed = True


def _scalar(node):
    """A node's Python value, as the safe loader reads it."""
    import yaml

    return yaml.constructor.SafeConstructor().construct_document(node)


def _declaration(name: str, node, line: int, report: _Report) -> Declaration | None:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        report("must be a mapping with 'columns' (and optionally contracts and tests)")
        return None
    parts = {_scalar(k): (v, k.start_mark.line + 1) for k, v in node.value}
    for unknown in [k for k in parts if k not in ENTRY_KEYS]:
        report(f"unknown key {unknown!r}; known: {', '.join(ENTRY_KEYS)}", parts[unknown][1])
    new_columns = _choice(parts, "new_columns", NewColumns, NewColumns.EVOLVE, report)
    bad_values = _choice(parts, "bad_values", BadValues, BadValues.DISCARD_ROW, report)
    tests = _dataset_tests(parts.get("tests"), report)
    columns: list[Column] = []
    if "columns" in parts:
        cols, at = parts["columns"]
        if not isinstance(cols, yaml.MappingNode):
            report("columns must be a mapping of column name -> its declaration", at)
        else:
            for key, value in cols.value:
                column = _column(_scalar(key), value, key.start_mark.line + 1, report)
                if column is not None:
                    columns.append(column)
    stored = [c.stored for c in columns]
    for twice in sorted({s for s in stored if stored.count(s) > 1}):
        report("two columns would have this name", column=twice)
    return Declaration(
        name,
        tuple(columns),
        new_columns,
        bad_values,
        tests.get("min_rows"),
        tests.get("max_row_change_pct"),
        tests.get("max_quarantined_pct"),
        line,
    )


def _choice(parts, key: str, kind, default, report: _Report):
    if key not in parts:
        return default
    value, line = _scalar(parts[key][0]), parts[key][1]
    try:
        return kind(value)
    except ValueError:
        report(f"{key} {value!r} must be one of {', '.join(kind)}", line)
        return default


def _dataset_tests(part, report: _Report) -> dict[str, Any]:
    if part is None:
        return {}
    node, line = part
    tests = _scalar(node)
    if not isinstance(tests, dict):
        report(f"tests must be a mapping of {', '.join(DATASET_TESTS)}", line)
        return {}
    found: dict[str, Any] = {}
    for name, value in tests.items():
        if name not in DATASET_TESTS:
            report(f"unknown table test {name!r}; known: {', '.join(DATASET_TESTS)}", line)
        elif name == "min_rows" and (type(value) is not int or value < 0):
            report(f"min_rows must be a whole number >= 0, got {value!r}", line)
        elif name != "min_rows" and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100
        ):
            report(f"{name} must be a percentage between 0 and 100, got {value!r}", line)
        else:
            found[name] = value
    return found


def _column(name, node, line: int, report: _Report) -> Column | None:
    if not isinstance(name, str) or not name.strip() or name.startswith("_"):
        report(f"column name {name!r} must be text not starting with '_'", line)
        return None
    spec = {} if _scalar(node) is None else _scalar(node)
    if not isinstance(spec, dict):
        report("must be a mapping of type, format, rename and tests", line, name)
        return None
    for unknown in [k for k in spec if k not in COLUMN_KEYS]:
        report(f"unknown key {unknown!r}; known: {', '.join(COLUMN_KEYS)}", line, name)
    type_ = spec.get("type")
    if type_ is not None:
        type_ = str(type_).strip().lower().replace(" ", "")
        if type_ not in TYPES and not _decimal(type_):
            known = ", ".join([*TYPES, "decimal(p,s)"])
            report(f"type {spec['type']!r} is not one of {known}", line, name)
            return None
    rename = spec.get("rename")
    if rename is not None and (
        not isinstance(rename, str) or not COLUMN_RE.fullmatch(rename) or rename.startswith("_")
    ):
        report(f"rename {rename!r} is not a valid column name ({COLUMN_RULE})", line, name)
        return None
    fmt = _format(spec.get("format"), type_, line, name, report)
    tests = _tests(spec.get("tests"), type_, line, name, report)
    if fmt is _BAD or tests is None:
        return None
    return Column(name, type_, fmt, rename, tests, line)


def _decimal(type_: str) -> tuple[int, int] | None:
    match = DECIMAL.fullmatch(type_)
    if not match:
        return None
    precision, scale = int(match[1]), int(match[2])
    return (precision, scale) if 1 <= precision <= 38 and scale <= precision else None


_BAD = object()
DATE_DIRECTIVES = re.compile(r"%[dmyYHIMSfpbBjzZ%]")


def _format(fmt, type_: str | None, line: int, name: str, report: _Report):
    """The parsed format of a column of ``type_`` (``_BAD`` after reporting a problem)."""
    if fmt is None:
        return None
    if type_ is None:
        report("a format needs a type", line, name)
        return _BAD
    if type_ in ("date", "timestamp"):
        if isinstance(fmt, str) and DATE_DIRECTIVES.search(fmt):
            return fmt
        why = f"format {fmt!r} of a {type_} must be a strftime pattern like '%m/%d/%Y'"
    elif type_ == "boolean":
        parsed, why = _words(fmt)
        if parsed is not None:
            return parsed
    elif type_ in ("integer", "float") or _decimal(type_):
        parsed, why = _marks(fmt)
        if parsed is not None:
            return parsed
    else:
        why = f"a {type_} column takes no format"
    report(why, line, name)
    return _BAD


def _words(fmt) -> tuple[tuple[tuple[str, ...], tuple[str, ...]] | None, str]:
    """A boolean's words: ``'yes,y/no,n'`` -> (true words, false words), lower case."""
    sides = str(fmt).split("/") if isinstance(fmt, str) else []
    if len(sides) != 2 or not all(s.strip() for s in sides):
        return None, f"format {fmt!r} of a boolean must be 'TRUE-WORDS/FALSE-WORDS', like 'yes/no'"
    true, false = (tuple(w.strip().lower() for w in side.split(",")) for side in sides)
    if set(true) & set(false):
        return None, f"format {fmt!r}: a word is both true and false"
    return (true, false), ""


def _marks(fmt) -> tuple[NumberFormat | None, str]:
    """A number's marks: ``{decimal: ",", thousands: "."}``."""
    if not isinstance(fmt, dict) or set(fmt) - {"decimal", "thousands"}:
        return None, f"format of a number must map decimal and thousands to marks, got {fmt!r}"
    decimal, thousands = str(fmt.get("decimal", ".")), str(fmt.get("thousands", ""))
    if decimal not in (".", ",") or thousands not in ("", ".", ",", " ", "'", "_"):
        return None, "decimal must be '.' or ','; thousands one of '', '.', ',', ' ', \"'\", '_'"
    if decimal == thousands:
        return None, "the decimal and thousands marks must differ"
    return NumberFormat(decimal, thousands), ""


def _tests(
    items, type_: str | None, line: int, name: str, report: _Report
) -> tuple[Test, ...] | None:
    if items is None:
        return ()
    if not isinstance(items, list):
        report("tests must be a list", line, name)
        return None
    tests: list[Test] = []
    for item in items:
        test = _test(item, line, name, report)
        if test is None:
            return None
        if test.name in ("min", "max") and type_ in ("text", "boolean"):
            report(f"{test.name} needs a number, date or timestamp column, not {type_}", line, name)
            return None
        tests.append(test)
    return tuple(tests)


def _test(item, line: int, name: str, report: _Report) -> Test | None:
    if item in ("not_null", "unique"):
        return Test(item)
    if not isinstance(item, dict) or len(item) != 1:
        known = ", ".join([*ROW_TESTS, *TABLE_TESTS])
        report(f"test {item!r} is not one of {known} (with an argument: {{min: 0}})", line, name)
        return None
    [(test, arg)] = item.items()
    if test == "accepted_values" and isinstance(arg, list) and arg:
        return Test(test, tuple(arg))
    if test in ("min", "max") and arg is not None and not isinstance(arg, bool | list | dict):
        return Test(test, arg)
    if test == "pattern" and isinstance(arg, str):
        try:
            re.compile(arg)
        except re.error as exc:
            report(f"pattern {arg!r} is not a regular expression: {exc}", line, name)
            return None
        return Test(test, arg)
    if test == "relationships" and isinstance(arg, str) and arg.count(".") == 1:
        other, column = arg.split(".")
        if NAME_RE.fullmatch(other) and column:
            return Test(test, (other, column))
    report(f"test {test!r} with {arg!r}: {_usage(test)}", line, name)
    return None


def _usage(test: str) -> str:
    return {
        "accepted_values": "give a non-empty list of values",
        "min": "give a number, date or timestamp",
        "max": "give a number, date or timestamp",
        "pattern": "give a regular expression as text",
        "relationships": "give DATASET.COLUMN",
    }.get(test, f"unknown test; known: {', '.join([*ROW_TESTS, *TABLE_TESTS])}")
