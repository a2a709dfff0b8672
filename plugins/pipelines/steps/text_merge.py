"""A text delivery (CSV: every column as delivered text) typed in DuckDB by the pandas path's rules.

The pandas path (:mod:`.merge`, :mod:`.schema`, :mod:`pipelines.common.transforms`) types text in
three places, each stated here so that DuckDB gives the same values:

- **the incremental and partition fields** are parsed by pandas itself, once per distinct value
  (batch by batch, into a table DuckDB joins): ``parse_timestamps`` (ISO 8601, else numbers as
  epoch units) and what ``is_date_only`` reads of each value. pandas' ISO 8601 parser has more
  forms than any SQL format list, so the rule keeps its one owner;
- **a column's kind** (``_sniff_text`` over the winning rows) in one SQL aggregate: a value is
  bool text, an integer (at most 18 digits) or a decimal/exponent number by grammars each a
  subset of what ``pandas.to_numeric`` reads, after Python's ``str.strip`` (every character
  ``str.isspace`` names). A value in none of them is sent to pandas itself (up to
  :data:`SAMPLE` distinct ones): one pandas does not read as a number makes the column text, as
  in pandas; one it does read (``inf``, 19 digits) leaves the delivery to the pandas path;
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

SAMPLE = 1000  # distinct values outside the grammars that pandas decides
# every character Python's str.isspace() names: str.strip() removes these
SPACE = (
    "[\\t\\n\\x{0b}\\x{0c}\\r\\x{1c}-\\x{1f} \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}"
    "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}]"
)
INTEGER = "[+-]?[0-9]{1,18}"
NUMBER = "[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
DIGITS = "[+-]?[0-9]+"


def stripped(column: str) -> str:
    """SQL of ``column``'s text as Python's ``str.strip()`` leaves it."""
    return f"regexp_replace({quoted(column)}, {literal(f'^{SPACE}+|{SPACE}+$')}, '', 'g')"


def blank(column: str) -> str:
    """SQL: the text is empty once stripped (a primary key part pandas counts as null)."""
    return f"regexp_full_match({quoted(column)}, {literal(SPACE + '*')})"


def helpers(index: int) -> dict[str, str]:
    """The columns a parsed field ``index`` adds: its value, whether it is quarantined, whether
    its text is a date (``YYYY-MM-DD``), whether it is shaped as a date and parsed at midnight."""
    return {part: f"_{part}{index}" for part in ("parsed", "bad", "dated", "day")}


def parse_fields(con: duckdb.DuckDBPyConnection, stamps: list[str], epoch: str) -> str:
    """The view ``source``: ``raw`` with the parsed fields' :func:`helpers` columns, each
    distinct text parsed once by pandas (tables ``stamp_{i}``)."""
    joins, columns = [], []
    for index, column in enumerate(stamps):
        table = f"stamp_{index}"
        _parse_distinct(con, column, table, epoch)
        names = helpers(index)
        columns += [f"{table}.{part} AS {name}" for part, name in names.items()]
        joins.append(f"LEFT JOIN {table} ON raw.{quoted(column)} IS NOT DISTINCT FROM {table}.text")
    run(
        con,
        f"CREATE OR REPLACE TEMP VIEW source AS SELECT raw.*, {', '.join(columns)} "
        f"FROM raw {' '.join(joins)}",
    )
    return "source"


def _parse_distinct(con, column: str, table: str, epoch: str) -> None:
    """Table ``table``: each distinct text of ``column`` (null too), parsed by pandas."""
    import pyarrow as pa

    run(
        con,
        f"CREATE TABLE {table} (text VARCHAR, parsed TIMESTAMPTZ, bad BOOLEAN, dated BOOLEAN, "
        "day BOOLEAN)",
    )
    writer = con.cursor()  # the reader holds con's result open
    try:
        reader = con.sql(f"SELECT DISTINCT {quoted(column)} FROM raw").to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            values = batch.column(0).to_pandas().astype("string")
            parsed, bad = transforms.parse_timestamps(values, epoch)
            dated, day = transforms.date_only_parts(values, parsed)
            parts = pa.table(
                {
                    "text": batch.column(0).cast(pa.string()),
                    "parsed": pa.array(parsed, pa.timestamp("us", tz="UTC")),
                    "bad": pa.array(bad.fillna(True).astype(bool)),  # a missing value is bad
                    "dated": pa.array(dated.to_numpy(dtype=bool)),
                    "day": pa.array(day.to_numpy(dtype=bool)),
                }
            )
            writer.register("parts", parts)
            writer.execute(f"INSERT INTO {table} SELECT * FROM parts")
            writer.unregister("parts")
    finally:
        writer.close()


def date_only(con, rows: str, index: int) -> bool:
    """``is_date_only`` of parsed field ``index`` over the valid rows of ``rows``: the first
    valid row's text is a date, and every valid row's is shaped as one at midnight."""
    names = helpers(index)
    [(first, every)] = run(
        con,
        f"SELECT arg_min({names['dated']}, _row), bool_and({names['day']}) FROM {rows} "
        "WHERE _reason IS NULL",
    )
    return bool(first) and bool(every)


def kinds(con, rows: str, columns: list[str]) -> dict[str, str] | None:
    """``_sniff_text`` of each column over ``rows`` (None: a value only pandas can decide is a
    number, so the delivery goes to the pandas path)."""
    if not columns:
        return {}
    parts = []
    for c in columns:
        text = stripped(c)
        parts += [
            f"count({quoted(c)})",
            f"count(*) FILTER (WHERE lower({text}) IN ('true', 'false'))",
            f"count(*) FILTER (WHERE regexp_full_match({text}, {literal(INTEGER)}))",
            f"count(*) FILTER (WHERE regexp_full_match({text}, {literal(NUMBER)}) AND NOT "
            f"regexp_full_match({text}, {literal(DIGITS)}))",
        ]
    [counts] = run(con, f"SELECT {', '.join(parts)} FROM {rows}")
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
    others = run(
        con,
        f"SELECT DISTINCT {quoted(column)} FROM {rows} WHERE {quoted(column)} IS NOT NULL "
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
