"""Setting a table's damaged files aside and putting it back at its last good version: the lake's
half of ``pipelines repair`` (the steps rerun what the damaged versions held,
:mod:`pipelines.steps.repair`).

Nothing is deleted: a damaged file is copied to ``{namespace}/_damaged/{when}/`` (its path under
the namespace kept) before it leaves its table, where no vacuum looks. A damaged log entry goes
with every entry after it (a reader replays them all, and they build on it); the table is then
at the version before it, and a commit that changes no row (a table property, ``pipelines
.repaired``) is made for each entry set aside, so its versions keep counting up: the runs table's
records name versions, and a version number never comes back with other rows. A damaged
checkpoint goes with its pointer (readers then replay the log entries, still there). A damaged
data file of the newest version: the table is restored (Delta's restore, a new commit) to the
version before the first commit that added one, whose files are intact.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from pipelines.exceptions import LakeError
from pipelines.lake import damage, delta
from pipelines.lake.damage import Damage
from pipelines.lake.storage import Storage
from pipelines.runtime.secrets import redact

ASIDE = "_damaged"  # {namespace}/_damaged/{when}/...: the damaged files, kept
REPAIRED = "pipelines.repaired"  # the table property a no-row commit of a repair sets
_ADDED = re.compile(r'"add":\{"path":"([^"]+)"')


@dataclass
class Healed:
    """What was done to one table.

    :param moved: ``(file, where it is kept now)`` of each damaged file set aside
    :param lost_from: the first version whose rows are gone from the table now (the runs that
        made it and every later one are to be rerun); None: no version's rows were lost
    :param restored: the version whose rows the table holds again (None: no restore)
    :param version: the table's version after the repair (-1: no table is left)
    :param salvaged: rows of the entries set aside that were committed again (a runs table)
    """

    path: str
    damage: list[Damage]
    moved: list[tuple[str, str]] = field(default_factory=list)
    lost_from: int | None = None
    restored: int | None = None
    version: int = -1
    salvaged: int = 0


def find(path: str, storage: Storage) -> list[Damage]:
    """Every damaged file of the table's log and of its newest version's data (an empty list:
    the table is sound, or not there)."""
    found = damage.log_damage(path, storage)
    if found:
        return found
    opened = delta.open_table(path, storage)
    return damage.data_damage(opened, storage) if opened is not None else []


def aside_folder(prefix: str, when: dt.datetime | None = None) -> str:
    """Where a repair keeps the files it sets aside: ``{prefix}/_damaged/{UTC time}``."""
    when = when or dt.datetime.now(dt.UTC)
    return f"{prefix.rstrip('/')}/{ASIDE}/{when:%Y%m%dT%H%M%S%fZ}"


def heal(
    path: str, storage: Storage, prefix: str, aside: str, *, whole: bool = False
) -> Healed | None:
    """Set the table's damaged files aside (under ``aside``, their path below ``prefix`` kept)
    and put the table back at its last good version; None when nothing is damaged. Each data
    file of the newest version is read: its footer, or (``whole``) all of it, so that a file of
    the right size with a byte changed counts as damaged too.

    :raises LakeError: the table cannot be put back (no good version is left on disk)
    :raises OutsideNamespace: a symbolic link is on the way to the table or in it, as for any
        write of the table (:func:`~pipelines.lake.delta.guard`): nothing is moved
    """
    found = damage.log_damage(path, storage)
    healed = Healed(path, found)
    if found:
        delta.guard(storage, path)  # before anything moves: no link on the way or in the table
        _heal_log(healed, storage, prefix, aside)
    opened = delta.open_table(path, storage)
    read = damage.WHOLE if whole else damage.FOOTER
    files = damage.data_damage(opened, storage, read=read) if opened is not None else []
    if files:
        delta.guard(storage, path)
        healed.damage += files
        _heal_files(healed, opened, files, storage, prefix, aside)
    if not healed.damage:
        return None
    now = delta.open_table(path, storage)
    healed.version = now.version() if now is not None else -1
    return healed


def _heal_log(healed: Healed, storage: Storage, prefix: str, aside: str) -> None:
    path, found = healed.path, healed.damage
    folder = f"{path}/{damage.LOG}"
    names = storage.list(folder)
    versions = sorted(v for v in map(damage.commit_version, names) if v is not None)
    bad = [d.version for d in found if d.kind == "commit" and d.version is not None]
    moving: list[str] = []
    if any(d.kind == "checkpoint" for d in found):
        moving += [d.path.rsplit("/", 1)[1] for d in found if d.kind == "checkpoint"]
        if damage.LAST_CHECKPOINT in names:
            moving.append(damage.LAST_CHECKPOINT)
    first = min(bad) if bad else None
    if first is not None:  # newest first: a reader never meets a gap in the log
        moving += [f"{v:020d}.json" for v in reversed(versions) if v >= first]
    for name in dict.fromkeys(moving):
        healed.moved.append(
            (f"{folder}/{name}", _set_aside(storage, f"{folder}/{name}", prefix, aside))
        )
    if first is None:
        return
    healed.lost_from = first
    healed.restored = first - 1 if first > 0 else None
    if first > 0:
        _count_up(path, storage, versions[-1])


def _count_up(path: str, storage: Storage, newest: int) -> None:
    """Commit no-row versions (a table property) until the table is at ``newest`` again."""
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    while delta.open_table(path, storage).version() < newest:
        delta.set_properties(path, storage, {REPAIRED: stamp})


def _heal_files(
    healed: Healed, opened, files: list[Damage], storage: Storage, prefix: str, aside: str
) -> None:
    """Restore the version before the first commit that added a damaged file, then set the
    files aside."""
    root = opened.table_uri.removeprefix("file://").rstrip("/")
    wanted = {f.path for f in files}
    added = _added_at(healed.path, storage, opened.version(), wanted, root)
    if added is None or added == 0:
        raise LakeError(
            f"{redact(files[0].path)} is damaged ({files[0].why}) and no earlier version of "
            f"{redact(healed.path)} without it is on disk: rerun the table's days after "
            "moving the table aside"
        )
    before = delta.open_table(healed.path, storage, added - 1)
    if damage.data_damage(before, storage):
        raise LakeError(
            f"{redact(healed.path)}: version {added - 1}, before the damaged files, is damaged "
            "too (or vacuumed): it cannot be restored"
        )
    delta.restore(healed.path, storage, added - 1)
    for f in files:
        healed.moved.append((f.path, _set_aside(storage, f.path, prefix, aside)))
    healed.lost_from = added if healed.lost_from is None else min(added, healed.lost_from)
    healed.restored = added - 1


def _added_at(path: str, storage: Storage, newest: int, wanted: set[str], root: str) -> int | None:
    """The oldest version whose log entry adds one of the files ``wanted`` (None: no entry on
    disk says)."""
    found = None
    folder = f"{path}/{damage.LOG}"
    names = set(storage.list(folder))
    for version in range(newest, -1, -1):
        name = f"{version:020d}.json"
        if name not in names:
            break  # older entries are gone (a checkpoint holds them)
        text = storage.read(f"{folder}/{name}").decode("utf-8", "replace")
        for rel in _ADDED.findall(text):
            if f"{root}/{unquote(rel)}" in wanted:
                found = version
    return found


def _set_aside(storage: Storage, path: str, prefix: str, aside: str) -> str:
    """Copy the file at ``path`` to ``aside`` (its path under ``prefix`` kept) and delete it;
    where it is now."""
    rest = path[len(prefix.rstrip("/")) :].lstrip("/") if path.startswith(prefix) else path
    target = f"{aside}/{rest.lstrip('/')}"
    storage.write(target, storage.read(path))
    storage.delete([path])
    return target


def salvage(healed: Healed, storage: Storage) -> int:
    """Commit again the rows the log entries set aside had appended (an append-only table: the
    runs table): the data files they added are intact, and named in what is left of their
    text (or, when the cut fell there, are the files no version names that are newer than the
    version restored). Entries that removed files (a compaction) changed no row and are not
    replayed. The rows committed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if healed.lost_from is None:
        return 0
    opened = delta.open_table(healed.path, storage)
    root = opened.table_uri.removeprefix("file://").rstrip("/") if opened is not None else ""
    named: set[str] = set()
    unnamed = False
    for source, kept in healed.moved:
        version = damage.commit_version(source.rsplit("/", 1)[1])
        if version is None or version < healed.lost_from:
            continue
        text = storage.read(kept).decode("utf-8", "replace")
        if '"remove":' in text and '"DELETE"' not in text:
            continue
        paths = {f"{root}/{unquote(rel)}" for rel in _ADDED.findall(text)}
        present = {p for p in paths if storage.exists(p)}
        named |= present
        unnamed |= not present
    if unnamed:
        named |= _orphans(opened, storage, root, healed)
    if not named:
        return 0
    pieces = [pq.read_table(pa.BufferReader(storage.read(p))) for p in sorted(named)]
    rows = pa.concat_tables(pieces, promote_options="default")
    if rows.num_rows:
        delta.append(healed.path, storage, rows, merge_schema=True)
    healed.salvaged = rows.num_rows
    return rows.num_rows


def keep_added(healed: Healed, storage: Storage, prefix: str, aside: str) -> list[str]:
    """Copy the data files the log entries set aside had added to ``aside`` too (when what
    they held cannot be made again, a vacuum would otherwise delete the last copy); where they
    are kept."""
    root = healed.path.rstrip("/")
    kept = []
    for source, where in healed.moved:
        if damage.commit_version(source.rsplit("/", 1)[1]) is None:
            continue
        text = storage.read(where).decode("utf-8", "replace")
        for rel in _ADDED.findall(text):
            path = f"{root}/{unquote(rel)}"
            if storage.exists(path):
                rest = path[len(prefix.rstrip("/")) :].lstrip("/")
                storage.write(f"{aside}/{rest}", storage.read(path))
                kept.append(f"{aside}/{rest}")
    return kept


def _orphans(opened, storage: Storage, root: str, healed: Healed) -> set[str]:
    """The data files no version of the table names now, written after the version kept."""
    referenced = {unquote(u.removeprefix("file://")) for u in opened.file_uris()}
    folder = f"{healed.path}/{damage.LOG}"
    since = 0.0
    if healed.restored is not None:
        try:
            since = storage.mtime(f"{folder}/{healed.restored:020d}.json")
        except FileNotFoundError:
            since = 0.0
    return {
        p
        for p, _ in storage.files(root)
        if p.endswith(".parquet")
        and f"/{damage.LOG}/" not in p
        and p not in referenced
        and storage.mtime(p) >= since
    }


def moved_text(healed: Healed) -> str:
    """Where the files set aside are, in a line."""
    return "; ".join(f"{redact(a)} kept as {redact(b)}" for a, b in healed.moved)
