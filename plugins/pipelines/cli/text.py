"""What every command prints the same way: aligned tables, counted nouns, skipped entries, and
the exit code of a command that found differences."""

from __future__ import annotations

import sys

# the exit code of a command that found what it looks for (plan: changes to deploy; namespace
# diff: rows that differ), so CI can fail a check on it; 1 stays an error, 0 nothing found
DIFFERENCES = 2


def table(rows: list[tuple[str, ...]]) -> None:
    """Print rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def plural(count: int, noun: str) -> str:
    """``1 cookbook``, ``3 cookbooks``."""
    return f"{count} {noun}{'s' * (count != 1)}"


def warn_skipped(project) -> None:
    """Say on standard error which config entries are skipped, and why."""
    for problem in project.problems:
        print(f"warning: skipped: {problem}", file=sys.stderr)


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
        print(
            f"note: namespace {lake.namespace} has written nothing in {redact(lake.prefix)} yet "
            "(`pipelines namespace list` shows those that have)",
            file=sys.stderr,
        )
