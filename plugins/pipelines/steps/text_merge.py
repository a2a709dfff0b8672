"""A text delivery (CSV: every column as delivered text) typed in DuckDB by the pandas path's rules.

The pandas path (:mod:`.merge`, :mod:`.schema`, :mod:`pipelines.common.transforms`) types text in
three places, each stated here so that DuckDB gives the same values:

- **the incremental and partition fields**: text of one plain ISO 8601 form (:data:`ISO`) is
  cast by DuckDB; any other is parsed by pandas itself (``parse_timestamps``: the other ISO
  forms, numbers as epoch units), once per distinct value, batch by batch into a table DuckDB
  joins. pandas' ISO 8601 parser has more forms than any SQL format list, so the rule keeps its
  one owner. ``is_date_only`` is read in SQL (every valid value shaped as a date, at midnight)
  and by pandas' own test on the first valid value;
- **a column's kind** (``_sniff_text`` over the winning rows) in one SQL aggregate: a value is
  bool text, an integer (at most 18 digits) or a decimal/exponent number by grammars each a
  subset of what ``pandas.to_numeric`` reads, after Python's ``str.strip`` (every character
  ``str.isspace`` names). The first values in none of them (up to :data:`SAMPLE`) are shown to
  pandas itself: one pandas does not read as a number makes the column text, as in pandas; if
  it reads every one (``inf``, 19 digits) the delivery is left to the pandas path;
- **the conversion** of each kind: ``CAST`` of the stripped text (DuckDB's double parser gives
  ``pandas.to_numeric``'s values, checked on 40,000 numbers), true/false by lower-case text, the
  field parsed above (as a date for a field delivered as dates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.common import transforms
from pipelines.lake.engine import BATCH_ROWS, literal, quoted, run

if TYPE_CHECKING:
    import duckdb

SAMPLE = 1000  # values outside the grammars that pandas decides
# every character Python's str.isspace() names: str.strip() removes these
SPACES = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in SPACES) + "]"
INTEGER = "[+-]?[0-9]{1,18}"
NUMBER = "[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
DIGITS = "[+-]?[0-9]+"
# ISO 8601 text DuckDB casts to the instant pandas parses (years 1900-2099: inside pandas'
# nanosecond range; a day that does not exist fails the cast and goes to pandas)
ISO = (
    "(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    "([.][0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
)


def stripped(column: str) -> str:
    """SQL of ``column``'s text as Python's ``str.strip()`` leaves it (the regular expression
    only for the few values that begin or end with a space)."""
    c, spaces = quoted(column), literal(SPACES)
    strip = f"regexp_replace({c}, {literal(f'^{SPACE}+|{SPACE}+$')}, '', 'g')"
    edges = f"contains({spaces}, left({c}, 1)) OR contains({spaces}, right({c}, 1))"
    return f"(CASE WHEN {edges} THEN {strip} ELSE {c} END)"


def blank(column: str) -> str:
    """SQL: the text is empty once stripped (a primary key part pandas counts as null)."""
    c = quoted(column)
    spaces = f"regexp_full_match({c}, {literal(SPACE + '*')})"
    return f"({c} = '' OR (contains({literal(SPACES)}, left({c}, 1)) AND {spaces}))"


def helpers(index: int) -> dict[str, str]:
    """The columns a parsed field ``index`` adds: its value, and whether it is quarantined."""
    return {part: f"_{part}{index}" for part in ("parsed", "bad")}


def parse_fields(con: duckdb.DuckDBPyConnection, stamps: list[str], epoch: str) -> str:
    """The view ``source``: ``raw`` with the parsed fields' :func:`helpers` columns. Text of the
    :data:`ISO` form is cast by DuckDB; every other distinct text is parsed once by pandas
    (tables ``stamp_{i}``)."""
    joins, columns = [], []
    for index, column in enumerate(stamps):
        table, fast = f"stamp_{index}", _fast(column)
        _parse_distinct(con, (column, fast), table, epoch)
        names = helpers(index)
        columns += [
            f"coalesce({fast}, {table}.parsed) AS {names['parsed']}",
            f"({fast} IS NULL AND coalesce({table}.bad, true)) AS {names['bad']}",
        ]
        joins.append(
            f"LEFT JOIN {table} ON {fast} IS NULL AND "
            f"raw.{quoted(column)} IS NOT DISTINCT FROM {table}.text"
        )
    run(
        con,
        f"CREATE OR REPLACE TEMP VIEW source AS SELECT raw.*, {', '.join(columns)} "
        f"FROM raw {' '.join(joins)}",
    )
    return "source"


def _fast(column: str) -> str:
    """SQL: the column's instant when its text has the :data:`ISO` form DuckDB casts (else
    null)."""
    text = stripped(column)
    return (
        f"(CASE WHEN regexp_full_match({text}, {literal(ISO)}) "
        f"THEN TRY_CAST({text} AS TIMESTAMPTZ) END)"
    )


def _parse_distinct(con, field: tuple[str, str], table: str, epoch: str) -> None:
    """Table ``table``: each distinct text of the column (null too) that :func:`_fast` does
    not cast, parsed by pandas."""
    import pyarrow as pa

    column, fast = field
    run(con, f"CREATE TABLE {table} (text VARCHAR, parsed TIMESTAMPTZ, bad BOOLEAN)")
    writer = con.cursor()  # the reader holds con's result open
    try:
        reader = con.sql(
            f"SELECT DISTINCT {quoted(column)} FROM raw WHERE {fast} IS NULL"
        ).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            values = batch.column(0).to_pandas().astype("string")
            parsed, bad = transforms.parse_timestamps(values, epoch)
            parts = pa.table(
                {
                    "text": batch.column(0).cast(pa.string()),
                    "parsed": pa.array(parsed, pa.timestamp("us", tz="UTC")),
                    "bad": pa.array(bad.fillna(True).astype(bool)),  # a missing value is bad
                }
            )
            writer.register("parts", parts)
            writer.execute(f"INSERT INTO {table} SELECT * FROM parts")
            writer.unregister("parts")
    finally:
        writer.close()


def date_only(con, rows: str, column: str, index: int) -> bool:
    """``is_date_only`` of parsed field ``index`` over the valid rows of ``rows``: the first
    valid row's text is a date (pandas' own test, on that one value), and every valid row's is
    shaped as one (ten characters, ``-`` at 4 and 7), parsed at midnight."""
    parsed, text = helpers(index)["parsed"], stripped(column)
    shaped = (
        f"length({text}) = 10 AND substr({text}, 5, 1) = '-' AND substr({text}, 8, 1) = '-' "
        f"AND {parsed} = date_trunc('day', {parsed})"
    )
    [(first, every)] = run(
        con,
        f"SELECT arg_min({quoted(column)}, _row), bool_and({shaped}) FROM {rows} "
        "WHERE _reason IS NULL",
    )
    if first is None or not transforms.DATE_TEXT.fullmatch(str(first).strip()):
        return False
    return bool(every)


def kinds(con, rows: str, columns: list[str]) -> dict[str, str] | None:
    """``_sniff_text`` of each column over ``rows`` (None: a value only pandas can decide is a
    number, so the delivery goes to the pandas path)."""
    if not columns:
        return {}
    parts, texts = [], []
    for at, c in enumerate(columns):
        text = f"_s{at}"
        texts.append(f"{stripped(c)} AS {text}")
        parts += [
            f"count({quoted(c)})",
            f"count(*) FILTER (WHERE lower({text}) IN ('true', 'false'))",
            f"count(*) FILTER (WHERE regexp_full_match({text}, {literal(INTEGER)}))",
            f"count(*) FILTER (WHERE regexp_full_match({text}, {literal(NUMBER)}) AND NOT "
            f"regexp_full_match({text}, {literal(DIGITS)}))",
        ]
    named = ", ".join(map(quoted, columns))
    [counts] = run(
        con, f"SELECT {', '.join(parts)} FROM (SELECT {named}, {', '.join(texts)} FROM {rows})"
    )
    found: dict[str, str] = {}
    for at, c in enumerate(columns):
        values, bools, ints, floats = counts[4 * at : 4 * at + 4]
        kind = _kind(values, bools, ints, floats)
        if kind is None:
            kind = _kind_of_others(con, rows, c)
        if kind is None:
            return None
        found[c] = kind
    return found


def _kind(values: int, bools: int, ints: int, floats: int) -> str | None:
    """The kind the counts decide (None: some values are in no grammar)."""
    if not values:
        return "null"
    if bools == values:
        return "bool"
    if bools:  # not all true/false, and true/false is no number
        return "string"
    if ints == values:
        return "int"
    if ints + floats == values:
        return "float"
    return None


def _kind_of_others(con, rows: str, column: str) -> str | None:
    """``string`` when pandas reads one of the values outside the grammars as no number (None:
    it reads every one it is shown as a number)."""
    import pandas as pd

    text = stripped(column)
    grammar = f"lower({text}) IN ('true', 'false') OR regexp_full_match({text}, {literal(NUMBER)})"
    others = run(  # the first ones: one that is no number decides, as it does in pandas
        con,
        f"SELECT {quoted(column)} FROM {rows} WHERE {quoted(column)} IS NOT NULL "
        f"AND NOT ({grammar}) LIMIT {SAMPLE}",
    )
    values = pd.Series([v for (v,) in others], dtype="string")
    numbers = pd.to_numeric(values.str.strip(), errors="coerce")
    return "string" if numbers.isna().any() else None


def converted(column: str, kind: str) -> str:
    """SQL of a text column as ``coerce`` converts it to ``kind`` (not a parsed field)."""
    if kind == "int":
        return f"CAST({stripped(column)} AS BIGINT)"
    if kind == "float":
        return f"CAST({stripped(column)} AS DOUBLE)"
    if kind == "bool":
        return f"CASE lower({stripped(column)}) WHEN 'true' THEN true WHEN 'false' THEN false END"
    return quoted(column)  # string, null: the text as delivered
