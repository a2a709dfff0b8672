"""``pipelines repair``: the damaged files of a namespace's tables set aside, each table put back
at its last good version (:mod:`pipelines.lake.heal`), and what the versions set aside held made
again from the truth below them: a raw table's days from their deliveries (the sources), a
cleaned or quarantine table's days from the raw table, an aggregate's from the cleaned table;
the runs table's records from the data files its damaged log entries had added.

A workflow's output is not rerun here (its code is the user's): its days are named, with the
command that reruns them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pipelines.common.partitions import Layer
from pipelines.exceptions import LakeError, PipelinesError
from pipelines.lake import heal
from pipelines.lake.heal import Healed
from pipelines.lake.lake import Lake
from pipelines.lake.tables import Table
from pipelines.project.config import Project
from pipelines.runtime.secrets import redact
from pipelines.steps.dataset import STEPS, run_steps
from pipelines.steps.maintenance import tables

log = logging.getLogger(__name__)
FROM_RAW = ("merge", "check_keys", "aggregate")  # a day made again from its raw delivery


@dataclass
class Repaired:
    """What ``repair`` did to one table.

    :param table: ``layer/name`` (``_runs`` for the runs table)
    :param healed: the files set aside and the version put back (None: it could not be)
    :param reran: the days made again
    :param unhealed: what could not be healed, in words (None: all of it was)
    """

    table: str
    healed: Healed | None
    reran: list[str] = field(default_factory=list)
    unhealed: str | None = None

    def __str__(self) -> str:
        if self.healed is None:
            return f"{self.table}: NOT healed: {self.unhealed}"
        h = self.healed
        what = "; ".join(f"{d.path.rsplit('/', 1)[1]} {d.why}" for d in h.damage)
        done = [f"{self.table}: damaged ({what})", f"set aside: {heal.moved_text(h)}"]
        if h.restored is not None and h.lost_from is not None:
            done.append(f"restored version {h.restored}'s rows (now version {h.version})")
        if h.salvaged:
            done.append(f"recommitted {h.salvaged} records of the entries set aside")
        if self.reran:
            done.append(f"made again: {', '.join(self.reran)}")
        if self.unhealed:
            done.append(f"NOT healed: {self.unhealed}")
        return "; ".join(done)


def repair(
    project: Project,
    lake: Lake,
    name: str | None = None,
    *,
    on_table: Callable[[Repaired], None] | None = None,
) -> list[Repaired]:
    """Repair every table of the namespace (or those of ``name``: a dataset's layers and its
    aggregates, an aggregate, a workflow), its runs table first; what was done to each damaged
    one (none: nothing was damaged). The footer of every data file of each table's newest
    version is read; with ``name``, each of those tables' files is read whole (a changed byte
    inside a page)."""
    aside = heal.aside_folder(lake.prefix)
    done: list[Repaired] = []

    def report(item: Repaired) -> None:
        done.append(item)
        if on_table is not None:
            on_table(item)

    runs = lake.run_log()
    try:
        healed = heal.heal(runs.path, lake.storage, lake.prefix, aside)
        if healed is not None:
            heal.salvage(healed, lake.storage)
            runs.forget_read()
            report(Repaired("_runs", healed))
    except LakeError as exc:
        report(Repaired("_runs", None, unhealed=str(exc)))
        return done  # every other table's repair reads and writes the records
    for layer, table_name, table in _chosen(project, lake, name):
        item = _repair_table(project, lake, layer, table_name, table, aside, whole=name is not None)
        if item is not None:
            report(item)
    return done


def _chosen(project: Project, lake: Lake, name: str | None) -> Iterable[tuple[Layer, str, Table]]:
    """The tables this namespace writes that ``name`` covers (every one, for None)."""
    dataset_of = {a.name: a.dataset for a in project.aggregates}
    for layer, label, table, _ in tables(project, lake, foreign=False):
        table_name = label.split(" ", 1)[0]
        if name is None or name == table_name or dataset_of.get(table_name) == name:
            yield layer, table_name, table


def _repair_table(
    project: Project,
    lake: Lake,
    layer: Layer,
    name: str,
    table: Table,
    aside: str,
    *,
    whole: bool = False,
) -> Repaired | None:
    label = f"{layer}/{name}"
    try:
        healed = heal.heal(table.path, lake.storage, lake.prefix, aside, whole=whole)
    except LakeError as exc:
        return Repaired(label, None, unhealed=str(exc))
    if healed is None:
        return None
    table.record_holdings()  # what it holds now, whole: the records' replay starts here
    item = Repaired(label, healed)
    if healed.lost_from is None:
        return item
    days = _days_from(table, healed.lost_from)
    if layer is Layer.WORKFLOWS:
        if days:
            item.unhealed = (
                f"the days {', '.join(days)} are to be run again: "
                f"pipelines run {name} --date DAY (for each)"
            )
        return item
    return _remake(project, lake, layer, name, days, item, aside)


def _remake(
    project: Project,
    lake: Lake,
    layer: Layer,
    name: str,
    days: list[str],
    item: Repaired,
    aside: str,
) -> Repaired:
    """Run the days again, in order: a raw table's from its deliveries (every step), the
    others' from the raw table (merge, checks, aggregates). The first that fails stops it."""
    dataset = {a.name: a.dataset for a in project.aggregates}.get(name, name)
    steps = STEPS if layer is Layer.RAW else FROM_RAW
    for day in days:
        try:
            run_steps(dataset, day, steps, project=project, lake=lake)
        except PipelinesError as exc:
            kept = heal.keep_added(item.healed, lake.storage, lake.prefix, aside)
            copies = f"; the data files its entries had added are kept in {redact(aside)}"
            item.unhealed = (
                f"{day} could not be made again ({exc}){copies if kept else ''}; once its "
                f"delivery is back: pipelines run {dataset} --date {day}"
            )
            return item
        item.reran.append(day)
    return item


def _days_from(table: Table, version: int) -> list[str]:
    """The days whose newest run left the table at ``version`` or later, oldest first."""
    snap = table.snapshot()
    made = {day: snap.version_of(day) for day in snap.meta["runs"]}
    return sorted(day for day, v in made.items() if v is not None and v >= version)
