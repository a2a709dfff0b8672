"""Killing worker processes at random moments, and checking what readers see after each kill.

An uninterrupted run is recorded first (:func:`expect`): every state of cleaned it passes
through, and every raw and quarantine partition it writes. After each SIGKILL a reader must see
one of those states (never an earlier one than before, never a mix) and only partitions equal to
the uninterrupted run's; when the round's days are done the whole lake must equal it.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from tests.reliability import workload
from tests.reliability.workload import Env, fingerprint, read_table

NAMES = ("ledger", "accounts")
STEPS = ("extract", "merge")


@dataclass(frozen=True)
class Plan:
    """How one round kills: over which days, how many kills at most, how late after start."""

    days: list[str]
    kills: int
    max_delay: float
    workdir: Path  # where the workers note the days they finished
    read_during: bool = True


@dataclass
class Expected:
    """What an uninterrupted run passes through: cleaned after each day, each raw/quarantine
    partition, and every table at the end."""

    reference: Env
    cleaned: dict[str, list[str]] = field(default_factory=dict)
    partitions: dict[str, dict[str, str]] = field(default_factory=dict)
    final: dict[str, object] = field(default_factory=dict)


def by_partition(frame) -> dict[str, str]:
    """Each partition's fingerprint, over the columns it holds: the raw layer keeps every
    delivery's own columns, and a column that only later deliveries bring is not one of its."""
    if frame.empty:
        return {}
    return {
        ds: fingerprint(rows.drop(columns="ds").dropna(axis=1, how="all"))
        for ds, rows in frame.groupby("ds")
    }


def observe(env: Env) -> dict[str, object]:
    """Everything a reader can see now, as fingerprints (cleaned whole, others per partition)."""
    seen: dict[str, object] = {}
    for name in NAMES:
        seen[f"cleaned.{name}"] = fingerprint(read_table(env, name, "cleaned"))
        for layer in ("raw", "quarantine"):
            seen[f"{layer}.{name}"] = by_partition(read_table(env, name, layer))
    return seen


def expect(env: Env, days: list[str]) -> Expected:
    """Run the days uninterrupted, in this process, noting every state a reader may see."""
    out = Expected(env, {n: [fingerprint(read_table(env, n, "cleaned"))] for n in NAMES})
    for day in days:
        workload.run(env, NAMES, [day], STEPS)
        for name in NAMES:
            out.cleaned[name].append(fingerprint(read_table(env, name, "cleaned")))
    seen = observe(env)
    out.partitions = {k: v for k, v in seen.items() if not k.startswith("cleaned.")}
    out.final = seen
    return out


class Checker:
    """Checks each observation against the states of an uninterrupted run; never goes back."""

    def __init__(self, expected: Expected, figures):
        self.expected, self.figures = expected, figures
        self.floor = dict.fromkeys(NAMES, 0)

    def check(self, env: Env) -> None:
        self.figures["checked_reads"] += 1
        try:
            seen = observe(env)
        except Exception as exc:  # a partial or missing file would end up here
            self.figures["corrupt_reads"] += 1
            raise AssertionError(f"read failed after a kill: {exc!r}") from exc
        bad = [k for k, v in seen.items() if not self._valid(k, v)]
        if bad:
            self.figures["corrupt_reads"] += 1
            raise AssertionError(f"state no uninterrupted run passes through: {bad}")

    def _valid(self, key: str, value) -> bool:
        layer, name = key.split(".")
        if layer == "cleaned":
            states = self.expected.cleaned[name]
            if value not in states[self.floor[name] :]:
                return False
            self.floor[name] = states.index(value, self.floor[name])
            return True
        want = self.expected.partitions[key]
        return all(want.get(ds) == fp for ds, fp in value.items())


COMMIT = re.compile(r"\d{20}\.(json|checkpoint\.parquet)$|_last_checkpoint$")


def named_by_log(log: Path) -> set[str]:
    """The data files some commit of a Delta log adds (paths relative to the table), read from
    the JSON commits themselves (delta-rs keeps every one until log retention, 30 days)."""
    named: set[str] = set()
    for commit in log.glob("*.json"):
        for line in commit.read_text().splitlines():
            action = json.loads(line) if line.strip() else {}
            if "add" in action:
                named.add(unquote(action["add"]["path"]))
    return named


def unreferenced(lake: Path) -> int:
    """Data files in the lake's Delta tables that no commit names (left by kills: written for a
    commit that never came). Readers never see them (they read what the log names); a vacuum
    past its retention deletes them."""
    count = 0
    for log in lake.rglob("_delta_log"):
        table, named = log.parent, named_by_log(log)
        for path in table.rglob("*"):
            if path.is_file() and log not in path.parents:
                count += str(path.relative_to(table)) not in named
    return count


def unfinished_commits(lake: Path) -> int:
    """Files in a ``_delta_log`` that are not a commit or a checkpoint: the temporary file of a
    commit whose writer was killed before delta-rs renamed it to its version. Readers ignore
    them; Delta's vacuum leaves the log alone, so they stay (a few bytes each)."""
    return sum(
        1
        for log in lake.rglob("_delta_log")
        for path in log.iterdir()
        if path.is_file() and not COMMIT.search(path.name)
    )


def age(lake: Path, hours: float) -> None:
    """Make every data file of the lake look ``hours`` old (what a vacuum's retention goes by
    for files no commit names), as if the kills had happened that long ago: half-written ones
    too (``name.parquet#N``, a local write a kill cut short; a CI run's kill left one, which
    this missed)."""
    then = time.time() - hours * 3600
    for path in lake.rglob("*.parquet*"):
        os.utime(path, (then, then))


def kill_round(procs, env: Env, checker: Checker, rng: random.Random, plan: Plan) -> int:
    """Kill workers at random moments until the plan's days are done; returns kills made."""
    progress = plan.workdir / "progress"
    plan.workdir.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    kills = 0
    while len(done) < len(plan.days):
        start = len(done) if rng.random() > 0.2 else rng.randrange(len(done) + 1)
        worker = procs.Process(
            target=workload.work_days, args=(env, NAMES, plan.days[start:], STEPS, str(progress))
        )
        deadline = time.monotonic() + rng.uniform(0.005, plan.max_delay)
        worker.start()
        while worker.is_alive() and (kills >= plan.kills or time.monotonic() < deadline):
            if plan.read_during:
                checker.check(env)  # readers during the writes
            else:
                time.sleep(0.005)
        worker.kill()
        worker.join()
        assert worker.exitcode in (0, -9), f"worker failed on its own: {worker.exitcode}"
        kills += worker.exitcode == -9
        if progress.exists():
            done = sorted(set(done) | set(progress.read_text().split()))
        checker.check(env)  # and after the kill
    return kills


def lost_keys(env: Env, reference: Env) -> int:
    """Keys the uninterrupted run has in cleaned that this lake does not."""
    lost = 0
    for name, key in (("ledger", "entry_id"), ("accounts", "account_id")):
        want = set(read_table(reference, name, "cleaned")[key])
        lost += len(want - set(read_table(env, name, "cleaned")[key]))
    return lost
