"""A local CSV source read by DuckDB exactly as the pandas path reads it (:mod:`.sources`).

The pandas path reads CSV as text: ``dtype="string"``, the delimiter and encoding of the
registry's options, ``""`` and the ``null=`` strings as null (with pandas' numeric spellings of
them: ``null=999`` also nulls ``999.0``), blank and whitespace-only lines skipped, a row shorter
than the header padded with nulls. DuckDB's ``read_csv`` states the same rules here, and where
DuckDB would read a file differently without failing, the file is left to pandas
(:meth:`CsvSource.of` or :meth:`CsvSource.rows` say None):

- the header is parsed by pandas itself, from the file's first MiB (its names: ``a.1`` for a
  second ``a``, ``Unnamed: 2`` for an empty one); a file whose first line is blank, or whose
  header does not end in that MiB, goes to pandas;
- a row with more fields than the header (pandas fails, or takes the first column as an index;
  DuckDB drops a trailing empty field) is seen in one extra column DuckDB reads, and sends the
  file to pandas;
- whitespace between a quote and the delimiter or line end (``"x" ,1``, ``1, "x"``: DuckDB
  trims it, pandas keeps it) sends the file to pandas, as does any file DuckDB refuses (an
  unterminated quote, a byte its encoding cannot decode, a line over 2 MB);
- encodings: UTF-8 (with or without BOM) and latin-1; any other goes to pandas.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass

from pipelines.lake.engine import literal, quoted, run
from pipelines.project.registry import SourceOptions
from pipelines.steps import sources

ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "iso8859-1": "latin-1"}  # Python -> DuckDB
HEADER_BYTES = 1 << 20  # the header must end within the file's first MiB
SCAN_BYTES = 1 << 24
LINES = re.compile(r"\r\n|\r|\n")
# a field no CSV can hold unquoted (quoted values are never null to DuckDB here): DuckDB gives
# every field as read, padding short rows with real nulls, and the SQL nulls the null strings
NEVER = "\n"


def null_strings(nulls: tuple[str, ...]) -> list[str]:
    """The fields pandas reads as null for ``na_values=["", *nulls]``: each string, and for one
    that is a whole number as a float, its integer and ``.0`` spellings (pandas'
    ``_stringify_na_values``: ``999`` -> ``999``, ``999.0``; ``-0.0`` -> ``0``, ``0.0``)."""
    found = []
    for value in ("", *nulls):
        found.append(value)
        try:
            number = float(value)
            if number == int(number):
                found += [f"{int(number)}.0", str(int(number))]
        except (ValueError, OverflowError):
            continue
    return sorted(set(found))


@dataclass(frozen=True)
class CsvSource:
    """A CSV file DuckDB can read as pandas would: its path, the pandas path's column names, how
    DuckDB reads it."""

    path: str
    names: list[str]
    options: SourceOptions
    quotes: bool  # the file holds a quote character: read in one thread (quoted newlines)

    @classmethod
    def of(cls, path: str, options: SourceOptions) -> CsvSource | None:
        """The source, or None when the pandas path must read it (see the module)."""
        try:
            encoding = codecs.lookup(options.encoding).name
        except LookupError:
            return None
        if encoding not in ENCODINGS:
            return None
        delimiter = options.delimiter.encode(ENCODINGS[encoding])  # utf-8-sig: no BOM
        if len(delimiter) != 1 or delimiter in b' \r\n"':
            return None
        names = _header(path, options)
        if names is None or {"_row", "ds"} & set(names):
            return None  # pandas overwrites those with its own
        quotes = _quotes(path, delimiter)
        if quotes is None:
            return None
        return cls(path, names, options, quotes)

    @property
    def extra(self) -> str:
        """The extra column a field past the header would land in."""
        name = "_extra"
        while name in self.names:
            name += "_"
        return name

    def relation(self) -> str:
        """The ``read_csv`` call: every field as read (a row's missing fields null)."""
        options = self.options
        encoding = ENCODINGS[codecs.lookup(options.encoding).name]
        columns = ", ".join(f"{literal(n)}: 'VARCHAR'" for n in [*self.names, self.extra])
        return (
            f"read_csv({literal(self.path)}, columns = {{{columns}}}, header = true, "
            f"auto_detect = false, delim = {literal(options.delimiter)}, quote = '\"', "
            f"escape = '\"', nullstr = [{literal(NEVER)}], allow_quoted_nulls = false, "
            f"null_padding = true, encoding = {literal(encoding)}, "
            f"parallel = {'false' if self.quotes else 'true'})"
        )

    def _blank(self) -> str:
        """A whitespace-only line (pandas skips it; DuckDB gives its spaces as the first field
        and pads the rest)."""
        first, *rest = [*self.names, self.extra]
        padded = "".join(f" AND {quoted(c)} IS NULL" for c in rest)
        return f"regexp_full_match({quoted(first)}, '[ \\t]+'){padded}"

    def rows(self, con) -> int | None:
        """The number of rows pandas would give, reading the whole file once (None: DuckDB
        refuses the file, or a row has more fields than the header)."""
        import duckdb

        sql = (
            f"SELECT count(*) FILTER (WHERE NOT ({self._blank()})), count({quoted(self.extra)}) "
            f"FROM {self.relation()}"
        )
        try:
            [(rows, extra)] = run(con, sql)
        except duckdb.Error:
            return None
        return rows if not extra else None

    def select(self) -> str:
        """The rows as the pandas path reads them: the null strings null, blank lines gone."""
        nulls = ", ".join(literal(n) for n in null_strings(self.options.nulls))
        columns = ", ".join(
            f"CASE WHEN {quoted(n)} IN ({nulls}) THEN NULL ELSE {quoted(n)} END AS {quoted(n)}"
            for n in self.names
        )
        return f"SELECT {columns} FROM {self.relation()} WHERE NOT ({self._blank()})"


def _header(path: str, options: SourceOptions) -> list[str] | None:
    """The column names the pandas path gives the file (None: leave the file to pandas)."""
    import pandas as pd

    with open(path, "rb") as fh:
        data = fh.read(HEADER_BYTES + 1)
    if len(data) > HEADER_BYTES:
        data = data[: data.rfind(b"\n", 0, HEADER_BYTES) + 1]
    try:
        text = data.decode(options.encoding)
    except UnicodeDecodeError:
        return None
    first = LINES.split(text.lstrip("\ufeff"), maxsplit=1)[0]
    if not first.strip(" \t"):
        return None  # pandas looks past blank lines for its header; DuckDB takes the first
    try:
        frame = pd.read_csv(io.StringIO(text), nrows=0, **sources.csv_options(options))
    except (ValueError, UnicodeDecodeError):
        return None
    return [str(c) for c in frame.columns]


def _quotes(path: str, delimiter: bytes) -> bool | None:
    """Whether the file holds a quote character (None: a field has spaces or tabs between its
    quotes and the delimiter or line end, which DuckDB trims and pandas keeps)."""
    space = b" " if delimiter == b"\t" else b" \t"
    edge = b"[" + re.escape(delimiter) + b"\r\n]"
    trimmed = re.compile(edge + b"[" + space + b']+"|"[' + space + b"]+" + edge)
    found = False
    with open(path, "rb") as fh:
        tail = b"\n"  # the file starts a line
        while chunk := fh.read(SCAN_BYTES):
            data = tail + chunk
            found = found or b'"' in data
            if found and trimmed.search(data):
                return None
            end = len(data.rstrip(space))  # a match across chunks: keep what it could start
            tail = data[max(0, end - 2) :]
    if found and trimmed.search(tail + b"\n"):  # the file ends a line
        return None
    return found
