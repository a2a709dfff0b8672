"""``pipelines plan --apply``: the rebuilds first, each table all or nothing, then the backfills,
then the configs recorded.

A dataset whose key, partitioning, ingestion or declared types changed has every table its runs
write but raw rebuilt (:attr:`~pipelines.plan.changes.Plan.rebuilds`): its backfill runs here
with those tables written beside the current ones (``PIPELINES_REBUILD``,
:mod:`pipelines.lake.staging`), and only when every day of every rebuild succeeded is each table
switched, in one commit, its cleaned table last. A rebuild that fails switches nothing; a switch
that fails stops there, and the message names the tables switched and those that stayed: the
next plan still shows the change, and a rerun of ``plan --apply`` finishes it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable

from pipelines.cli.text import say
from pipelines.exceptions import CommitConflict, PipelinesError

RERUN = "rerun `pipelines plan --apply` to finish it"


def apply(found, project, lake, args: argparse.Namespace, backfill: Callable) -> bool:
    """Rebuild, run the backfills, then record what needed no run; False when a rebuild or a
    backfill failed (nothing more is recorded: the next plan shows the rest).

    :param backfill: ``backfill(name, first, last, args) -> exit code``
    """
    from pipelines.lake import staging
    from pipelines.plan.compare import settle

    rebuilds = found.rebuilds
    if rebuilds and args.url:
        raise PipelinesError(
            f"{', '.join(rebuilds)}: a rebuild is built beside the current tables and switched "
            "in from here, not on Airflow: run `pipelines plan --apply` without --url"
        )
    staging.writable(lake)  # a read-only lake: one line, before anything is written
    if rebuilds and not _rebuild(found, rebuilds, lake, args, backfill):
        return False
    for each in found.backfills:
        if each.name in rebuilds:
            continue
        for first, last, _ in each.ranges:
            if backfill(each.name, first, last, args) != 0:
                say(f"error: the backfill of {each.name} {first} .. {last} failed", file=sys.stderr)
                return False
    recorded = settle(found, project, lake)
    if recorded:
        say("recorded the project's config of " + ", ".join(recorded))
    return True


def _rebuild(found, rebuilds: dict, lake, args: argparse.Namespace, backfill: Callable) -> bool:
    """Every rebuild's backfill beside the current tables, then every table switched; False
    (and what stayed said) when one failed."""
    from pipelines.lake import staging
    from pipelines.runtime import environment

    tables = [t for each in rebuilds.values() for t in each]
    bases = {t: lake.manifest(*t).snapshot().version for t in tables}
    staged = lake.beside(tables)
    value = f"{lake.namespace}:{','.join(sorted(staged.rebuilt))}"
    staging.clear(lake)  # what a rebuild killed before its switch left
    try:
        with environment.variable(environment.REBUILD_ENV, value):
            for each in found.backfills:
                if each.name not in rebuilds:
                    continue
                names = ", ".join(_named(t) for t in rebuilds[each.name])
                say(f"rebuilding {names} beside the current tables", flush=True)
                for first, last, _ in each.ranges:
                    if backfill(each.name, first, last, args) != 0:
                        say(
                            f"error: the rebuild of {each.name} failed ({first} .. {last}): "
                            f"nothing was switched, every table stays as it was ({names}); "
                            f"fix the cause, then {RERUN}",
                            file=sys.stderr,
                        )
                        return False
        return _switch(lake, staged, tables, bases)
    finally:
        with contextlib.suppress(PipelinesError, OSError):  # harmless: the next rebuild clears
            staging.clear(lake)


def _switch(lake, staged, tables: list, bases: dict) -> bool:
    """Switch each rebuilt table in turn (one commit each); at the first that fails, stop and
    say which switched and which stayed."""
    from pipelines.lake import staging

    switched: list[str] = []
    for at, (layer, name) in enumerate(tables):
        try:
            staging.switch(lake, staged, layer, name, bases[(layer, name)])
        except (PipelinesError, OSError) as exc:
            why = " ".join(str(exc).split())  # one line
            if isinstance(exc, CommitConflict):
                why = "another writer committed to it during the rebuild"
            stayed = ", ".join(_named(t) for t in tables[at:])
            say(
                f"error: switching {_named((layer, name))} to its rebuilt version failed "
                f"({why}); switched: {', '.join(switched) or 'none'}; stayed as they were: "
                f"{stayed}; {RERUN}",
                file=sys.stderr,
            )
            return False
        switched.append(_named((layer, name)))
    say(f"switched to their rebuilt versions: {', '.join(switched)}", flush=True)
    return True


def _named(table: tuple) -> str:
    layer, name = table
    return f"{layer}.{name}"
