"""What every command prints the same way: lines and aligned tables safe for a terminal, counted
nouns, skipped entries.

Every line the commands print goes through :func:`say` (a table through :func:`table`): a value
that holds a control character (an escape sequence that retitles or clears the terminal, a
newline that would split a line or a row) is shown escaped, as Python writes it (``\\x1b``,
``\\n``: :func:`pipelines.common.control_chars.escaped`), and the rest of the text as it is
(``é``, ``中文``). JSON goes through :func:`json_text`: exact JSON, with nothing raw a terminal
would act on. ``--format csv`` and ``env`` print the values exactly: they are for programs.
The exit code of a command that found differences (:data:`DIFFERENCES`) lives here too.
"""

from __future__ import annotations

import json
import sys

from pipelines.common.control_chars import ESCAPES, NAMED, escaped

# JSON may hold a raw newline, tab or return only between its tokens (json.dumps escapes them
# inside strings); any other of them is inside a string, where \uXXXX is the same character
_IN_JSON = {c: f"\\u{c:04x}" for c in ESCAPES if c not in NAMED}


def say(line: object = "", *, file=None, flush: bool = False) -> None:
    """Print one line (a newline inside it is shown as ``\\n``: it stays one line)."""
    print(escaped(line), file=file if file is not None else sys.stdout, flush=flush)


def say_lines(text: object, *, file=None) -> None:
    """Print a text of several lines (an error message, a rendered table), each made safe."""
    for line in str(text).split("\n"):
        say(line, file=file)


def json_text(text: str) -> str:
    """JSON text (``json.dumps``, pandas' ``to_json``) with the characters ``ESCAPES`` names
    written as ``\\uXXXX`` (pandas leaves DEL raw): the same JSON, safe on a terminal."""
    return text.translate(_IN_JSON)


def say_json(body: object, *, default=None) -> None:
    """Print ``body`` as indented JSON (see :func:`json_text`)."""
    print(json_text(json.dumps(body, indent=2, default=default)))


# the exit code of a command that found what it looks for (plan: changes to deploy; namespace
# diff: rows that differ), so CI can fail a check on it; 1 stays an error, 0 nothing found
DIFFERENCES = 2


def table(rows: list[tuple[str, ...]]) -> None:
    """Print rows as left-aligned columns (the first row is the header), each cell escaped."""
    rows = [tuple(escaped(cell) for cell in row) for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def plural(count: int, noun: str) -> str:
    """``1 cookbook``, ``3 cookbooks``."""
    return f"{count} {noun}{'s' * (count != 1)}"


def warn_skipped(project) -> None:
    """Say on standard error which config entries are skipped, and why."""
    for problem in project.problems:
        say(f"warning: skipped: {problem}", file=sys.stderr)


def quiet_airflow() -> None:
    """Point Airflow at the project with its logging quiet, before anything imports it: only the
    command's own lines reach standard output (an S3 lake's connection is looked up by Airflow)."""
    from pipelines.runs.local import configure

    configure(database=False)


def note_unwritten(lake) -> None:
    """On standard error: the namespace has written nothing in this lake yet (a typo in
    ``--namespace`` would otherwise read as a namespace with no data, or a deploy to a new one)."""
    from pipelines.lake.lake import claimed
    from pipelines.runtime.secrets import redact

    if not claimed(lake.storage, lake.prefix):
        say(
            f"note: namespace {lake.namespace} has written nothing in {redact(lake.prefix)} yet "
            "(`pipelines namespace list` shows those that have)",
            file=sys.stderr,
        )
