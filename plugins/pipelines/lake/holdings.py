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
records it whole again (:func:`change`), as does one after a commit no record covers that
changed rows (a writer killed between its commit and its record). Every writer of the lake
records: a run's commits, a compaction's and a vacuum's (which change no row), emptying a
table, and ``lake upgrade``. A reader (:meth:`Table.outline`) still looks whether the table's
log has a version past the records' newest (one file's existence): then the log answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SINCE = '"since"'  # in a change's JSON text; in a whole record's only inside a partition value
WHOLE_EVERY = 30  # a table's records: a whole one after this many changes, where replays start


@dataclass(frozen=True)
class Holdings:
    """What a table holds at ``version``, as its records say: each partition's rows.

    :param changes: the changes replayed after the whole record they start from
    """

    version: int
    rows: dict[str, int]
    changes: int = field(default=0, compare=False)


def change(recorded: Holdings | None, before: Holdings, after: Holdings) -> dict[str, Any] | None:
    """The ``partitions`` of a record at ``after.version`` (see the module), from what the table
    holds ``before`` and ``after`` a commit (both read from its Delta log) and what the records
    said before it (``recorded``): None when they reach ``after``'s version already; what
    changed since the records' version when they hold what ``before`` holds (commits between
    that changed no row, a compaction's, leave them right); else, and every
    :data:`WHOLE_EVERY` records, every partition (where a reader's replay starts)."""
    if recorded is not None and recorded.version >= after.version:
        return None
    if (
        recorded is None
        or recorded.version > before.version
        or recorded.rows != before.rows
        or recorded.changes + 1 >= WHOLE_EVERY
    ):
        return {"rows": after.rows}
    was, now = recorded.rows, after.rows
    rows = {p: n for p, n in now.items() if was.get(p) != n}
    return {"since": recorded.version, "rows": rows, "gone": sorted(set(was) - set(now))}


def replay(changes: Iterable[tuple[int, dict[str, Any]]]) -> Holdings | None:
    """What the table holds after the ``(version, partitions)`` records ``changes`` (in version
    order, ``partitions`` parsed): the newest whole record, and each change after it that starts
    at the version the one before reached (None: there is no whole record, or a change starts
    elsewhere: a version between them is not recorded). The same change recorded twice (an
    append retried) counts once."""
    version, rows, since, steps = -2, None, None, 0
    for at, said in changes:
        start = said.get("since")
        if start is None:
            rows, steps = dict(said["rows"]), 0
        elif rows is not None and at == version and start == since:
            continue  # recorded twice
        elif rows is None or start != version:
            rows = None  # unknown until a whole record
            continue
        else:
            rows.update(said["rows"])
            for gone in said.get("gone", ()):
                rows.pop(gone, None)
            steps += 1
        version, since = at, start
    return None if rows is None else Holdings(version, dict(sorted(rows.items())), steps)


def is_whole(said: dict[str, Any]) -> bool:
    """Whether the parsed ``partitions`` record ``said`` is a whole record (where a replay can
    start: a reader finds the newest by :data:`SINCE` missing from the text, and parses only
    from it)."""
    return "since" not in said
