"""``pipelines lake upgrade``: the tables a namespace wrote in the lake's format before Delta,
converted into Delta tables in place.

The old format (pipelines before Delta): a table folder holds Parquet files under ``ds=``/``dt=``
folders and JSON manifests ``_log/0000000001.json`` ...; the newest manifest names, per
partition, the one current file (``partitions: {p: {file, rows}}``) and the table's ``meta``:
``schema`` (a cleaned table's ``[[column, kind], ...]``), ``config``, ``runs`` (``{day:
metrics}``). Files no manifest names are superseded and never read.

Each table is converted in three steps, each safe to repeat after a crash at any point:

1. the newest manifest's files become the table's first Delta version, in one commit, written
   as :meth:`Table.commit` writes (each column's dtype, and kind for a cleaned table, in the
   field metadata; a column whose type differs between partitions in the wider type). That
   commit is the switch: before it a reader meets the old format (:class:`OldFormat`), after it
   a complete Delta table. Nothing is deleted before it;
2. the manifest's runs and config go to the namespace's runs table in one append, at the
   version the commit wrote, with what the table holds (its partitions' rows, which ``status``
   reads there); skipped when records of that version are there already;
3. the old files go: the old format's data files (superseded ones too), then the manifests.
   ``_log/`` goes last, so that while it is there a rerun still finds the runs to record.

A table whose newest manifest names no partition gets no Delta table (as a table no run wrote
rows to has none); its runs are recorded at version -1 and its manifests deleted.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.common.partitions import Layer, table_path
from pipelines.exceptions import CommitConflict, LakeError
from pipelines.lake import delta, frames
from pipelines.lake.delta import LOG, OLD_LOG, OldFormat
from pipelines.lake.holdings import change
from pipelines.lake.lake import Lake
from pipelines.lake.storage import Storage
from pipelines.lake.tables import EMPTY, Table, conformed
from pipelines.runtime.secrets import redact

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)
FIRST = 0  # the Delta version an upgrade commits (the table's first)
NONE = -1  # the version run records carry when no Delta table was written
OLD_FILE = re.compile(r"^part-\d{8}-[0-9a-f]{12}\.parquet$")  # a data file of the old format
MANIFEST = re.compile(r"^\d+\.json$")


@dataclass(frozen=True)
class Manifest:
    """The newest version of a table in the old format."""

    version: int
    partitions: dict[str, dict[str, Any]]
    meta: dict[str, Any]

    @property
    def key(self) -> str:
        """The partition column, from the folders of the files it names (``ds=...``)."""
        first = next(iter(self.partitions.values()), None)
        return first["file"].split("=", 1)[0] if first else ""

    @property
    def kinds(self) -> dict[str, str]:
        return dict(self.meta.get("schema", []))


@dataclass(frozen=True)
class Upgraded:
    """What the upgrade of one table did.

    :param table: its name in the namespace (``cleaned/orders``)
    :param partitions: the partitions its Delta table holds, and ``rows`` their rows
    :param runs: the run records written (0: they were there already)
    :param removed: the old format's files deleted
    :param resumed: an earlier upgrade committed its Delta table; this one finished the rest
    """

    table: str
    partitions: int
    rows: int
    runs: int
    removed: int
    resumed: bool = False

    def __str__(self) -> str:
        done = "finished" if self.resumed else "upgraded"
        text = f"{done} {self.table}: {_plural(self.partitions, 'partition')}, "
        return text + f"{_plural(self.rows, 'row')}, {_plural(self.runs, 'run record')}"


def old_tables(lake: Lake) -> list[str]:
    """The tables of ``lake``'s namespace still in the old format (no Delta commit yet), as
    ``layer/name``."""
    return [name for name, path in _with_old_log(lake) if not _committed(lake.storage, path)]


def require_upgraded(lake: Lake) -> None:
    """:raises OldFormat: a table of the namespace is still in the old format (one line, naming
    the command that converts it)"""
    old = old_tables(lake)
    if old:
        more = f" and {len(old) - 1} more tables were" if len(old) > 1 else " was"
        raise OldFormat(
            f"{redact(lake.prefix)}/{old[0]}{more} written by an earlier pipelines in its own "
            "table format; run `pipelines lake upgrade` to convert the lake to Delta tables"
        )


def upgrade(lake: Lake, on_table: Callable[[Upgraded], None] | None = None) -> list[Upgraded]:
    """Convert every table of ``lake``'s namespace that is still in the old format (or whose
    upgrade stopped half-way), one at a time; what each upgrade did.

    :param on_table: called with each table's :class:`Upgraded` as it is done
    """
    done = []
    for name, path in _with_old_log(lake):
        upgraded = upgrade_table(lake, name, path)
        log.info("%s", upgraded)
        if on_table is not None:
            on_table(upgraded)
        done.append(upgraded)
    return done


def upgrade_table(lake: Lake, name: str, path: str) -> Upgraded:
    """Convert the table ``name`` (``layer/name``) at ``path``: commit, record, clean up (see
    the module's docstring)."""
    storage = lake.storage
    opened = _open(path, storage)
    manifest = _newest(storage, path)
    resumed = opened is not None
    version = FIRST if resumed else NONE
    if not resumed and manifest is not None and manifest.partitions:
        version, resumed = _commit(storage, path, manifest)
    runs = 0
    run_log = lake.run_log()
    snap = Table(storage, path, "").snapshot() if version != NONE else None
    if manifest is not None and not run_log.holds(name, version):
        recorded = manifest.meta.get("runs", {})
        holds = (snap or EMPTY).holdings  # whole: status reads what it holds in the records
        whole = change(None, holds, holds)
        run_log.append_all(name, version, recorded, manifest.meta.get("config"), whole)
        runs = len(recorded) or int("config" in manifest.meta)
    named = set(snap.files["path"].to_pylist()) if snap is not None else set()
    removed = _clean_up(storage, path, named)
    return Upgraded(
        name,
        len(snap.partitions) if snap else 0,
        snap.rows() if snap else 0,
        runs,
        removed,
        resumed,
    )


def _with_old_log(lake: Lake) -> list[tuple[str, str]]:
    """``(layer/name, path)`` of every table of the namespace that has an old ``_log/``."""
    found = []
    for layer in Layer:
        for name in lake.storage.list(f"{lake.prefix}/{layer.value}"):
            try:
                path = table_path(lake.root, lake.namespace, layer, name)
            except LakeError:
                continue  # not a table's folder
            if OLD_LOG in lake.storage.list(path):
                found.append((f"{layer.value}/{name}", path))
    return found


def _committed(storage: Storage, path: str) -> bool:
    return any(MANIFEST.match(n) for n in storage.list(f"{path}/{LOG}"))


def _open(path: str, storage: Storage):
    """The Delta table at ``path`` (None: not committed yet)."""
    try:
        return delta.open_table(path, storage)
    except OldFormat:
        return None


def _newest(storage: Storage, path: str) -> Manifest | None:
    """The newest manifest of the old ``_log/`` (None: none left)."""
    names = [n for n in storage.list(f"{path}/{OLD_LOG}") if MANIFEST.match(n)]
    if not names:
        return None
    newest = max(names, key=lambda n: int(n[:-5]))
    body = json.loads(storage.read(f"{path}/{OLD_LOG}/{newest}"))
    return Manifest(int(body["version"]), dict(body["partitions"]), body.get("meta", {}))


def _commit(storage: Storage, path: str, manifest: Manifest) -> tuple[int, bool]:
    """The manifest's partitions as the first version of a Delta table, in one commit; the
    version, and whether another upgrade committed it first."""
    import pyarrow as pa

    # an empty partition adds no file, nor its columns' types (read back untyped, they would
    # widen every column to text); only when every partition is empty does one give the schema
    parts = [p for p in sorted(manifest.partitions) if manifest.partitions[p].get("rows", 1)]
    schema = None
    for part in parts or sorted(manifest.partitions)[:1]:  # first pass: the schema they fit in
        data = _arrow(storage, path, manifest, part, schema)
        schema = data.schema if schema is None else frames.unify(schema, data.schema)[0]

    def batches() -> Iterator[pa.RecordBatch]:  # second pass: one partition at a time
        for part in parts:
            data = conformed(_arrow(storage, path, manifest, part, schema), schema)
            yield from data.combine_chunks().to_batches(max_chunksize=None)

    stream = pa.RecordBatchReader.from_batches(schema, batches())
    try:
        version = delta.replace(path, storage, stream, key=manifest.key, partitions=None, base=None)
    except CommitConflict:
        return FIRST, True  # another upgrade created it: it holds the same rows
    return version, False


def _arrow(
    storage: Storage, path: str, manifest: Manifest, part: str, schema: pa.Schema | None
) -> pa.Table:
    """Partition ``part`` as :meth:`Table.commit` would write it: with its partition column,
    each column's dtype (and a cleaned table's kind) in the field metadata."""
    frame = _read(storage, path, manifest.partitions[part]["file"])
    return frames.to_arrow(frame.assign(**{manifest.key: part}), manifest.kinds, schema)


def _read(storage: Storage, path: str, file: str) -> pd.DataFrame:
    """A data file the manifest names, as the old reader read it (pandas, its dtypes)."""
    import pyarrow.parquet as pq

    try:
        data = storage.read(f"{path}/{file}")
    except FileNotFoundError:
        raise LakeError(
            f"{redact(path)}: its newest manifest names {file}, which is missing; the table "
            "was left as it is"
        ) from None
    table = pq.read_table(io.BytesIO(data))
    return _with_written_units(table.to_pandas(), table.schema.pandas_metadata or {})


def _with_written_units(frame: pd.DataFrame, pandas_meta: dict[str, Any]) -> pd.DataFrame:
    """``frame`` with each timestamp column in the unit it was written from: Parquet has no
    seconds, so a ``datetime64[s]`` column (a cleaned table's date) was stored in ms and reads
    back as ``datetime64[ms]``; the file's pandas metadata names the unit it had."""
    for column in pandas_meta.get("columns", []):
        name, written = column.get("name"), str(column.get("numpy_type", ""))
        if name not in frame.columns or not written.startswith("datetime64["):
            continue
        tz = (column.get("metadata") or {}).get("timezone")
        wanted = f"{written[:-1]}, {tz}]" if tz else written
        if str(frame[name].dtype) != wanted:
            frame[name] = frame[name].astype(wanted)
    return frame


def _clean_up(storage: Storage, path: str, named: set[str]) -> int:
    """Delete the old format's files of the table at ``path`` (never one of ``named``, the
    Delta table's): its data files and crashed writers' temp files, then the manifests; the
    number deleted."""
    doomed = []
    for folder in storage.list(path):
        if "=" not in folder:
            continue
        for name in storage.list(f"{path}/{folder}"):
            rel = f"{folder}/{name}"
            if (OLD_FILE.match(name) or name.startswith(".tmp-")) and rel not in named:
                doomed.append(f"{path}/{rel}")
    storage.delete(doomed)
    manifests = sorted(storage.list(f"{path}/{OLD_LOG}"))  # the newest (and _log/) last
    storage.delete(f"{path}/{OLD_LOG}/{n}" for n in manifests)
    storage.prune(path)
    return len(doomed) + len(manifests)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"
