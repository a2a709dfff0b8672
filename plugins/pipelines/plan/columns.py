"""What a change of a dataset's declared columns (its ``columns.yaml`` entry, recorded under the
config's ``columns`` key) implies for ``pipelines plan``.

The recorded entry is compared part by part: a column's ``type``, ``format`` or ``rename``, or the
``new_columns`` and ``bad_values`` contracts, decide what the cleaned table holds, so a change of
one rebuilds it (as a key change does); a column's tests or the dataset's table tests only decide
which rows pass and which days land, so a change of those re-runs the existing days ("recheck").
An undeclared dataset (no ``columns`` recorded) reads as an empty declaration with the default
contracts: declaring only tests on a dataset is a recheck, not a rebuild.
"""

from __future__ import annotations

from typing import Any

from pipelines.plan.changes import FieldChange

FIELD = "columns"  # the config key :func:`pipelines.project.table_config.of_dataset` records
UNDECLARED = {"new_columns": "evolve", "bad_values": "discard_row", "tests": {}, "columns": {}}
REBUILT_BY = ("type", "format", "rename", "new_columns", "bad_values")
NO_COLUMN = {"type": None, "format": None, "rename": None, "tests": []}


def expand(fields: tuple[FieldChange, ...]) -> tuple[FieldChange, ...]:
    """``fields`` with a change of ``columns`` replaced by one change per part that differs
    (``columns.amount.type``, ``columns.new_columns``, ``columns.tests`` ...), in place."""
    out: list[FieldChange] = []
    for f in fields:
        out += _parts(f.before, f.after) if f.name == FIELD else [f]
    return tuple(out)


def rebuilds(fields: tuple[FieldChange, ...]) -> list[str]:
    """The expanded parts whose change rebuilds the cleaned table."""
    return [f.name for f in fields if _is_part(f) and f.name.rsplit(".", 1)[1] in REBUILT_BY]


def rechecks(fields: tuple[FieldChange, ...]) -> list[str]:
    """The expanded parts whose change re-runs the existing days (tests only)."""
    return [f.name for f in fields if _is_part(f) and f.name.endswith(".tests")]


def _is_part(f: FieldChange) -> bool:
    return f.name.startswith(f"{FIELD}.")


def _parts(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    before, after = before or UNDECLARED, after or UNDECLARED
    found = [
        FieldChange(f"{FIELD}.{key}", before.get(key) or None, after.get(key) or None)
        for key in ("new_columns", "bad_values", "tests")
        if before.get(key) != after.get(key)
    ]
    old, new = before.get("columns") or {}, after.get("columns") or {}
    for column in dict.fromkeys([*new, *old]):
        was, now = old.get(column, NO_COLUMN), new.get(column, NO_COLUMN)
        found += [
            FieldChange(f"{FIELD}.{column}.{part}", was.get(part) or None, now.get(part) or None)
            for part in NO_COLUMN
            if was.get(part) != now.get(part)
        ]
    return found
