"""What a table holds (each partition's rows), as the namespace's runs table records it with each
commit (the ``partitions`` column of :mod:`.runs`), so that a command that asks it of every table
(``status``) reads the runs table once instead of opening each table's Delta log.

A record's ``partitions`` says what changed between two versions of the table, both read from its
Delta log by the writer: ``{"since": V, "rows": {partition: rows}, "gone": [partition, ...]}``
(the partitions whose rows at the record's ``version`` differ from those at version V, and the
partitions removed), or, without ``since``, every partition and its rows (a whole record).
Replayed in version order from the newest whole record (:func:`replay`), the changes give what
the table holds as long as each starts at the version the one before it reached. Where one does
not (a version no record covers: records from before the column, two writers' records
interleaved), the records cannot say: the table's own log answers, and its next recorded commit
records it whole again (:func:`change`), as does one after a commit no record covers (a writer
killed between its commit and its record). Every writer of the lake records: a run's commits, a
compaction's and a vacuum's (which change no row), emptying a table, and ``lake upgrade``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Holdings:
    """What a table holds at ``version``, as its records say: each partition's rows."""

    version: int
    rows: dict[str, int]


def change(recorded: Holdings | None, before: Holdings, after: Holdings) -> dict[str, Any] | None:
    """The ``partitions`` of a record at ``after.version`` (see the module): what the table holds
    ``before`` and ``after`` a commit (both read from its Delta log), ``recorded`` what the
    records said before it. The partitions that changed, when the records held ``before``; every
    partition, when they could not say or said another version; None when nothing changed and
    the records say so already."""
    if recorded is None or recorded.version != before.version:
        return {"rows": after.rows}
    if after.version == before.version:
        return None
    was, now = before.rows, after.rows
    rows = {p: n for p, n in now.items() if was.get(p) != n}
    return {"since": before.version, "rows": rows, "gone": sorted(set(was) - set(now))}


def replay(changes: Iterable[tuple[int, str]]) -> Holdings | None:
    """What the table holds after the ``(version, partitions)`` records ``changes`` (in version
    order): the newest whole record, and each change after it that starts at the version the
    one before reached (None: there is no whole record, or a change starts elsewhere: a version
    between them is not recorded). The same change recorded twice (an append retried) counts
    once."""
    version, rows, since = -2, None, None
    for at, text in changes:
        said = json.loads(text)
        start = said.get("since")
        if start is None:
            rows = dict(said["rows"])
        elif rows is not None and at == version and start == since:
            continue  # recorded twice
        elif rows is None or start != version:
            rows = None  # unknown until a whole record
            continue
        else:
            rows.update(said["rows"])
            for gone in said.get("gone", ()):
                rows.pop(gone, None)
        version, since = at, start
    return None if rows is None else Holdings(version, dict(sorted(rows.items())))
