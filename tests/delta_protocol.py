"""An independent reader of the Delta Lake protocol, for tests only.

The lake's tables are written by delta-rs (``deltalake``); a test that read them back through
delta-rs would check delta-rs against itself. This module reads a local Delta table from what the
protocol (https://github.com/delta-io/delta/blob/master/PROTOCOL.md) puts on disk: the newest
complete checkpoint not past the wanted version (``_delta_log/NNN.checkpoint.parquet``, or all
parts of a multi-part one) read with pyarrow, then the JSON commits after it replayed in order
(the latest ``protocol`` and ``metaData`` win; a file's newest ``add`` or ``remove`` wins), then
every live data file read with pyarrow, given its partition values from the log, typed per the
table schema, and cast to that schema (a column a file lacks is null, as after schema evolution).

It refuses what it does not implement, so a test cannot pass by ignoring it: deletion vectors,
column mapping, V2 checkpoints (sidecars), reader versions above 3 and reader features outside
:data:`READER_FEATURES`, data types it cannot map. It imports nothing from delta-rs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "READER_FEATURES",
    "Snapshot",
    "UnsupportedFeature",
    "arrow_schema",
    "read_delta",
    "schema",
    "snapshot",
    "version",
]

# reader features this reader implements (columnMapping only in mode "none"; deletionVectors
# only while no live file carries one; vacuumProtocolCheck asks nothing of readers)
READER_FEATURES = frozenset(
    {"timestampNtz", "columnMapping", "deletionVectors", "vacuumProtocolCheck"}
)

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CLASSIC_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_PART_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_UUID_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$")
_ACTIONS = ("add", "remove", "metaData", "protocol", "sidecar", "checkpointMetadata")

_PRIMITIVE = {
    "string": pa.string(),
    "long": pa.int64(),
    "integer": pa.int32(),
    "short": pa.int16(),
    "byte": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


class UnsupportedFeature(NotImplementedError):
    """The table uses a part of the Delta protocol this reader does not implement."""


@dataclass
class Snapshot:
    """The reconciled state of a table at one version."""

    version: int
    checkpoint: int | None  # the version of the checkpoint the replay started from
    protocol: dict
    metadata: dict
    files: dict[str, dict] = field(default_factory=dict)  # decoded path -> live add action

    @property
    def fields(self) -> list[dict]:
        return json.loads(self.metadata["schemaString"])["fields"]


# --- the log: which files make up a version --------------------------------------------------


def _listing(log: Path) -> tuple[dict[int, Path], dict[int, list[Path]]]:
    """Commit files by version, and complete classic or multi-part checkpoints by version."""
    commits: dict[int, Path] = {}
    classic: dict[int, list[Path]] = {}
    parts: dict[tuple[int, int], list[Path]] = {}
    for entry in log.iterdir():
        if m := _COMMIT.match(entry.name):
            commits[int(m[1])] = entry
        elif m := _CLASSIC_CHECKPOINT.match(entry.name):
            classic[int(m[1])] = [entry]
        elif m := _PART_CHECKPOINT.match(entry.name):
            parts.setdefault((int(m[1]), int(m[3])), []).append(entry)
    checkpoints = dict(classic)
    for (at, total), files in parts.items():
        if len(files) == total and at not in checkpoints:  # a checkpoint missing parts is ignored
            checkpoints[at] = sorted(files)
    return commits, checkpoints


def _uuid_checkpoints(log: Path) -> set[int]:
    return {int(m[1]) for e in log.iterdir() if (m := _UUID_CHECKPOINT.match(e.name))}


def _last_checkpoint_hint(log: Path) -> int | None:
    """The version ``_last_checkpoint`` names, if that file exists."""
    hint = log / "_last_checkpoint"
    if not hint.exists():
        return None
    return int(json.loads(hint.read_text())["version"])


def _start(log: Path, checkpoints: dict[int, list[Path]], target: int) -> int | None:
    """The newest complete checkpoint not past ``target``. The local listing decides (it may
    hold a newer checkpoint than ``_last_checkpoint`` names, and time travel needs older ones);
    a ``_last_checkpoint`` naming a checkpoint the listing lacks means a broken log."""
    hint = _last_checkpoint_hint(log)
    if hint is not None and hint not in checkpoints and hint > max(checkpoints, default=-1):
        raise ValueError(f"_last_checkpoint names version {hint}, not complete in {log}")
    usable = [v for v in checkpoints if v <= target]
    return max(usable) if usable else None


def _plan(log: Path, wanted: int | None) -> tuple[int, int | None, list[Path], list[Path]]:
    """(version, checkpoint version, checkpoint files, commit files after it, in order)."""
    commits, checkpoints = _listing(log)
    known = set(commits) | set(checkpoints)
    if not known:
        if _uuid_checkpoints(log):
            raise UnsupportedFeature("only UUID-named (V2) checkpoints: not implemented")
        raise FileNotFoundError(f"no Delta log in {log}")
    target = max(known) if wanted is None else wanted
    if target not in known:
        raise ValueError(f"version {target} is not in the log of {log.parent}")
    start = _start(log, checkpoints, target)
    first = 0 if start is None else start + 1
    missing = [v for v in range(first, target + 1) if v not in commits]
    if missing:
        raise ValueError(f"commits {missing[:5]} missing from the log of {log.parent}")
    files = [] if start is None else checkpoints[start]
    return target, start, files, [commits[v] for v in range(first, target + 1)]


# --- actions -----------------------------------------------------------------------------------


def _as_dict(value) -> dict:
    """A map from the log: a JSON object, or a parquet map read by pyarrow (list of pairs)."""
    if value is None:
        return {}
    return dict(value)


def _checkpoint_actions(files: list[Path]) -> list[dict]:
    actions: list[dict] = []
    for file in files:
        parquet = pq.ParquetFile(file)
        columns = [n for n in _ACTIONS if n in parquet.schema_arrow.names]
        for row in parquet.read(columns=columns).to_pylist():
            actions.extend({name: value} for name, value in row.items() if value is not None)
    return actions


def _commit_actions(file: Path) -> list[dict]:
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _file_key(path: str) -> str:
    """The data file an ``add``/``remove`` path names: a URI (RFC 2396), percent-decoded once."""
    return unquote(path)


def _apply(state: Snapshot, action: dict) -> None:
    if "add" in action:
        add = dict(action["add"])
        add["partitionValues"] = _as_dict(add.get("partitionValues"))
        state.files[_file_key(add["path"])] = add
    elif "remove" in action:
        state.files.pop(_file_key(action["remove"]["path"]), None)
    elif "metaData" in action:
        meta = dict(action["metaData"])
        meta["configuration"] = _as_dict(meta.get("configuration"))
        state.metadata = meta
    elif "protocol" in action:
        state.protocol = action["protocol"]
    elif "sidecar" in action or "checkpointMetadata" in action:
        raise UnsupportedFeature("V2 checkpoint (sidecar files): not implemented")
    # txn, domainMetadata, commitInfo, cdc: nothing a snapshot read needs


def _check_readable(state: Snapshot) -> None:
    reader = int(state.protocol.get("minReaderVersion", 1))
    if reader > 3:
        raise UnsupportedFeature(f"reader version {reader}")
    unknown = set(state.protocol.get("readerFeatures") or ()) - READER_FEATURES
    if unknown:
        raise UnsupportedFeature(f"reader features {sorted(unknown)}")
    mode = state.metadata["configuration"].get("delta.columnMapping.mode", "none")
    if mode != "none":
        raise UnsupportedFeature(f"column mapping (mode {mode!r})")
    provider = state.metadata.get("format", {}).get("provider", "parquet")
    if provider != "parquet":
        raise UnsupportedFeature(f"data file format {provider!r}")
    with_dv = [p for p, add in state.files.items() if add.get("deletionVector")]
    if with_dv:
        raise UnsupportedFeature(f"deletion vectors on {len(with_dv)} file(s), e.g. {with_dv[0]}")


def snapshot(path: str | Path, version: int | None = None) -> Snapshot:
    """The table's state at ``version`` (default: the latest) by checkpoint and log replay."""
    log = Path(path) / "_delta_log"
    target, start, checkpoint_files, commit_files = _plan(log, version)
    state = Snapshot(version=target, checkpoint=start, protocol={}, metadata={})
    for action in _checkpoint_actions(checkpoint_files):
        _apply(state, action)
    for file in commit_files:
        for action in _commit_actions(file):
            _apply(state, action)
    if not state.protocol or not state.metadata:
        raise ValueError(f"no protocol or metaData action up to version {target} in {path}")
    _check_readable(state)
    return state


def version(path: str | Path) -> int:
    """The table's latest version."""
    return _plan(Path(path) / "_delta_log", None)[0]


def schema(path: str | Path, version: int | None = None) -> list[dict]:
    """The fields of the table schema (``metaData.schemaString``): name, type, nullable and
    metadata, as the log has them."""
    return snapshot(path, version).fields


# --- types -------------------------------------------------------------------------------------


def _arrow_type(delta_type) -> pa.DataType:
    if isinstance(delta_type, str):
        if delta_type in _PRIMITIVE:
            return _PRIMITIVE[delta_type]
        if m := _DECIMAL.match(delta_type):
            return pa.decimal128(int(m[1]), int(m[2]))
        raise UnsupportedFeature(f"data type {delta_type!r}")
    kind = delta_type["type"]
    if kind == "struct":
        return pa.struct([_arrow_field(f) for f in delta_type["fields"]])
    if kind == "array":
        return pa.list_(_arrow_type(delta_type["elementType"]))
    if kind == "map":
        return pa.map_(_arrow_type(delta_type["keyType"]), _arrow_type(delta_type["valueType"]))
    raise UnsupportedFeature(f"data type {kind!r}")


def _arrow_field(delta_field: dict) -> pa.Field:
    metadata = {
        k: v if isinstance(v, str) else json.dumps(v)
        for k, v in (delta_field.get("metadata") or {}).items()
    }
    return pa.field(
        delta_field["name"],
        _arrow_type(delta_field["type"]),
        nullable=delta_field.get("nullable", True),
        metadata=metadata or None,
    )


def arrow_schema(path: str | Path, version: int | None = None) -> pa.Schema:
    """The table schema as a pyarrow schema (field metadata kept)."""
    return pa.schema([_arrow_field(f) for f in schema(path, version)])


def _timestamp(text: str, utc: bool) -> dt.datetime:
    """A partition timestamp: ``YYYY-MM-DD HH:MM:SS[.ffffff]`` or ISO 8601 adjusted to UTC."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if not utc:
        return value.replace(tzinfo=None)
    if value.tzinfo is None:  # delta-rs writes UTC wall time without a zone
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _partition_value(text: str | None, delta_type: str):
    """A partition value from its string form (Partition Value Serialization); "" is null."""
    if text is None or text == "":
        return None
    parsers = {
        "string": str,
        "long": int,
        "integer": int,
        "short": int,
        "byte": int,
        "double": float,
        "float": float,
        "date": dt.date.fromisoformat,
        "timestamp": lambda t: _timestamp(t, utc=True),
        "timestamp_ntz": lambda t: _timestamp(t, utc=False),
    }
    if delta_type == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"boolean partition value {text!r}")
        return text == "true"
    if isinstance(delta_type, str) and _DECIMAL.match(delta_type):
        return decimal.Decimal(text)
    if delta_type not in parsers:
        raise UnsupportedFeature(f"partition column of type {delta_type!r}")
    return parsers[delta_type](text)


# --- data --------------------------------------------------------------------------------------


def _data_file(root: Path, raw_path: str) -> Path:
    parsed = urlparse(raw_path)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme:
        raise UnsupportedFeature(f"data file outside the local file system: {raw_path}")
    return root / unquote(raw_path)


def _column(data: pa.Table, delta_field: dict, target: pa.Field, add: dict, partitions: set):
    name = delta_field["name"]
    if name in partitions:  # the log's value, whatever the file holds
        value = _partition_value(add["partitionValues"].get(name), delta_field["type"])
        return pa.chunked_array([pa.array([value] * data.num_rows, target.type)])
    if name in data.column_names:
        return data.column(name).cast(target.type)  # a safe cast: a lossy one raises
    return pa.chunked_array([pa.nulls(data.num_rows, target.type)])  # added after this file


def _read_file(root: Path, add: dict, fields: list[dict], partitions: set, target: pa.Schema):
    data = pq.ParquetFile(_data_file(root, add["path"])).read()
    columns = [_column(data, f, target.field(f["name"]), add, partitions) for f in fields]
    return pa.Table.from_arrays(columns, schema=target)


def read_delta(path: str | Path, version: int | None = None) -> pa.Table:
    """Every live row of the table at ``version`` (default: the latest), columns in schema
    order, typed per the table schema (field metadata kept); rows in log order of their files."""
    state = snapshot(path, version)
    fields = state.fields
    partitions = set(state.metadata.get("partitionColumns") or ())
    if not partitions <= {f["name"] for f in fields}:
        raise ValueError(f"partition columns {sorted(partitions)} not all in the schema")
    target = pa.schema([_arrow_field(f) for f in fields])
    tables = [
        _read_file(Path(path), add, fields, partitions, target) for add in state.files.values()
    ]
    return pa.concat_tables(tables) if tables else target.empty_table()
