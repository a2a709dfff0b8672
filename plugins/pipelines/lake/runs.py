"""What each run recorded of the tables it wrote: one Delta table per namespace, ``{ns}/_runs``.

A run's counts and checks (``rows``, ``quarantined``, ``checks``, a workflow's metrics ...) and the
config a table was written with live here, not in the tables' own commits: a rerun that changes
no row makes no commit to its table, and is still recorded; and any engine that reads Delta reads
them too. A record is appended after the table's commit, naming the version it produced; the
newest record of a (table, day) is what that day's run counted.

Columns: ``table`` (``cleaned/orders``), ``ds`` (the run's day; null for a record of config
alone), ``version`` (the table's version after the run), ``metrics`` and ``config`` (JSON text),
``recorded_at`` (UTC).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pipelines.lake import delta
from pipelines.lake.storage import Storage

log = logging.getLogger(__name__)
FOLDER = "_runs"
COMPACT_EVERY = 50  # versions: a reader of the log opens a few files, not one per run


@dataclass(frozen=True)
class Recorded:
    """What the runs of one table recorded: each day's newest metrics, and its newest config."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] | None = None


class RunLog:
    """The runs table of one namespace.

    :param storage: the lake's storage (writes pass its namespace guard)
    :param path: ``{root}/{namespace}/_runs``
    """

    def __init__(self, storage: Storage, path: str):
        self.storage = storage
        self.path = path
        self._read: tuple[int, Any] | None = None  # (version, rows) last read

    def _schema(self):
        import pyarrow as pa

        return pa.schema(
            [
                ("table", pa.string()),
                ("ds", pa.string()),
                ("version", pa.int64()),
                ("metrics", pa.string()),
                ("config", pa.string()),
                ("recorded_at", pa.timestamp("us", tz="UTC")),
            ]
        )

    def rows(self):
        """Every record, as an Arrow table (read again only when the log has a new version)."""
        opened = delta.open_table(self.path, self.storage)
        if opened is None:
            return self._schema().empty_table()
        version = opened.version()
        if self._read is None or self._read[0] != version:
            rows = delta.reaching(self.storage, self.path, opened.to_pyarrow_table)
            self._read = (version, rows)
        return self._read[1]

    def of(self, table: str) -> Recorded:
        """What the runs of ``table`` (its path under the namespace) recorded."""
        import pyarrow.compute as pc

        rows = self.rows()
        mine = rows.filter(pc.equal(rows["table"], table)).sort_by(
            [("version", "ascending"), ("recorded_at", "ascending")]
        )
        runs: dict[str, dict[str, Any]] = {}
        config = None
        for ds, metrics, cfg in zip(
            mine["ds"].to_pylist(),
            mine["metrics"].to_pylist(),
            mine["config"].to_pylist(),
            strict=True,
        ):
            if ds is not None and metrics is not None:
                runs[ds] = json.loads(metrics)
            if cfg is not None:
                config = json.loads(cfg)
        return Recorded(dict(sorted(runs.items())), config)

    def all(self) -> dict[str, Recorded]:
        """:meth:`of` every table that has a record, by table."""
        import pyarrow.compute as pc

        names = pc.unique(self.rows()["table"]).to_pylist()
        return {name: self.of(name) for name in sorted(names)}

    def append(
        self,
        table: str,
        version: int,
        *,
        run: tuple[str, dict[str, Any]] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        """Record a run of ``table`` (its day and metrics) and/or the config it was written with."""
        import pyarrow as pa

        ds, metrics = run if run is not None else (None, None)
        row = {
            "table": [table],
            "ds": [ds],
            "version": [version],
            "metrics": [json.dumps(metrics, sort_keys=True) if metrics is not None else None],
            "config": [json.dumps(config) if config is not None else None],
            "recorded_at": [int(time.time() * 1_000_000)],
        }
        schema = self._schema()
        arrays = [pa.array(row[f.name], f.type) for f in schema]
        written = delta.append(self.path, self.storage, pa.Table.from_arrays(arrays, schema=schema))
        if written % COMPACT_EVERY == 0:
            delta.compact(self.path, self.storage)

    def vacuum(self, retention_hours: float) -> list[str]:
        """Delete the files no version of the last ``retention_hours`` needs."""
        return delta.vacuum(self.path, self.storage, retention_hours)

    def optimize(self) -> dict:
        """Compact the records' small files."""
        return delta.optimize(self.path, self.storage)

    def forget(self, table: str) -> None:
        """Drop the run records of ``table``, which was emptied to be rebuilt; the config it was
        written with stays recorded (should the rebuild stop, a plan still sees the change)."""
        before = self.of(table)
        delta.delete_where(self.path, self.storage, f"\"table\" = '{_quoted(table)}'")
        if before.config is not None:
            version = int(max(self.rows()["version"].to_pylist(), default=-1))
            self.append(table, version, config=before.config)


def _quoted(text: str) -> str:
    return text.replace("'", "''")
