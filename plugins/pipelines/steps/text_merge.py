"""A text delivery (CSV: every column as delivered text) typed in DuckDB by the pandas path's rules.

The pandas path (:mod:`.merge`, :mod:`.schema`, :mod:`pipelines.common.inference` and
:mod:`~pipelines.common.transforms`) types text in four places, each stated here so that DuckDB
gives the same values:

- **the incremental and partition fields**: text of one plain ISO 8601 form (:data:`ISO`) is
  cast by DuckDB; any other is parsed by pandas itself (``parse_timestamps``: the other ISO
  forms, numbers as epoch units), once per distinct value, batch by batch into a table DuckDB
  joins. pandas' ISO 8601 parser has more forms than any SQL format list, so the rule keeps its
  one owner. ``is_date_only`` is read in SQL (every valid value shaped as a date, at midnight)
  and by pandas' own test on the first valid value;
- **a primary key's kind** (``inference.key_kind``, over every delivered value) from counts in
  SQL (:func:`key_kinds`); a key whose values are all shaped as ``KEY_TIME`` is parsed as the
  fields are, and stays text if one does not parse (:func:`unparsed`);
- **a column's kind** (``inference.text_kind`` over the winning rows) in one SQL aggregate
  (:func:`kinds`), after Python's ``str.strip`` (every character ``str.isspace`` names): the
  grammars are the inference's, an int fits BIGINT, and a float's exactness
  (``Decimal(repr(float(t))) == Decimal(t)``) is decided without Python: a decimal of at most
  15 digits and no exponent is exact, any other is compared, as sign, significant digits and
  exponent, with DuckDB's text of its DOUBLE (the shortest that reads back, as Python's
  ``repr``; tests/unit/test_text_merge.py checks it on 40,000 numbers);
- **the conversion** of each kind: ``CAST`` of the stripped text (DuckDB's double parser gives
  ``pandas.to_numeric``'s values), true/false by lower-case text, the fields and timestamp keys
  parsed above (as a date for a field delivered as dates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.common import inference, transforms
from pipelines.lake.engine import BATCH_ROWS, literal, quoted, run

if TYPE_CHECKING:
    import duckdb

# every character Python's str.isspace() names: str.strip() removes these
SPACES = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in SPACES) + "]"
SHORT_INT = "(0|-?[1-9][0-9]{0,17})"  # inference.INT that always fits BIGINT
LONG_INT = "-?[1-9][0-9]{18}"  # fits if the cast says so
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


def kinds(con, rows: str, columns: list[str]) -> dict[str, str]:
    """``inference.text_kind`` of each column over ``rows``: a column whose sampled value is no
    bool and no number is text (:func:`_sampled`); the others are counted in one aggregate
    (and one more query for a column of decimals some of which are long: :func:`_inexact`)."""
    if not columns:
        return {}
    sample = _sampled(con, rows, columns)
    found = {c: "string" for c, v in sample.items() if v is not None and not _may_be_typed(v)}
    counted = [c for c in columns if c not in found]
    if not counted:
        return {c: found[c] for c in columns}
    source, parts = _stripped(rows, counted), []
    for at, c in enumerate(counted):
        parts += [
            f"count({quoted(c)})",
            f"count(*) FILTER (WHERE lower(_s{at}) IN ('true', 'false'))",
            *_number_counts(at),
        ]
    [counts] = run(con, f"SELECT {', '.join(parts)} FROM {source}")
    for at, c in enumerate(counted):
        values, bools, ints, short, long = counts[5 * at : 5 * at + 5]
        floats = _floats(con, source, f"_s{at}", (values, short, long))
        found[c] = _kind(values, bools, ints, floats)
    return {c: found[c] for c in columns}


SAMPLED_ROWS = 10_000  # where a column's sampled value comes from


def _sampled(con, rows: str, columns: list[str]) -> dict[str, str | None]:
    """A stripped value of each column that is neither null nor blank, from the first rows of
    ``rows`` (None: none there). One value that fits no kind decides a column: most text
    columns are decided without a pass over the delivery."""
    values = ", ".join(
        f"any_value(_s{at}) FILTER (WHERE _s{at} <> '')" for at in range(len(columns))
    )
    limited = f"(SELECT * FROM {rows} LIMIT {SAMPLED_ROWS})"
    [found] = run(con, f"SELECT {values} FROM {_stripped(limited, columns)}")
    return dict(zip(columns, found, strict=True))


def _may_be_typed(value: str) -> bool:
    return value.lower() in ("true", "false") or inference.FLOAT_TEXT.fullmatch(value) is not None


def _stripped(rows: str, columns: list[str]) -> str:
    """SQL: ``rows`` with each column's :func:`stripped` text as ``_s{at}``, and whether it is
    an ``inference.FLOAT`` as ``_d{at}``."""
    named = ", ".join(map(quoted, columns))
    texts = ", ".join(f"{stripped(c)} AS _s{at}" for at, c in enumerate(columns))
    decimals = ", ".join(f"{_decimal(f'_s{at}')} AS _d{at}" for at in range(len(columns)))
    return f"(SELECT *, {decimals} FROM (SELECT {named}, {texts} FROM {rows}))"


def _kind(values: int, bools: int, ints: int, floats: int) -> str:
    """The kind the counts of a column's values (not null) decide."""
    if not values:
        return "null"
    if bools == values:
        return "bool"
    if ints == values:
        return "int"
    if floats == values:
        return "float"
    return "string"


def _number_counts(at: int) -> list[str]:
    """SQL aggregates of column ``at`` of :func:`_stripped`: its ints (:func:`is_int`), its
    short decimals and its long ones (see :func:`is_float`), from its one grammar match."""
    text, decimal = f"_s{at}", f"_d{at}"
    power = f"(contains({text}, 'e') OR contains({text}, 'E'))"
    # inference.INT: a decimal with no point, no exponent, and not -0
    plain = f"{decimal} AND NOT contains({text}, '.') AND NOT {power} AND {text} <> '-0'"
    fits = f"length({text}) - starts_with({text}, '-')::INT <= 18 OR {_fits(text)}"
    digits = f"length({text}) - starts_with({text}, '-')::INT - contains({text}, '.')::INT"
    short = f"NOT {power} AND {digits} <= {inference.SHORT_DIGITS}"
    return [
        f"count(*) FILTER (WHERE {plain} AND ({fits}))",
        f"count(*) FILTER (WHERE {decimal} AND {short})",
        f"count(*) FILTER (WHERE {decimal} AND NOT ({short}))",
    ]


def _floats(con, source: str, text: str, counts: tuple[int, int, int]) -> int:
    """The number of floats by the rule, from the counts of values, short decimals and long
    ones; the long ones are checked only when every value is a decimal (else the column is no
    float whatever they are)."""
    values, short, long = counts
    if not long or short + long < values:
        return short + long
    return short + long - _inexact(con, source, text)


def _inexact(con, source: str, text: str) -> int:
    """The number of long decimals in ``text`` of ``source`` whose float64 is another number."""
    long = f"{_decimal(text)} AND NOT {_short(text)}"
    return run(con, f"SELECT count(*) FROM {source} WHERE {long} AND NOT {_exact(text)}")[0][0]


def is_int(text: str) -> str:
    """SQL: the stripped ``text`` is an int by ``inference.is_int_text``."""
    long = f"regexp_full_match({text}, {literal(LONG_INT)}) AND {_fits(text)}"
    return f"(regexp_full_match({text}, {literal(SHORT_INT)}) OR ({long}))"


def _fits(text: str) -> str:
    return f"TRY_CAST({text} AS BIGINT) IS NOT NULL"


def is_float(text: str) -> str:
    """SQL: the stripped ``text`` is a float by ``inference.is_float_text``: a decimal, short
    (15 digits at most, no exponent: always exact) or exact (:func:`_exact`)."""
    return f"({_decimal(text)} AND ({_short(text)} OR {_exact(text)}))"


def _decimal(text: str) -> str:
    return f"regexp_full_match({text}, {literal(inference.FLOAT)})"


def _short(text: str) -> str:
    digits = f"length({text}) - starts_with({text}, '-')::INT - contains({text}, '.')::INT"
    return f"({digits} <= {inference.SHORT_DIGITS} AND NOT regexp_matches({text}, '[eE]'))"


def _exact(text: str) -> str:
    """SQL: the decimal ``text`` says the number DuckDB's text of its DOUBLE says (the shortest
    that reads back, as Python's ``repr``), compared as :func:`_canonical` forms."""
    shortest = f"CAST(TRY_CAST({text} AS DOUBLE) AS VARCHAR)"
    return f"coalesce({_canonical(text)} = {_canonical(shortest)}, false)"


def _canonical(number: str) -> str:
    """SQL: a number's text (``inference.FLOAT``, or DuckDB's text of a DOUBLE) as its sign,
    significant digits and exponent (``-15e-1`` for ``-1.50``), ``0`` for zero; null for an
    exponent of ``inference.EXPONENT_DIGITS`` digits or more, or for ``inf`` and ``nan``."""
    mantissa = f"regexp_extract({number}, '^-?([0-9]+([.][0-9]+)?)', 1)"
    digits = f"replace({mantissa}, '.', '')"
    fraction = f"length(regexp_extract({mantissa}, '[.]([0-9]+)', 1))"
    power = f"regexp_extract({number}, '[eE]([-+]?[0-9]+)$', 1)"
    digits_of_power = f"length(ltrim(ltrim({power}, '+-'), '0'))"
    exponent = (
        f"CASE WHEN {digits_of_power} < {inference.EXPONENT_DIGITS} "
        f"THEN CAST(CASE {power} WHEN '' THEN '0' ELSE {power} END AS HUGEINT) END"
    )
    significant = f"ltrim({digits}, '0')"
    core = f"rtrim({significant}, '0')"
    shift = f"{exponent} - {fraction} + length({significant}) - length({core})"
    sign = f"CASE WHEN starts_with({number}, '-') THEN '-' ELSE '' END"
    return (
        f"(CASE WHEN {mantissa} = '' OR {exponent} IS NULL THEN NULL WHEN {core} = '' THEN '0' "
        f"ELSE {sign} || {core} || 'e' || CAST({shift} AS VARCHAR) END)"
    )


def key_kinds(con, rows: str, columns: list[str], stored: dict[str, str]) -> dict[str, str]:
    """``inference.key_kind`` of each key column over ``rows`` (``stored``: the cleaned table's
    kinds), from counts (a sampled value that is no date and time decides a key the table does
    not hold as a number); a ``timestamp`` key holds if :func:`unparsed` finds none of its
    values that did not parse."""
    if not columns:
        return {}
    sample = _sampled(con, rows, columns)
    found = {
        c: "string"
        for c, v in sample.items()
        if v is not None
        and stored.get(c) not in ("int", "float")
        and not inference.KEY_TIME_TEXT.fullmatch(v)
    }
    counted = [c for c in columns if c not in found]
    if not counted:
        return {c: found[c] for c in columns}
    source, parts = _stripped(rows, counted), []
    for at in range(len(counted)):
        parts += [  # a blank key is stripped to '' (null: a null key)
            f"count(*) FILTER (WHERE _s{at} <> '')",
            *_number_counts(at),
            f"count(*) FILTER (WHERE regexp_full_match(_s{at}, {literal(inference.KEY_TIME)}))",
        ]
    [counts] = run(con, f"SELECT {', '.join(parts)} FROM {source}")
    for at, c in enumerate(counted):
        values, ints, short, long, times = counts[5 * at : 5 * at + 5]
        floats = _floats(con, source, f"_s{at}", (values, short, long))
        found[c] = inference.choose_key_kind(
            stored.get(c), values=values, ints=ints, floats=floats, times=times
        )
    return {c: found[c] for c in columns}


def unparsed(con, rows: str, column: str, index: int) -> bool:
    """Whether a value of parsed column ``index`` (neither null nor blank) did not parse."""
    bad = helpers(index)["bad"]
    sql = f"SELECT count(*) FROM {rows} WHERE {bad} AND {quoted(column)} IS NOT NULL"
    return run(con, f"{sql} AND NOT {blank(column)}")[0][0] > 0


def converted(column: str, kind: str) -> str:
    """SQL of a text column as ``coerce`` converts it to ``kind`` (not a parsed field)."""
    if kind == "int":
        return f"CAST({stripped(column)} AS BIGINT)"
    if kind == "float":
        return f"CAST({stripped(column)} AS DOUBLE)"
    if kind == "bool":
        return f"CASE lower({stripped(column)}) WHEN 'true' THEN true WHEN 'false' THEN false END"
    return quoted(column)  # string, null: the text as delivered


def key_value(column: str, kind: str) -> str:
    """SQL of a key column in its kind from :func:`key_kinds` (not ``timestamp``: parsed as the
    fields are): an int or float key as converted (null where blank: a quarantined row), a text
    key as delivered."""
    if kind in ("int", "float"):
        return f"TRY_{converted(column, kind)}"
    return quoted(column)
