"""columns.yaml: how a declaration is read (every problem one line naming file, line, dataset
and column), and how a delivered column is read as a declared type and tested."""

from __future__ import annotations

import datetime as dt
import decimal
import textwrap

import pandas as pd
import pytest

from pipelines.common import typed_text
from pipelines.project.columns import (
    BadValues,
    NewColumns,
    NumberFormat,
    load_declarations,
)


def declare(tmp_path, text: str):
    path = tmp_path / "columns.yaml"
    path.write_text(textwrap.dedent(text))
    return load_declarations(path)


def test_a_declaration_reads_types_formats_renames_tests_and_contracts(tmp_path):
    found = declare(
        tmp_path,
        """
        orders:
          new_columns: freeze
          bad_values: discard_value
          tests: {min_rows: 2, max_row_change_pct: 50}
          columns:
            id: {type: text, tests: [not_null, unique]}
            amount: {type: "decimal(12, 2)", format: {decimal: ",", thousands: "."}}
            ordered: {type: date, format: "%m/%d/%Y"}
            paid: {type: boolean, format: "ja,j/nein,n"}
            "Water flow [l/s]": {rename: water_flow, type: float}
            status: {tests: [{accepted_values: [new, paid]}, {pattern: "[a-z]+"}]}
            customer: {tests: [{relationships: customers.id}]}
        """,
    )
    assert found.problems == ()
    orders = found.by_dataset["orders"]
    assert orders.new_columns is NewColumns.FREEZE and orders.bad_values is BadValues.DISCARD_VALUE
    assert (orders.min_rows, orders.max_row_change_pct) == (2, 50)
    assert orders.kinds == {
        "id": "string",
        "amount": "decimal(12,2)",
        "ordered": "date",
        "paid": "bool",
        "water_flow": "float",
    }
    assert orders.renames == {"Water flow [l/s]": "water_flow"}
    assert orders.column("water_flow").name == "Water flow [l/s]"
    assert orders.column("amount").format == NumberFormat(",", ".")
    assert orders.column("paid").format == (("ja", "j"), ("nein", "n"))
    assert [str(t) for t in orders.column("customer").tests] == ["relationships: customers.id"]
    assert orders.column("id").line == 7


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("x: {type: integr}", "columns.yaml:3: orders.x: type 'integr' is not one of text, "),
        ("x: {type: 'decimal(40,2)'}", "orders.x: type 'decimal(40,2)' is not one of"),
        (
            "x: {type: date, format: 'dd/mm'}",
            "orders.x: format 'dd/mm' of a date must be a strftime",
        ),
        ("x: {type: text, format: 'x'}", "orders.x: a text column takes no format"),
        ("x: {format: '%Y'}", "orders.x: a format needs a type"),
        ("x: {type: boolean, format: 'yes'}", "orders.x: format 'yes' of a boolean must be"),
        ("x: {type: float, format: {decimal: ','}}", None),
        ("x: {type: float, format: {decimal: ',', thousands: ','}}", "marks must differ"),
        ("x: {rename: '_x'}", "orders.x: rename '_x' is not a valid column name"),
        ("x: {tests: [nope]}", "orders.x: test 'nope' is not one of not_null"),
        ("x: {tests: [{relationships: customers}]}", "give DATASET.COLUMN"),
        ("x: {tests: [{pattern: '('}]}", "orders.x: pattern '(' is not a regular expression"),
        ("x: {type: text, tests: [{min: 1}]}", "min needs a number, date or timestamp column"),
        ("x: {colour: red}", "orders.x: unknown key 'colour'"),
        ("x: {rename: y}\n    y: {}", "orders.y: two columns would have this name"),
    ],
)
def test_each_problem_is_one_line_naming_file_line_dataset_and_column(tmp_path, entry, said):
    found = declare(tmp_path, f"orders:\n  columns:\n    {entry}\n")
    if said is None:
        assert found.problems == ()
        return
    assert len(found.problems) == 1, found.problems
    assert said in str(found.problems[0])
    assert "orders" not in found.by_dataset  # a bad entry is skipped: the dataset is undeclared


def test_a_file_that_is_no_mapping_or_no_yaml_is_one_problem(tmp_path):
    assert "must be a YAML mapping" in str(declare(tmp_path, "- orders\n").problems[0])
    [problem] = declare(tmp_path, "orders: [\n").problems
    assert str(problem).startswith("columns.yaml:") and "cannot parse" in str(problem)
    assert declare(tmp_path, "").by_dataset == {}
    [contract] = declare(tmp_path, "orders:\n  bad_values: drop\n").problems
    assert str(contract) == (
        "columns.yaml:2: orders: bad_values 'drop' must be one of discard_row, discard_value, "
        "freeze"
    )


def text(*values) -> pd.Series:
    return pd.Series(list(values), dtype="string")


def test_integers_take_leading_zeros_and_signs_but_never_round():
    values, bad = typed_text.parse(
        text("007", " 7 ", "+5", "-3", "1.0", "x", None, "", "9" * 20), "int"
    )
    assert values.tolist()[:4] == [7, 7, 5, -3]
    assert bad.tolist() == [False] * 4 + [True, True, False, False, True]


def test_a_decimal_keeps_its_digits_and_refuses_more_places_than_its_scale():
    fmt = NumberFormat(",", ".")
    values, bad = typed_text.parse(
        text("1.234,5", "12,30", "0,001", "1.5", "12.34,5", "99.999.999.999,99"),
        "decimal(12,2)",
        fmt,
    )
    assert values.tolist()[:2] == [decimal.Decimal("1234.50"), decimal.Decimal("12.30")]
    # 0,001 would round; 1.5 is no grouping of thousands; 12.34,5 neither; 14 digits > 12
    assert bad.tolist() == [False, False, True, True, True, True]


def test_dates_and_timestamps_read_their_format_and_instants_are_utc():
    values, bad = typed_text.parse(text("02/12/2013", "13/12/2013", ""), "date", "%m/%d/%Y")
    assert values[0] == pd.Timestamp("2013-02-12") and bad.tolist() == [False, True, False]
    stamps, bad = typed_text.parse(
        text("2024-03-01T10:00:00+02:00", "2024-03-01T08:00:00Z"), "timestamp"
    )
    assert stamps[0] == stamps[1] and not bad.any()
    days, bad = typed_text.parse(text("2024-03-01", "2024-03-01T10:00:00"), "date")
    assert bad.tolist() == [False, True]  # a time of day is no date


def test_booleans_read_their_words():
    values, bad = typed_text.parse(text("Ja", "nein", "true", "x"), "bool", (("ja",), ("nein",)))
    assert values.tolist()[:2] == [True, False] and bad.tolist() == [False, False, True, True]
    default, bad = typed_text.parse(text("TRUE", "false"), "bool")
    assert default.tolist() == [True, False] and not bad.any()


def test_a_bound_is_read_as_the_column_s_kind():
    assert typed_text.bound(dt.date(2024, 1, 2), "date") == pd.Timestamp("2024-01-02")
    assert typed_text.bound("3", "float") == 3.0
    with pytest.raises(ValueError, match="is not an integer"):
        typed_text.bound("x", "int")
