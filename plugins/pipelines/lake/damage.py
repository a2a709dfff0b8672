"""Finding the damaged files of a Delta table: a log entry cut short or emptied, a checkpoint that
does not read, a data file whose size is not the one its log entry recorded (one byte cut, or
none left), or, when asked (``pipelines repair``), one of the right size that does not read as
Parquet (a byte changed): its footer, or the whole file.

delta-rs reports such a file as a parse error that names no file ("Json error: Truncated
record"), and accepts an empty log entry as a commit of nothing (the version's rows silently
gone). Every reader and writer of the package asks here when delta-rs or Arrow fails, or before
it reads data files, and says which file it is in one line (:class:`CorruptFile`);
``pipelines repair`` (:mod:`pipelines.lake.heal`) sets it aside and restores the table.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from pipelines.exceptions import CorruptFile
from pipelines.lake.storage import Storage, plain
from pipelines.runtime.secrets import redact

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger(__name__)
LOG = "_delta_log"
LAST_CHECKPOINT = "_last_checkpoint"
FEW = 8  # folders listed one by one on S3 for their files' sizes (more: the table, once)
# what delta-rs and Arrow say of a file that does not parse (the error names no file)
SYMPTOMS = ("json error", "parquet", "magic bytes", "eof", "truncated", "deserialize", "invalid")


@dataclass(frozen=True)
class Damage:
    """One damaged file of a table.

    :param path: the file
    :param why: what is wrong with it, in words
    :param kind: ``commit`` (a log entry), ``checkpoint`` (a checkpoint or its pointer) or
        ``data``
    :param version: a log entry's version (None for the others)
    """

    path: str
    why: str
    kind: str
    version: int | None = None

    def error(self, table: str) -> CorruptFile:
        """The one line a command ends with when it meets this file."""
        return CorruptFile(
            f"{redact(self.path)} is damaged ({self.why}): its table cannot be read; "
            "`pipelines repair` sets the file aside and restores the table from its last good "
            "version and the raw deliveries",
            path=self.path,
            table=table,
        )


def commit_version(name: str) -> int | None:
    """The version of a log entry's file name (None: not a commit entry)."""
    stem, _, ext = name.partition(".")
    return int(stem) if ext == "json" and stem.isdigit() else None


def log_damage(path: str, storage: Storage) -> list[Damage]:
    """The damaged files of the table's log a reader of its newest version replays: the
    checkpoint it starts from (and the pointer to it) and every entry after that, oldest
    first."""
    folder = f"{path}/{LOG}"
    names = storage.list(folder)
    found = checkpoint_damage(path, storage) if LAST_CHECKPOINT in names else []
    start = -1
    if LAST_CHECKPOINT in names and not found:
        start = int(json.loads(storage.read(f"{folder}/{LAST_CHECKPOINT}"))["version"])
    checkpoints = sorted(
        (int(n.split(".", 1)[0]), n) for n in names if ".checkpoint." in n and n[0].isdigit()
    )
    usable = [c for c in checkpoints if start < 0 or c[0] == start]
    if usable and not found:
        version, name = usable[-1]
        why = _checkpoint_problem(storage, f"{folder}/{name}")
        if why:
            found.append(Damage(f"{folder}/{name}", why, "checkpoint", version))
        else:
            start = version
    for name in names:
        version = commit_version(name)
        if version is None or version <= start:
            continue
        why = _commit_problem(storage.read(f"{folder}/{name}"))
        if why:
            found.append(Damage(f"{folder}/{name}", why, "commit", version))
    return found


def checkpoint_damage(path: str, storage: Storage) -> list[Damage]:
    """What is wrong with the table's checkpoint pointer, or with the size of the checkpoint it
    points to (one small read and a size: what ``status`` asks of every table)."""
    where = f"{path}/{LOG}/{LAST_CHECKPOINT}"
    try:
        pointer = json.loads(storage.read(where))
        version = int(pointer["version"])
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        return [Damage(where, _said(exc, "not a checkpoint pointer"), "checkpoint")]
    expected = pointer.get("sizeInBytes")
    if "parts" in pointer or not isinstance(expected, int):
        return []  # a checkpoint in parts, or no size said: read whole by log_damage
    name = f"{version:020d}.checkpoint.parquet"
    found = sizes_damage(f"{path}/{LOG}", {name: expected}, storage)
    return [Damage(d.path, d.why, "checkpoint", version) for d in found]


def entry_lines(data: bytes) -> list[str]:
    """A log entry's lines, one action each: split at ``\n`` alone (``str.splitlines`` also
    splits at U+2028, U+0085 and others, which a text value in a file's statistics may hold)."""
    return data.decode("utf-8", "replace").split("\n")


def _commit_problem(data: bytes) -> str | None:
    """Why a log entry's bytes are not a commit (None: they are one)."""
    if not data.strip():
        return "empty: a commit holds at least one action"
    for number, line in enumerate(entry_lines(data), 1):
        if not line.strip():
            continue
        try:
            action = json.loads(line)
        except ValueError as exc:
            return f"line {number} is not JSON: {exc}"
        if not isinstance(action, dict):
            return f"line {number} is not an action"
    return None


def _checkpoint_problem(storage: Storage, path: str) -> str | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.read_table(pa.BufferReader(storage.read(path)))
    except (OSError, pa.ArrowException) as exc:
        return f"not a readable checkpoint: {plain(str(exc)).splitlines()[0][:200]}"
    return None


def _said(exc: BaseException, fallback: str) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{fallback}: {text}" if text else fallback


FOOTER = "footer"  # data_damage's read: each file's Parquet footer (its metadata), a small read
WHOLE = "whole"  # data_damage's read: each file whole, every page decoded


def data_damage(
    table: DeltaTable,
    storage: Storage,
    paths: set[str] | None = None,
    *,
    missing: bool = True,
    read: str | None = None,
) -> list[Damage]:
    """The data files of ``table`` (at its version; only those of ``paths``, their log paths,
    when given) not the size their log entry recorded, or (``missing``) not there, or (``read``:
    :data:`FOOTER` or :data:`WHOLE`) of the right size but not readable so far as Parquet (a
    byte changed). Sizes alone are what ``status`` and the readers afford; reading is
    ``pipelines repair``'s (on S3 each file read is a download)."""
    import pyarrow as pa

    # from the stream: pa.table() would import pandas (a second of status's budget)
    files = pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()
    root = table.table_uri.removeprefix("file://").rstrip("/")
    expected = dict(zip(files["path"].to_pylist(), files["size_bytes"].to_pylist(), strict=True))
    if paths is not None:
        expected = {p: s for p, s in expected.items() if p in paths}
    found = sizes_damage(root, expected, storage, missing=missing)
    if read is None:
        return found
    sized = {d.path for d in found}
    for rel in sorted(expected):
        path = f"{root}/{unquote(rel)}"
        why = None if path in sized else unreadable(path, storage, whole=read == WHOLE)
        if why:
            found.append(Damage(path, why, "data"))
    return found


def unreadable(path: str, storage: Storage, *, whole: bool = False) -> str | None:
    """Why the data file at ``path`` does not read as Parquet: its footer, or (``whole``) every
    page of it (None: it reads, or it is not there: a missing file is the sizes' to say)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pa.BufferReader(storage.read(path)) if storage.remote else path
        if whole:
            pq.ParquetFile(source).read(use_threads=False)
        else:
            pq.read_metadata(source)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, pa.ArrowException) as exc:
        return _said(exc, "does not read as Parquet")
    return None


def sizes_damage(
    root: str,
    expected: dict[str, int | None],
    storage: Storage | None = None,
    *,
    missing: bool = True,
) -> list[Damage]:
    """The files of ``expected`` (log path -> recorded size, under the table ``root``) of
    another size, or (``missing``) not there (``storage`` None: on local disk). A reader leaves
    a missing file to its read: a concurrent commit and vacuum remove files, and the reader
    reads the new version."""
    found = []
    remote = storage is not None and storage.remote
    listed: dict[str, int] = {}
    if remote and expected:  # sizes as a listing says them: the folders of the files, or all
        folders = {f"{root}/{unquote(rel)}".rsplit("/", 1)[0] for rel in expected}
        for folder in sorted(folders) if len(folders) <= FEW else [root]:
            listed.update(storage.files(folder))
    for rel, size in sorted(expected.items()):
        path = f"{root}/{unquote(rel)}"
        if remote:
            have = listed.get(path)
        else:
            try:
                have = os.stat(path).st_size
            except FileNotFoundError:
                have = None
        if have is None and missing:
            found.append(Damage(path, "missing: its version's log names it", "data"))
        elif have is not None and size is not None and have != size:
            found.append(Damage(path, f"{have} bytes, its log entry says {size}", "data"))
    return found


def looks_corrupt(exc: BaseException) -> bool:
    """Whether an error of delta-rs or Arrow reads like a file that does not parse."""
    text = plain(str(exc)).lower()
    return any(s in text for s in SYMPTOMS)


def explain(path: str, storage: Storage, exc: BaseException) -> CorruptFile | None:
    """The damaged file behind ``exc`` (an error of delta-rs or Arrow reading the table at
    ``path``), as one line; None when no file of the table is damaged (or ``exc`` is not a
    reading error)."""
    if isinstance(exc, CorruptFile):
        return exc
    if isinstance(exc, FileNotFoundError) or not looks_corrupt(exc):
        return None  # a file a concurrent vacuum removed: the reader reads the new version
    try:
        return _named(path, storage)
    except Exception:  # noqa: BLE001 - looking for the file never hides the error itself
        log.debug("looking for a damaged file of %s failed", redact(path), exc_info=True)
        return None


def _named(path: str, storage: Storage) -> CorruptFile | None:
    found = log_damage(path, storage)
    if not found:
        from deltalake import DeltaTable

        opened = DeltaTable(path, storage_options=storage.delta_options)
        found = data_damage(opened, storage, missing=False)
    return found[0].error(path) if found else None


def newest_entry(path: str, storage: Storage, version: int) -> list[Damage]:
    """What is wrong with the log entry of ``version`` (the newest, as the runs table says)
    and the data files it adds: the check ``status`` makes of every table (one small read,
    and a size of each file the newest commit wrote)."""
    where = f"{path}/{LOG}/{version:020d}.json"
    try:
        data = storage.read(where)
    except FileNotFoundError:
        return []
    why = _commit_problem(data)
    if why:
        return [Damage(where, why, "commit", version)]
    expected = {}
    for line in entry_lines(data):
        add = json.loads(line).get("add") if line.strip() else None
        if add and "path" in add:
            expected[add["path"]] = add.get("size")
    return sizes_damage(path, expected, storage)
