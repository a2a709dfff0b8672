"""``pipelines infer NAME``: the ``columns.yaml`` entry the lossless inference gives for one or
more deliveries of a dataset, as a starting point for a user to edit.

Each column gets the type the merge would give it undeclared (:func:`schema.delivery_kinds`
over each file, widened over the files as the cleaned table's schema is), but for the registry's
fields: a key column of a text delivery stays text (the merge compares keys as delivered), and
the incremental and partition fields are dates or timestamps as the merge parses them. A header
that is not a valid column name, or that Delta cannot store as it is, gets a ``rename``
suggestion; the key columns get ``not_null``. Nothing is written and no lake is opened.

A database source's columns get the database's own types (its statement run to return no row),
not an inference: ``integer``, ``float``, ``decimal(p,s)``, ``boolean``, ``date``,
``timestamp``, ``text`` (a type columns.yaml has no name for is left untyped, with a note).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pandas as pd

from pipelines.common import transforms
from pipelines.common.partitions import date_option, interval_for
from pipelines.exceptions import PipelinesError
from pipelines.inspection.header_check import shown
from pipelines.lake.frames import REFUSED
from pipelines.project.columns import COLUMNS, TYPES
from pipelines.project.registry import Dataset
from pipelines.project.registry_values import COLUMN_RE
from pipelines.steps import declared, schema, sources

DECLARED_TYPE = {kind: name for name, kind in TYPES.items()}  # string -> text, int -> integer ...
DATED = ("date", "timestamp")


@dataclass(frozen=True)
class Delivery:
    """One file read: where it is (as shown), the date asked for it, its rows."""

    where: str
    ds: str
    rows: int


@dataclass(frozen=True)
class Inferred:
    """One column's inferred entry (``type`` None: no value to tell it from)."""

    name: str
    type: str | None
    rename: str | None = None
    tests: tuple[str, ...] = ()
    note: str = ""


def infer(
    dataset: Dataset, dates: list[str] | None = None
) -> tuple[list[Delivery], list[Inferred]]:
    """The files read (those of ``dates``, default the start_date; a file once) and each
    column's inferred entry, in delivery order.

    :raises PipelinesError: a date that is not one, a source that cannot be read, no column
    """
    if dataset.sql is not None:
        return _described(dataset, dates)
    frames: dict[str, tuple[str, pd.DataFrame]] = {}
    for day in dates or [dataset.start_date.isoformat()]:
        interval = interval_for(dataset.cron, date_option(day, "--date"))
        where = sources.first_file(dataset, interval)  # a glob's first, by name
        if where not in frames:
            frames[where] = (interval.ds, sources.read_file(dataset, interval, where))
    deliveries = [Delivery(shown(w), ds, len(f)) for w, (ds, f) in frames.items()]
    kinds: dict[str, str] = {}
    unparsed: dict[str, list] = {}
    for _, frame in frames.values():
        for column, kind in _kinds(dataset, frame, unparsed).items():
            kinds[column] = widened(kinds.get(column, "null"), kind)
    if not kinds:
        raise PipelinesError(f"{dataset.name}: no column in {', '.join(map(shown, frames))}")
    notes = {c: _unparsed_note(*counts) for c, counts in unparsed.items() if counts[0]}
    return deliveries, _entries(dataset, kinds, notes)


def _described(dataset: Dataset, dates: list[str] | None) -> tuple[list[Delivery], list[Inferred]]:
    """A database source's columns as the database types them (no row read, no inference):
    its statement for the interval of the first date (default the start_date)."""
    from pipelines.steps import sql_extract

    day = (dates or [dataset.start_date.isoformat()])[0]
    interval = interval_for(dataset.cron, date_option(day, "--date"))
    columns = sql_extract.described(dataset, interval)
    if not columns:
        raise PipelinesError(f"{dataset.name}: no column in {dataset.source}")
    keys = set(dataset.primary_key)
    taken = {c.name for c in columns}
    named = keys | set(_stamps(dataset))
    entries = []
    for column in columns:
        declared_type, note = database_type(column.type)
        rename, why = _rename(dataset, column.name, named, taken)
        tests = ("not_null",) if column.name in keys else ()
        entries.append(Inferred(column.name, declared_type, rename, tests, note or why))
    return [Delivery(dataset.source, interval.ds, 0)], entries


def database_type(arrow) -> tuple[str | None, str]:
    """The ``columns.yaml`` type of a database column stored as Arrow type ``arrow`` (None and
    why: a type columns.yaml has no name for, kept as read)."""
    import pyarrow as pa

    if pa.types.is_integer(arrow):
        return "integer", ""
    if pa.types.is_floating(arrow):
        return "float", ""
    if pa.types.is_decimal(arrow) and 1 <= arrow.precision <= 38:
        return f"decimal({arrow.precision},{arrow.scale})", ""
    if pa.types.is_boolean(arrow):
        return "boolean", ""
    if pa.types.is_date(arrow):
        return "date", ""
    if pa.types.is_timestamp(arrow):
        return "timestamp", ""
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "text", ""
    return None, f"the database's type is stored as {arrow}: columns.yaml has no name for it"


def _kinds(dataset: Dataset, frame: pd.DataFrame, unparsed: dict[str, list]) -> dict[str, str]:
    """Each data column's kind in one delivery, by its header (the dataset as if undeclared:
    what the data says, not what the declaration does); adds to ``unparsed`` the count of a
    field's values that do not parse, of its values, and the first of them."""
    kinds = schema.delivery_kinds(frame, replace(dataset, declared=None))
    for field in _stamps(dataset):
        column = declared.header(dataset, field)
        if column in kinds:
            kinds[column], failed = _stamp_kind(frame[column], dataset.options.epoch)
            counts = unparsed.setdefault(column, [0, 0, None])
            counts[0] += len(failed)
            counts[1] += int(frame[column].notna().sum())
            counts[2] = counts[2] if counts[2] is not None or failed.empty else failed.iloc[0]
    undeclared = replace(dataset, declared=None)
    for key, kind in schema.key_kinds(frame, undeclared, {}).items():  # as the merge types keys
        column = declared.header(dataset, key)
        if column in kinds and kinds[column] not in (*DATED, "null"):
            kinds[column] = kind  # text, or a timestamp (one instant, whatever its offset)
    return kinds


def _stamps(dataset: Dataset) -> list[str]:
    return [f for f in dict.fromkeys((dataset.incremental_field, dataset.partition_field)) if f]


def _stamp_kind(values: pd.Series, epoch: str) -> tuple[str, pd.Series]:
    """An incremental or partition field as the merge types it: dates when delivered as dates,
    else timestamps (``null``: no value parses); and the values that do not parse."""
    parsed, bad = transforms.parse_timestamps(values, epoch)
    failed = values[bad & values.notna()]
    kept = parsed[~bad]
    if kept.dropna().empty:
        return "null", failed
    return ("date" if transforms.is_date_only(values, kept) else "timestamp"), failed


def _unparsed_note(failed: int, values: int, first) -> str:
    if failed == values:
        return f"no value is an ISO 8601 date or time (like {str(first)!r}): declare its format"
    return (
        f"{failed} of {values} values are not ISO 8601 (like {str(first)!r}): their rows go to "
        "quarantine unless a format reads them"
    )


def widened(before: str, kind: str) -> str:
    """The kind a column has over two deliveries (text when one cannot hold the other)."""
    return transforms.widen(before, kind) or transforms.widen(kind, before) or "string"


def _entries(dataset: Dataset, kinds: dict[str, str], notes: dict[str, str]) -> list[Inferred]:
    named = {declared.header(dataset, f) for f in (*dataset.primary_key, *_stamps(dataset))}
    keys = {declared.header(dataset, k) for k in dataset.primary_key}
    taken = set(kinds)
    entries = []
    for column, kind in kinds.items():
        rename, note = _rename(dataset, column, named, taken)
        note = notes.get(column) or note
        if kind == "null":
            note = note or "no value in the files read: no type to tell"
        tests = ("not_null",) if column in keys else ()
        entries.append(Inferred(column, DECLARED_TYPE.get(kind), rename, tests, note))
    return entries


def _rename(
    dataset: Dataset, column: str, named: set[str], taken: set[str]
) -> tuple[str | None, str]:
    """The clean name to suggest for ``column`` (None: it needs none) and a note. A name the
    declaration gives already is kept; a column registry.csv names keeps the name it has there."""
    current = dataset.declared.column(column) if dataset.declared is not None else None
    if current is not None and current.rename:
        return current.rename, ""
    if COLUMN_RE.fullmatch(column) and column == column.strip() and not REFUSED.search(column):
        return None, ""
    if column in named:
        return None, "registry.csv names it: rename it there and here to give it a clean name"
    name = clean_name(column)
    while name in taken:
        name += "_"
    taken.add(name)
    return name, ""


def clean_name(header: str) -> str:
    """A valid, storable column name for an awkward header: lower case, each run of other
    characters one ``_`` (``Water flow [l/s]`` -> ``water_flow_l_s``)."""
    name = re.sub(r"\W+", "_", header.strip().lower()).strip("_")
    if not name or not re.match(r"[^\W\d_]", name):
        name = f"column_{name}".rstrip("_")
    return name[:128]


def as_yaml(dataset: Dataset, deliveries: list[Delivery], entries: list[Inferred]) -> str:
    """The entry as YAML for ``columns.yaml``: a comment saying what was read, then one line a
    column."""
    rows = sum(d.rows for d in deliveries)
    if dataset.sql is not None:
        said = [
            f"# pipelines infer {dataset.name}: the database's own types "
            f"(no row read) of {dataset.source} ({deliveries[0].ds}):"
        ]
    else:
        said = [
            f"# pipelines infer {dataset.name}: the lossless inference over "
            f"{_counted(len(deliveries), 'file')}, {_counted(rows, 'row')}:",
            *(f"#   {d.where} ({d.ds}): {_counted(d.rows, 'row')}" for d in deliveries),
        ]
    lines = [
        *said,
        f"# Edit it (types, formats, tests, contracts), then put it in include/{COLUMNS}.",
        f"{dataset.name}:",
        "  columns:",
    ]
    for entry in entries:
        spec: dict = {"type": entry.type} if entry.type else {}
        if entry.rename:
            spec["rename"] = entry.rename
        if entry.tests:
            spec["tests"] = list(entry.tests)
        comment = f"  # {entry.note}" if entry.note else ""
        lines.append(f"    {_flow(entry.name)}: {_flow(spec)}{comment}")
    return "\n".join(lines) + "\n"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _flow(value) -> str:
    """``value`` as one line of flow YAML (a text quoted where YAML needs it)."""
    import yaml

    text = yaml.safe_dump([value], default_flow_style=True, sort_keys=False, width=1 << 16)
    return text.strip()[1:-1]
