"""text_merge's SQL against the pandas rules it states: the kind of a text column
(``inference.text_kind``) and its conversion (``coerce``), on values chosen to sit at each rule's
edge and on random numbers; the kind of a key column (``inference.key_kind``)."""

from __future__ import annotations

import itertools

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.common import inference, transforms
from pipelines.steps import text_merge

EDGES = [
    "7", " 7 ", "+3", "-0", "007", "\xa07\u2003", "\t8\n", "123456789012345678",
    "1234567890123456789", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "99999999999999999999", "100000000000000000000", "9007199254740993", "1e3", "1E+05", "2.5",
    "1.50", "0.1", "-0.0", "0.30000000000000004", "0.10000000000000001", "12345678901234567.5",
    "-.5", "5.", "+.5e3", "1e500", "-1e-400", "5e-324", "0e99999999999999999",
    "0e999999999999999999", "inf", "-inf", "nan", "NaN", "1_000", "0x10", "١٢", "1,5", "True",
    " false ", "TRUE", "\xa0true", "yes", "t", "", " ", "x", "NA", "7 7", "e3", ".", "-",
]  # fmt: skip


CON = duckdb.connect()


def sniffed(values: list[str | None]) -> tuple[str, pd.Series]:
    """The SQL's kind of a column holding ``values``, and its values converted by the SQL."""
    con = CON
    con.register("rows", pa.table({"c": pa.array(values, pa.string())}))
    kind = text_merge.kinds(con, "rows", ["c"])["c"]
    table = con.sql(f"SELECT {text_merge.converted('c', kind)} AS c FROM rows").to_arrow_table()
    return kind, table["c"].to_pandas(types_mapper=pd.ArrowDtype)


def pandas_kind(values: list[str | None]) -> str:
    return inference.infer_kind(pd.Series(values, dtype="string"))


@pytest.mark.parametrize("value", EDGES)
def test_one_value(value):
    check([value, None])


def test_pairs_of_values():
    for pair in itertools.combinations(EDGES, 2):
        check(list(pair))


def test_random_columns():
    rng = np.random.default_rng(3)
    for _ in range(150):
        check(list(rng.choice(EDGES, size=int(rng.integers(1, 6)))))


def check(values: list[str | None]) -> None:
    kind, converted = sniffed(values)
    assert kind == pandas_kind(values), values
    coerced = transforms.coerce(pd.Series(values, dtype="string"), kind)
    assert [None if pd.isna(v) else v for v in converted] == [
        None if pd.isna(v) else v for v in coerced
    ], values


def numbers(rng, n: int) -> list[str]:
    """Number texts around the float rule's edges: Python's shortest repr, one digit more or
    less, 15 to 17 digits, exponents, trailing zeros, ints past 2**53 and int64."""
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-320, 310, n)
    out = []
    for value in values:
        text = repr(float(value)).replace("e+", "e")
        form = rng.integers(6)
        if form == 1:
            text = text.replace("e", "1e") if "e" in text else text + "1"
        elif form == 2 and "e" not in text and len(text) > 3:
            text = text[:-1]
        elif form == 3:
            text = f"{value:.{int(rng.integers(14, 19))}g}".replace("e+", "E")
        elif form == 4:
            text = f"{int(rng.integers(-(2**62), 2**62))}"
        elif form == 5 and "e" not in text:
            text += "0" * int(rng.integers(1, 4))
        out.append(text)
    return out


def test_the_float_rule_in_sql_is_the_literal_rule_on_random_numbers():
    texts = numbers(np.random.default_rng(8), 40_000)
    con = duckdb.connect()
    con.register("rows", pa.table({"t": pa.array(texts, pa.string())}))
    got = [r[0] for r in con.sql(f"SELECT {text_merge.is_float('t')} FROM rows").fetchall()]
    literal = [bool(inference.FLOAT_TEXT.fullmatch(t)) and inference.exact_float(t) for t in texts]
    assert got == literal
    assert inference.is_float_text(pd.Series(texts, dtype="string")).tolist() == literal
    assert 0.3 < sum(literal) / len(literal) < 0.95  # both answers are tested
    source = text_merge._stripped("rows", ["t"])  # the aggregate kinds() counts with
    counts = ", ".join(text_merge._number_counts(0))
    [(ints, short, long)] = con.sql(f"SELECT {counts} FROM {source}").fetchall()
    assert short + long - text_merge._inexact(con, source, "_s0") == sum(literal)
    assert ints == int(inference.is_int_text(pd.Series(texts, dtype="string")).sum())
    doubles = con.sql("SELECT TRY_CAST(t AS DOUBLE) FROM rows").fetchall()
    exact = [float(t) for t, ok in zip(texts, literal, strict=True) if ok]
    assert [d for (d,), ok in zip(doubles, literal, strict=True) if ok] == exact


KEYS = [
    ["007", "7", "0042"],
    ["1", " 2 ", "3", "", None],
    ["2024-03-01T08:00:00Z", "2024-03-01T10:00:00+02:00", " ", None],
    ["2024-03-01 08:00", "2024-03-01T08:00:00.123456-05:30", "2024-03-01T08:00+0200"],
    ["2024-03-01T08:00:00Z", "2024-03-01"],
    ["2024-02-30T08:00:00Z", "2024-03-01T08:00:00Z"],
    ["1999-03-01T08:00:00Z", "2124-03-01T08:00:00Z"],
    ["1.5", "2", "0.10000000000000001"],
    ["1.5", "2"],
    ["9223372036854775808"],
    [None, ""],
]


@pytest.mark.parametrize("values", KEYS)
@pytest.mark.parametrize("stored", [None, "int", "float", "string", "timestamp"])
def test_key_kinds_in_sql_are_the_pandas_key_kinds(values, stored):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("raw", pa.table({"k": pa.array(values, pa.string()), "_row": range(len(values))}))
    kind = text_merge.key_kinds(con, "raw", ["k"], {"k": stored} if stored else {})["k"]
    if kind == "timestamp":
        rows = text_merge.parse_fields(con, ["k"], "s")
        if text_merge.unparsed(con, rows, "k", 0):
            kind = "string"
    assert kind == inference.key_kind(pd.Series(values, dtype="string"), stored)


def test_blank_is_what_str_strip_empties():
    texts = ["", " ", "\t\n", "\xa0", "\u2003\u3000", "\x1c\x1f", "\x85", "a", " a ", "\u200b"]
    con = duckdb.connect()
    con.register("rows", pa.table({"c": texts}))
    blank = [r[0] for r in con.sql(f"SELECT {text_merge.blank('c')} FROM rows").fetchall()]
    assert blank == [t.strip() == "" for t in texts]
    stripped = [r[0] for r in con.sql(f"SELECT {text_merge.stripped('c')} FROM rows").fetchall()]
    assert stripped == [t.strip() for t in texts]


DATES = [
    ["2024-01-02", " 2024-01-03 "],
    ["2024-01-02", "2024-01-02T00:00:00Z"],
    ["2024-01-02T00:00:00Z", "2024-01-02"],
    ["2024-1-2", "2024-01-02"],
    ["2024-01-02", "1704153600"],
    ["\xa02024-01-02", "2024-01-02 "],
    ["2024-01-02", "2024-01-02+02:00"],
    ["x", "2024-01-02"],  # the first is quarantined: the first valid one decides
]


@pytest.mark.parametrize("texts", DATES)
def test_date_only_reads_what_is_date_only_reads(texts):
    delivered = pd.Series(texts, dtype="string")
    parsed, bad = transforms.parse_timestamps(delivered)
    con = duckdb.connect()
    con.register("raw", pa.table({"ts": pa.array(texts, pa.string()), "_row": range(len(texts))}))
    rows = text_merge.parse_fields(con, ["ts"], "s")
    con.sql(
        f"CREATE TABLE checked AS SELECT *, CASE WHEN _bad0 THEN 'bad' END AS _reason FROM {rows}"
    )
    valid = ~bad.fillna(True).astype(bool)
    expected = transforms.is_date_only(delivered, parsed[valid])
    assert text_merge.date_only(con, "checked", "ts", 0) == expected


def stamps(rng, n: int) -> list[str]:
    """Text in and around the ISO form DuckDB casts itself."""
    out = []
    for _ in range(n):
        year = int(rng.choice([1899, 1900, 1970, 2024, 2099, 2100]))
        month, day = int(rng.integers(0, 14)), int(rng.integers(0, 33))
        hour, minute, second = (
            int(rng.integers(0, 26)),
            int(rng.integers(0, 61)),
            int(rng.integers(0, 61)),
        )
        text = f"{year}-{month:02d}-{day:02d}"
        if rng.random() < 0.8:
            text += f"{rng.choice(['T', ' '])}{hour:02d}:{minute:02d}:{second:02d}"
            if rng.random() < 0.5:
                text += "." + "".join(rng.choice(list("0123456789"), int(rng.integers(1, 10))))
        text += str(rng.choice(["", "Z", "+02:00", "-05:30", "+23:59", "+24:00", "+0200"]))
        out.append(text if rng.random() < 0.9 else f" {text}\t")
    return out


def test_iso_text_cast_by_duckdb_is_the_instant_pandas_parses():
    rng = np.random.default_rng(5)
    texts = stamps(rng, 3000) + ["2024-02-29 10:00:00", "2023-02-29 10:00:00", "2024-01-01"]
    expected, bad = transforms.parse_timestamps(pd.Series(texts, dtype="string"))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("raw", pa.table({"ts": pa.array(texts, pa.string()), "_row": range(len(texts))}))
    rows = text_merge.parse_fields(con, ["ts"], "s")
    got = con.sql(f"SELECT _parsed0, _bad0 FROM {rows} ORDER BY _row").to_arrow_table()
    assert got["_bad0"].to_pylist() == list(bad.fillna(True).astype(bool))
    parsed = got["_parsed0"].cast(pa.timestamp("us", tz="UTC")).to_pandas()
    assert parsed.equals(expected.astype("datetime64[us, UTC]").reset_index(drop=True)) or (
        list(parsed) == list(expected)
    )
    fast = con.sql(f"SELECT count(*) FROM raw WHERE {text_merge._fast('ts')} IS NOT NULL")
    assert fast.fetchall()[0][0] > 300  # the cast took a good share
