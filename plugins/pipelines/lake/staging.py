"""Rebuilding tables beside the current ones (``plan --apply``), then switching each in whole.

A rebuild's backfill writes the tables it rebuilds under ``{root}/{namespace}/_rebuild`` (the
lake addresses them there: :meth:`Lake.beside`), with a runs table of their own, while every
reader still reads the current tables. Only when every day of every rebuild succeeded is each
table switched: one Delta commit that overwrites the whole current table with the rebuilt rows
(atomic on local disk and on S3 alike: readers see the old version or the new one), then one
commit of the runs table that replaces the table's records with the rebuild's (its days, and
the config it was written with). A rebuild that fails, or a process killed before the switch,
leaves the current tables as they were; what the staging area holds is removed by the next
rebuild (:func:`clear`) and read by nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.common.partitions import Layer
from pipelines.exceptions import LakeError
from pipelines.lake import delta
from pipelines.lake.lake import Lake
from pipelines.lake.tables import WROTE, Snapshot, Table
from pipelines.runtime.secrets import redact


@dataclass(frozen=True)
class Switched:
    """One table switched to its rebuilt version.

    :param table: ``layer.name``
    :param before: the version it was at (-1: it did not exist)
    :param after: the version the switch committed
    """

    table: str
    before: int
    after: int


def writable(lake: Lake) -> None:
    """Refuse a rebuild in a lake this process cannot write, before anything is written: a probe
    file is written in the staging area and deleted.

    :raises LakeError: the lake's folder (or bucket) refuses writes, in one line
    """
    probe = f"{lake.staging}/.probe"
    try:
        lake.storage.write(probe, b"")
        lake.storage.delete([probe])
        lake.storage.prune(lake.staging)  # no empty staging folder left behind
    except PermissionError as exc:
        raise LakeError(
            f"the lake {redact(lake.prefix)} cannot be written here "
            f"({redact(str(exc.strerror or exc))}): plan --apply rebuilds and records tables "
            "there; nothing was changed"
        ) from None
    except OSError as exc:
        raise LakeError(
            f"the lake {redact(lake.prefix)} cannot be written here ({type(exc).__name__}: "
            f"{redact(str(exc.strerror or exc))}): nothing was changed"
        ) from None


def clear(lake: Lake) -> None:
    """Delete whatever the staging area holds (an earlier rebuild's leftovers): the tables'
    Delta logs first, then their data."""
    paths = [p for p, _ in lake.storage.files(lake.staging)]
    logs = [p for p in paths if f"/{delta.LOG}/" in p]
    lake.storage.delete(logs)
    lake.storage.delete([p for p in paths if p not in set(logs)])
    lake.storage.prune(lake.staging)


def switch(lake: Lake, staged: Lake, layer: Layer, name: str, base: int) -> Switched:
    """Switch the table of ``name`` in ``layer`` to what ``staged`` rebuilt beside it: one commit
    overwriting it whole (schema and partitioning too), as the version after ``base``, then its
    run records replaced by the rebuild's.

    :param base: the version the table was at when the rebuild started
    :raises CommitConflict: another writer committed to the table during the rebuild (it stays)
    """
    current = lake.manifest(layer, name)
    rebuilt = staged.manifest(layer, name)
    new = rebuilt.snapshot()
    version = _overwrite(current, rebuilt, new, base)
    after = current.snapshot()
    log_, key = current.runs
    found = new.recorded()
    runs = {day: _moved(found.runs[day], after.version) for day in found.runs}
    log_.rewrite(key, after.version, runs, found.config, {"rows": after.holdings.rows})
    return Switched(f"{layer}.{name}", base, version)


def _overwrite(current: Table, rebuilt: Table, new: Snapshot, base: int) -> int:
    """The one commit that makes the current table hold what was rebuilt (an empty table when
    the rebuild wrote none: no delivery held a row of it); the version it committed."""
    if new.exists and new.partitions:
        data, key = _partition_by_partition(rebuilt, new), new.key
    elif new.exists:  # no row: its schema alone (a stream of no batch would keep the old one)
        data, key = new.schema.empty_table(), new.key
    elif base >= 0:
        old = current.snapshot(base)
        data, key = old.schema.empty_table(), old.key
    else:
        return -1  # neither exists: nothing to switch
    start = None if base < 0 else base
    return delta.replace(
        current.path, current.storage, data, key=key, partitions=None, base=start,
        reshape="overwrite" if start is not None else None,
    )  # fmt: skip


def _partition_by_partition(rebuilt: Table, new: Snapshot):
    """The rebuilt rows as a stream, one partition at a time in partition order (a rebuilt table
    on local disk is never held in memory whole), in the rebuilt table's schema (its columns'
    kinds too). On S3 the rows are read whole first: delta-rs cannot read inside its own write
    ("cannot start a runtime from within a runtime")."""
    import pyarrow as pa

    schema = new.schema
    if rebuilt.storage.remote:
        return rebuilt.arrow(new, sorted(new.partitions)).select(schema.names).cast(schema)

    def batches():
        for part in sorted(new.partitions):
            yield from rebuilt.arrow(new, [part]).select(schema.names).cast(schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _moved(metrics: dict, version: int) -> dict:
    """A rebuilt day's record as the switched table's: every partition it wrote was written
    again by the switch, at ``version``."""
    wrote = metrics.get(WROTE)
    return {**metrics, WROTE: {**wrote, "version": version}} if wrote else dict(metrics)
