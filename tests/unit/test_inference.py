"""The lossless inference (common/inference.py): each round-trip case of a text column's kind, the
kinds of primary key columns, and the float rule against its literal statement."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from pipelines.common import inference, transforms

KINDS = [
    # ints: written plainly, and fit int64
    (["1", "2", None], "int"),
    (["0", " 42 ", "\t-7\n"], "int"),
    (["-0", "0", "42"], "float"),  # -0 prints as 0 as an int; as a float it keeps its sign
    (["9223372036854775807", "-9223372036854775808"], "int"),
    (["9007199254740993"], "int"),  # no float says it, an int does
    # text that a number would lose
    (["007", "7"], "string"),  # a leading zero
    (["02134", "2134", "00501"], "string"),
    (["+5"], "string"),
    (["1,000"], "string"),
    (["1_000"], "string"),
    (["0x10"], "string"),
    (["9223372036854775808"], "string"),  # past int64, and no float says it
    (["-9223372036854775809"], "string"),
    (["١٢"], "string"),  # digits, not ASCII ones
    # floats: each value's float64 is the number the text says
    (["1.5", "2"], "float"),
    (["1.50", "0.1", "-0.0"], "float"),
    (["1e3", "1E+05", "2.5e-3"], "float"),
    (["0.30000000000000004"], "float"),  # 17 digits, the shortest that says its float
    (["100000000000000000000"], "float"),  # 1e20 exactly
    (["2.2250738585072014e-308", "5e-324", "1.7976931348623157e308"], "float"),
    (["0e99999999999999999"], "float"),  # zero, whatever its exponent (of 17 digits)
    # text a float would lose, or no number at all
    (["12345678901234567.5"], "string"),
    (["0.10000000000000001"], "string"),
    (["9.999999999999999e22"], "string"),  # the float of 1e23, which says 1e+23
    (["1.5", "9007199254740993"], "string"),  # the int would lose a unit as a float
    (["1e500"], "string"),  # inf
    (["1e-400"], "string"),  # 0.0
    (["4.9406564584124654e-324"], "string"),
    (["0e999999999999999999"], "string"),  # an exponent of 18 digits
    (["inf"], "string"),
    (["-inf"], "string"),
    (["nan"], "string"),
    ([".5"], "string"),
    (["5."], "string"),
    (["-.5"], "string"),
    (["1.5e"], "string"),
    (["1,5"], "string"),
    (["1 000"], "string"),
    ([" "], "string"),
    # bools
    (["true", "False", " TRUE "], "bool"),
    (["true", "1"], "string"),
    (["yes", "no"], "string"),
    # nothing
    ([None, None], "null"),
    (["a", "1"], "string"),
]


@pytest.mark.parametrize(("values", "kind"), KINDS)
def test_the_kind_of_a_text_column(values, kind):
    assert inference.infer_kind(pd.Series(values, dtype="string")) == kind


@pytest.mark.parametrize(("values", "kind"), KINDS)
def test_a_number_kind_converts_every_value_back_to_its_text(values, kind):
    """Round trip: the converted value says what the text said (ints exactly; floats as the
    decimal, numerically)."""
    if kind not in ("int", "float"):
        return
    series = pd.Series(values, dtype="string")
    converted = transforms.coerce(series, kind)
    for text, value in zip(series, converted, strict=True):
        if pd.isna(text):
            assert pd.isna(value)
        elif kind == "int":
            assert int(value) == int(text.strip())
        else:
            assert Decimal(repr(float(value))) == Decimal(text.strip())


def test_typed_columns_keep_their_type():
    assert inference.infer_kind(pd.Series([1, 2], dtype="Int64")) == "int"
    assert inference.infer_kind(pd.Series([1.5], dtype="Float64")) == "float"
    assert inference.infer_kind(pd.Series(["007"], dtype="string"), sniff=False) == "string"


def test_a_short_decimal_is_always_exact():
    """The shortcut of is_float_text (15 digits, no exponent: no check one by one) against the
    rule as stated, on random decimals of up to 15 digits at every scale."""
    rng = np.random.default_rng(11)
    texts = []
    for _ in range(10_000):
        digits = "".join(rng.choice(list("0123456789"), int(rng.integers(1, 16))))
        digits = digits.lstrip("0") or "0"
        point = int(rng.integers(0, len(digits) + 1))
        text = digits if point == 0 else f"{digits[:-point] or '0'}.{digits[-point:]}"
        texts.append(("-" if rng.random() < 0.3 else "") + text)
    series = pd.Series(texts, dtype="string")
    matched = series.str.fullmatch(inference.FLOAT)
    shaped = [t for t, m in zip(texts, matched, strict=True) if m]
    assert len(shaped) > 7_500
    assert all(inference.exact_float(t) for t in shaped)
    assert inference.is_float_text(pd.Series(shaped, dtype="string")).all()


def test_the_float_rule_is_its_literal_statement():
    rng = np.random.default_rng(12)
    texts = [
        repr(float(v)) for v in rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000)
    ]
    texts = [t.replace("e+", "e") for t in texts]
    longer = [t.replace("e", "1e") if "e" in t else t + "1" for t in texts]  # one digit more
    texts += longer + [f"{int(v)}" for v in rng.integers(-(2**62), 2**62, 1000)]
    series = pd.Series(texts, dtype="string")
    found = inference.is_float_text(series)
    literal = [Decimal(repr(float(t))) == Decimal(t) for t in texts]
    assert found.tolist() == literal
    assert 0.2 < sum(literal) / len(literal) < 0.9  # both answers are tested


KEYS = [
    # (values, stored kind, key kind)
    (["007", "7", "0042"], None, "string"),  # text keys stay text
    (["1", "2", "3"], None, "string"),
    (["true", "false"], None, "string"),
    (["2024-03-01T08:00:00Z", "2024-03-01T10:00:00+02:00"], None, "timestamp"),
    (["2024-03-01 08:00", " 2024-03-01T08:00:00.123456-05:30 ", None, ""], None, "timestamp"),
    (["2024-03-01T08:00:00+0200", "2024-03-01T08:00:00+02"], None, "timestamp"),
    (["2024-03-01T08:00:00Z", "2024-03-01"], None, "string"),  # a date is no date and time
    (["2024-03-01"], None, "string"),
    (["2024-02-30T08:00:00Z"], None, "string"),  # shaped as one, and no instant
    (["2024-03-01T08:00:00.1234567Z"], None, "string"),  # past microseconds: would lose
    (["1709280000"], None, "string"),  # a number is no timestamp key
    (["2024-03-01T08:00:00Z"], "string", "string"),  # a table of text keys keeps them
    (["2024-03-01T08:00:00Z"], "timestamp", "timestamp"),
    (["2024-03-01"], "timestamp", "string"),  # reconcile refuses it, naming the column
    # a table written when keys were guessed as numbers keeps them where nothing is lost
    (["7", " 8 ", "-9"], "int", "int"),
    (["7", "007"], "int", "string"),
    (["1.5", "2"], "float", "float"),
    (["0.10000000000000001"], "float", "string"),
    (["1.5"], "int", "string"),
    ([None, " "], "int", "int"),  # nothing delivered says otherwise
    ([None, " "], None, "null"),
]


@pytest.mark.parametrize(("values", "stored", "kind"), KEYS)
def test_the_kind_of_a_key_column(values, stored, kind):
    assert inference.key_kind(pd.Series(values, dtype="string"), stored) == kind


def test_timestamp_keys_are_instants():
    values = pd.Series(["2024-03-01T08:00:00Z", "2024-03-01T10:00:00+02:00"], dtype="string")
    typed = inference.key_values(values, inference.key_kind(values))
    assert typed.nunique() == 1
    assert str(typed.dtype) == transforms.DTYPES["timestamp"]
    text = pd.Series(["007", " 7"], dtype="string")
    assert inference.key_values(text, "string").tolist() == ["007", " 7"]  # as delivered
    assert inference.key_values(text.iloc[1:], "int").tolist() == [7]
