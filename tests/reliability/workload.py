"""The reliability suite's workload: a generated 14-day project, and the processes that run it.

``make_project`` writes an ``include/`` with four datasets whose deliveries carry every kind of
trouble the pipeline must survive (late updates that move partitions, duplicate keys with and
without ties, null keys, unparseable timestamps, rows that vanish from a full snapshot, hostile
text in values, a column added, a column dropped and a type widened). The ``work_*`` functions
are the bodies of real worker processes (started through a forkserver so each costs
milliseconds, not an interpreter start); they receive a :class:`Env` and set it up themselves,
as a separate deployment would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

DAYS = [(dt.date(2024, 1, 1) + dt.timedelta(days=d)).isoformat() for d in range(14)]
DATASETS = ("ledger", "accounts", "clicks", "hot")
AGGREGATES = {
    "ledger": "ledger_by_kind",
    "accounts": "accounts_by_region",
    "clicks": "clicks_by_page",
    "hot": "hot_total",
}
HOSTILE = ["{{ ds }}", "{% if 1 %}x{% endif %}", "$(touch pwned)", "`id`", "; rm -rf /", 'q "x", y']
REGISTRY = """\
dataset,source,format,primary_key,incremental_field,partition_field,ingestion,schedule,start_date
ledger,data/ledger_{ds}.csv,csv,entry_id,updated_at,booked_on,incremental,@daily,2024-01-01
accounts,data/accounts_{ds_nodash}.csv,csv,account_id,updated_at,opened_on,full,@daily,2024-01-01
clicks,data/clicks.jsonl,jsonl,event_id,event_time,event_time,incremental,@daily,2024-01-01
hot,data/hot_{ds}.csv,csv,id,updated_at,day,incremental,@daily,2024-01-01
"""
AGGREGATES_YAML = """\
- {name: ledger_by_kind, dataset: ledger, group_by: [kind],
   metrics: {n: count, total: "sum:amount", accounts: "count_distinct:account_id",
             units: "sum:units"}}
- {name: accounts_by_region, dataset: accounts, group_by: [region],
   metrics: {n: count, first_open: "min:opened_on"}}
- {name: clicks_by_page, dataset: clicks, group_by: [page],
   metrics: {views: count, users: "count_distinct:user"}}
- {name: hot_total, dataset: hot, group_by: [], metrics: {n: count, total: "sum:value"}}
"""


def _stamp(day: str, rng: random.Random) -> str:
    return f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"


def _ledger_day(d: int, rng: random.Random, known: list[str]) -> list[dict]:
    day = DAYS[d]
    rows = []
    for i in range(150):
        rows.append(
            {
                "entry_id": f"E{d:02d}{i:04d}",
                "account_id": f"A{rng.randrange(40):02d}",
                "kind": rng.choice(["sale", "refund", "fee"]),
                "amount": f"{rng.uniform(1, 500):.2f}",
                "updated_at": _stamp(day, rng),
                "booked_on": DAYS[max(0, d - rng.choice([0, 0, 0, 1]))],  # some arrive late
                "memo": rng.choice(HOSTILE + [""] * 6),
                **_evolving(d, rng),
            }
        )
    for key in rng.sample(known, min(30, len(known))):  # late updates; some move partitions
        rows.append(dict(rng.choice(rows), entry_id=key, updated_at=_stamp(day, rng)))
        rows[-1]["booked_on"] = DAYS[rng.randrange(d + 1)]
    for row in rng.sample(rows[:150], 5):  # duplicates in the delivery: later stamp wins
        rows.append(dict(row, amount="0.01", updated_at=f"{day}T00:00:00Z"))
    for row in rng.sample(rows[:150], 2):  # exact ties: the later row of the file wins
        rows.append(dict(row, amount="9.99"))
    rows += [dict(rows[0], entry_id=""), dict(rows[1], entry_id="")]  # null keys
    rows.append(dict(rows[2], entry_id=f"E{d:02d}bad1", updated_at="not-a-time"))
    rows.append(dict(rows[3], entry_id=f"E{d:02d}bad2", booked_on="2024-13-45"))
    known += [r["entry_id"] for r in rows[:150]]
    return [{k: v for k, v in r.items() if k != "memo"} for r in rows] if d >= 9 else rows


def _evolving(d: int, rng: random.Random) -> dict:
    """Schema evolution of the ledger: ``units`` widens from int to float on day 7, ``channel``
    appears on day 4, and (see :func:`_ledger_day`) ``memo`` is dropped from day 9 on."""
    units = rng.randrange(1, 9)
    row = {"units": str(units) if d < 7 else f"{units}.5"}
    return row | ({"channel": rng.choice(["web", "app"])} if d >= 4 else {})


def _accounts_day(d: int, rng: random.Random) -> list[dict]:
    gone = {f"A{i:02d}" for i in range(3, 30 + d, 7) if d % 3 == 2}  # vanish now and then
    rows = [
        {
            "account_id": f"A{i:02d}",
            "region": ["eu", "us", "apac"][i % 3],
            "tier": rng.choice(["free", "pro"]),
            "opened_on": (dt.date(2023, 6, 1) + dt.timedelta(days=i * 5)).isoformat(),
            "updated_at": f"{DAYS[d]}T00:00:00Z",
        }
        for i in range(30 + d)
        if f"A{i:02d}" not in gone
    ]
    return rows + [dict(rows[0], account_id="")] if d % 4 == 0 else rows


def _clicks(rng: random.Random) -> list[dict]:
    rows = []
    for d, day in enumerate(DAYS):
        for i in range(40):
            offset = rng.choice(["Z", "+02:00", "-05:00"])
            stamp = _stamp(day, rng).removesuffix("Z") + offset
            rows.append(
                {
                    "event_id": f"C{d:02d}{i:03d}",
                    "page": rng.choice(["/", "/a", "/b"]),
                    "user": f"u{rng.randrange(25)}",
                    "event_time": stamp,
                }
            )
        rows.append(dict(rows[-1], page="/dup"))  # same key, same time: later row wins
    rows += [{"event_id": "Cbad", "page": "/", "user": "u1", "event_time": "yesterday"}]
    return rows


def _hot_day(d: int, rng: random.Random) -> list[dict]:
    """Every row of every day lands in the same cleaned partition (dt=2024-01-01)."""
    rows = [
        {
            "id": f"H{d:02d}{i:03d}",
            "value": str(rng.randrange(100)),
            "updated_at": _stamp(DAYS[d], rng),
            "day": DAYS[0],
        }
        for i in range(40)
    ]
    earlier = [f"H{e:02d}{i:03d}" for e in range(d) for i in range(0, 40, 4)]
    rows += [dict(rows[0], id=k, value=str(d)) for k in rng.sample(earlier, min(10, len(earlier)))]
    return rows


def make_project(home: Path, seed: int = 1) -> Path:
    """Write ``home/include`` (registry, aggregates, 14 days of deliveries); returns ``home``."""
    rng = random.Random(seed)
    data = home / "include" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (home / "include" / "registry.csv").write_text(REGISTRY)
    (home / "include" / "aggregates.yaml").write_text(AGGREGATES_YAML)
    (home / "include" / "cookbooks.yaml").write_text("[]\n")
    known: list[str] = []
    for d, day in enumerate(DAYS):
        pd.DataFrame(_ledger_day(d, rng, known)).to_csv(data / f"ledger_{day}.csv", index=False)
        accounts = pd.DataFrame(_accounts_day(d, rng))
        accounts.to_csv(data / f"accounts_{day.replace('-', '')}.csv", index=False)
        pd.DataFrame(_hot_day(d, rng)).to_csv(data / f"hot_{day}.csv", index=False)
    lines = [json.dumps(r) for r in _clicks(rng)]
    (data / "clicks.jsonl").write_text("\n".join(lines) + "\n")
    return home


@dataclass(frozen=True)
class Env:
    """Where one deployment lives: project home, lake root, namespace, extra environment."""

    home: str
    lake: str
    namespace: str = "local"
    extra: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def active(self):
        """Point ``PIPELINES_*`` (and the connection) at this deployment; restored afterwards,
        so in-process runs leave the test session's environment as they found it."""
        values = {
            "PIPELINES_HOME": self.home,
            "PIPELINES_LAKE": self.lake,
            "PIPELINES_NAMESPACE": self.namespace,
            **self.extra,
        }
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def lake_obj(self):
        from pipelines.lake.lake import Lake

        with self.active():
            return Lake.from_env()

    def project(self):
        from pipelines.project.config import load_project

        return load_project(Path(self.home) / "include")


def run(env: Env, names: Iterable[str], days: Iterable[str], steps: Sequence[str] | None = None):
    """Run ``steps`` (default all four) of each dataset for each day, in this process, in order."""
    from pipelines.steps import dataset as pipeline_steps

    lake, project = env.lake_obj(), env.project()
    with env.active():  # sources are found through PIPELINES_HOME
        for day in days:
            for name in names:
                pipeline_steps.run_steps(
                    name, day, steps or pipeline_steps.STEPS, project=project, lake=lake
                )


def work_days(env: Env, names, days, steps, progress: str) -> None:
    """Worker: run the days in order, appending each finished day to the ``progress`` file."""
    fd = os.open(progress, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    for day in days:
        run(env, names, [day], steps)
        os.write(fd, f"{day}\n".encode())


def work_counting_conflicts(env: Env, names, days, steps, report: str, barrier=None) -> None:
    """Worker: run the days (after ``barrier``, when given: the workers start together); write
    how many commits lost a race and were retried."""
    from pipelines.exceptions import CommitConflict
    from pipelines.lake import tables as resources
    from pipelines.steps import typed_merge

    lost = []

    def counting(call):
        def counted(*args, **kwargs):
            try:
                return call(*args, **kwargs)
            except CommitConflict:
                lost.append(1)
                raise

        return counted

    # a commit of the pandas path, or the one Delta merge of the DuckDB path
    resources.Table.commit = counting(resources.Table.commit)
    typed_merge.merge = counting(typed_merge.merge)
    if barrier is not None:
        barrier.wait(timeout=120)
    run(env, names, days, steps)
    Path(report).write_text(str(len(lost)))


def work_queue(env: Env, names, queue, steps=None) -> None:
    """Worker: take days from ``queue`` until it yields None (one of N concurrent backfillers)."""
    while (day := queue.get()) is not None:
        run(env, names, [day], steps)


def record_paths(methods, into: set[str]) -> None:
    """From now on in this process, every call of those ``Storage`` methods adds the lake paths
    it is given to ``into`` (a worker's record of what it touched)."""
    from pipelines.lake import tables as resources

    for method in methods:
        original = getattr(resources.Storage, method)

        def spy(self, path, *args, _original=original, _many=method == "delete", **kwargs):
            paths = list(path) if _many else [path]
            into.update(paths)
            return _original(self, paths if _many else path, *args, **kwargs)

        setattr(resources.Storage, method, spy)


def work_guarded(env: Env, names, days, report: str) -> None:
    """Worker: run the days, recording every lake path this process touches into ``report``."""
    touched: set[str] = set()
    # check_writable: every delta-rs write of the package passes it (delta.py) with its table
    record_paths(("read", "write", "create", "list", "delete", "check_writable"), touched)
    run(env, names, days)
    Path(report).write_text("\n".join(sorted(touched)))


def fingerprint(frame: pd.DataFrame) -> str:
    """A hash of a table's content, independent of row and column order."""
    if frame.empty:
        return "empty"
    cols = sorted(frame.columns)
    rows = pd.util.hash_pandas_object(frame[cols].astype("string"), index=False)
    total = int(rows.sum()) % 2**64  # a multiset hash: the order of rows does not matter
    return hashlib.sha1(f"{cols}{total}{len(frame)}".encode()).hexdigest()[:16]


def read_table(env: Env, name: str, layer: str) -> pd.DataFrame:
    """A whole table through the public reader (every snapshot of a full dataset's cleaned)."""
    from pipelines.exceptions import LakeError
    from pipelines.inspection.reader import read

    lake, project = env.lake_obj(), env.project()
    dataset = project.dataset(name)
    with env.active():
        if layer == "cleaned" and dataset is not None and dataset.ingestion == "full":
            have = sorted(lake.cleaned(dataset).snapshot().partitions)
            frames = [read(name, layer, as_of=d, project=project, lake=lake) for d in have]
            return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        try:
            return read(name, layer, project=project, lake=lake)
        except LakeError:  # nothing committed yet
            return pd.DataFrame()


def lake_state(env: Env, names: Iterable[str] = DATASETS) -> dict[str, str]:
    """Fingerprint of every layer of the given datasets (and their aggregates)."""
    state = {}
    for name in names:
        for layer in ("raw", "cleaned", "quarantine"):
            state[f"{layer}.{name}"] = fingerprint(read_table(env, name, layer))
        agg = AGGREGATES[name]
        state[f"aggregated.{agg}"] = fingerprint(read_table(env, agg, "aggregated"))
    return state
