"""A research namespace reads serving's raw layer in place while serving rewrites and vacuums it.

Two real processes share one lake root for ~20 s. Serving re-extracts day D over and over,
alternating between two deliveries of the day (A and B: different rows, a different ``batch``
marker, different rows to quarantine): each is one Delta commit replacing the partition. After
each commit serving vacuums the table (``Table.vacuum`` at the shortest retention the lake
allows) with an aged orphan file planted beside the data each time (what a writer killed hours
ago leaves), so that every vacuum deletes something while research reads. Research merges day D
from serving's raw table over and over (extract, merge, check_keys: what its DAG runs). Every
research merge must succeed, and leave a cleaned and a quarantine partition equal to what an
undisturbed merge of exactly the serving version it read gives (A or B, never a mix), and
research must never write or delete under serving's prefix.

Every other research merge's read of serving's data lags 0-20 ms after it picked the version (a
slow object store); with that and the merge's own time, serving's rewrites beat research's reads
often: those reads are of a version
serving has already replaced (and vacuumed since), and must still be exact. (Was: serving's
commits deleted the replaced file at once and a ``sweep`` with no age limit ran between
rewrites, and a beaten read re-read the newest manifest. With Delta a replaced file stays until
a vacuum past retention, so a reader that picked a version reads all of it.) The figures
(merges, rewrites, superseded reads, vacuumed files) are printed (``-s``); checked reads count in
the suite's summary line.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import pandas as pd

from tests.reliability.workload import Env, fingerprint, record_paths

NAME, DAY = "feed", "2024-01-05"
SECONDS = 20.0  # of racing at least, once both processes are up
LONGEST = 90.0  # of racing at most: on a loaded machine the race runs until it proved enough
ENOUGH = {"rewrites": 40, "merges": 16, "raced": 4}  # then it stops (the asserts ask less)
REGISTRY = """\
dataset,source,format,primary_key,incremental_field,partition_field,ingestion,schedule,start_date
feed,data/feed_{ds}.csv,csv,id,updated_at,day,full,@daily,2024-01-01
"""


def delivery(label: str) -> pd.DataFrame:
    """Day D's delivery, version A or B: different ids, marker and faults."""
    ids = range(0, 600) if label == "A" else range(200, 700)
    rows = [
        {
            "id": f"K{i:04d}",
            "batch": label,
            "amount": f"{(i * 7 % 500) + (0.25 if label == 'A' else 0.75):.2f}",
            "updated_at": f"{DAY}T{i % 24:02d}:{i % 60:02d}:00Z",
            "day": DAY,
        }
        for i in ids
    ]
    if label == "A":  # 3 null keys and 2 superseded duplicates
        rows += [dict(rows[n], id="") for n in range(3)]
        rows += [dict(rows[n], amount="0.01", updated_at=f"{DAY}T00:00:00Z") for n in (10, 11)]
    else:  # 4 timestamps that do not parse
        rows += [dict(rows[n], id=f"Kbad{n}", updated_at="not-a-time") for n in range(4)]
    return pd.DataFrame(rows)


def make_home(home: Path) -> Path:
    """A project with the one dataset, and both deliveries of day D beside its source."""
    data = home / "include" / "data"
    data.mkdir(parents=True)
    (home / "include" / "registry.csv").write_text(REGISTRY)
    for name in ("aggregates.yaml", "cookbooks.yaml", "workflows.yaml"):
        (home / "include" / name).write_text("[]\n")
    for label in "AB":
        delivery(label).to_csv(home / f"delivery_{label}.csv", index=False)
    return home


def deliver(home: str, label: str) -> None:
    """Make delivery ``label`` the source of day D (atomically: serving's extract reads it)."""
    source = Path(home) / "include" / "data" / f"feed_{DAY}.csv"
    tmp = source.with_suffix(".tmp")
    shutil.copyfile(Path(home) / f"delivery_{label}.csv", tmp)
    os.replace(tmp, source)


def lakes(root: str):
    from pipelines.lake.lake import Lake

    return Lake(root, "serving"), Lake(root, "exp", upstream="serving")


def research_state(lake, project) -> dict:
    """Fingerprints of research's cleaned and quarantine partitions of day D."""

    cleaned = lake.cleaned(project.dataset(NAME)).read_partition(DAY)
    quarantine = lake.quarantine(NAME).read_partition(DAY)
    return {"cleaned": fingerprint(cleaned), "quarantine": fingerprint(quarantine)}


def plant_orphan(table_path: str, n: int) -> str:
    """An aged data file no commit names in day D's folder (a killed writer's, hours ago)."""
    folder = Path(table_path) / f"ds={DAY}"
    orphan = folder / f"part-00000-orphan-{n:05d}-c000.snappy.parquet"
    orphan.write_bytes(b"PAR1 not data PAR1")
    then = time.time() - 2 * 3600
    os.utime(orphan, (then, then))
    return str(orphan)


def work_serving(home: str, root: str, barrier, report: str, race) -> None:
    """Worker: rewrite serving's raw ds=D, alternating B, A, B, ... until the time is up, each
    commit followed by a vacuum (an aged orphan planted first); report which version holds
    which delivery, when each was committed, what was planted and what the vacuums deleted.
    ``race``: the count of rewrites it shares and the event research sets when it has enough."""
    from pipelines.lake.delta import MIN_RETENTION_HOURS
    from pipelines.steps.dataset import run_steps

    env = Env(home, root, "serving")
    project, (lake, _) = env.project(), lakes(root)
    raw = lake.raw(NAME)
    versions, committed, planted, vacuumed = {}, [], [], []
    rewrites, done = race
    barrier.wait(timeout=120)
    until = time.time() + LONGEST
    with env.active():
        while not done.is_set() and time.time() < until:
            label = "B" if len(committed) % 2 == 0 else "A"
            deliver(home, label)
            run_steps(NAME, DAY, ("extract",), project=project, lake=lake)
            committed.append(time.time())
            rewrites.value = len(committed)
            versions[raw.snapshot().version] = label
            planted.append(plant_orphan(raw.path, len(committed)))
            vacuumed += raw.vacuum(MIN_RETENTION_HOURS)
    body = {"versions": versions, "at": committed, "planted": planted, "vacuumed": vacuumed}
    Path(report).write_text(json.dumps(body))


def work_research(home: str, root: str, barrier, report: str, race) -> None:
    """Worker: merge day D from serving's raw until the time is up, recording for each merge
    the serving version it read, whether serving had replaced that version by the time the read
    ended, and what the merge left; and every path this process wrote, created, deleted or
    passed through the write guard."""
    from pipelines.lake import tables as resources
    from pipelines.steps.dataset import run_steps

    serving, lake = lakes(root)
    serving_raw = serving.raw(NAME)
    project = Env(home, root, "exp").project()
    read, superseded, written, slow = [], [], set(), [False]
    original_read = resources.Table.read_partition
    rng = random.Random(7)

    def spy_read(self, partition, snapshot=None, columns=None):
        if self.path != serving_raw.path:
            return original_read(self, partition, snapshot, columns)
        snap = snapshot or self.snapshot()
        if slow[0]:  # a slow store between picking the version and reading its files
            slow[0] = False
            time.sleep(rng.uniform(0, 0.02))
        rows = original_read(self, partition, snap, columns)
        read.append(snap.version)
        superseded.append(self.snapshot().version > snap.version)
        return rows

    resources.Table.read_partition = spy_read
    record_paths(("write", "create", "delete", "check_writable"), written)
    merges, failures = [], []
    rewrites, done = race
    barrier.wait(timeout=120)
    began = time.time()
    while time.time() < began + LONGEST and not (
        time.time() >= began + SECONDS
        and rewrites.value >= ENOUGH["rewrites"]
        and len(merges) >= ENOUGH["merges"]
        and sum(m["superseded"] for m in merges) >= ENOUGH["raced"]
    ):
        start, reads_before = time.time(), len(read)
        slow[0] = len(merges) % 2 == 1  # every other merge: its data read lags
        try:
            out = run_steps(
                NAME, DAY, ("extract", "merge", "check_keys"), project=project, lake=lake
            )
        except Exception as exc:  # reported: the test expects none
            failures.append(repr(exc))
            continue
        merges.append(
            {
                "start": start,
                "end": time.time(),
                "read": read[reads_before:],
                "superseded": any(superseded[reads_before:]),
                "raw_rows": out["merge"].raw_rows,
                **research_state(lake, project),
            }
        )
    done.set()
    body = {"merges": merges, "failures": failures, "written": sorted(written)}
    Path(report).write_text(json.dumps(body))


def expected_states(home: Path, root: Path) -> dict[str, dict]:
    """What an undisturbed research merge of each delivery leaves (each merged twice, in turn,
    over one history: the state must not depend on what was merged before)."""
    from pipelines.steps.dataset import run_steps

    env = Env(str(home), str(root), "serving")
    project, (serving, research) = env.project(), lakes(str(root))
    states: dict[str, dict] = {}
    with env.active():
        for label in "ABAB":
            deliver(str(home), label)
            run_steps(NAME, DAY, ("extract",), project=project, lake=serving)
            out = run_steps(NAME, DAY, ("extract", "merge"), project=project, lake=research)
            state = {"raw_rows": out["merge"].raw_rows, **research_state(research, project)}
            assert states.setdefault(label, state) == state
    assert states["A"] != states["B"] and "empty" not in states["A"].values()
    return states


def label_of(versions: dict[int, str], read: list[int]) -> str | None:
    """The delivery the one serving version read holds: that of the newest extract commit at or
    before it (a vacuum is a commit too, of the same data)."""
    if len(read) != 1:
        return None
    return versions[max(v for v in versions if v <= read[0])]


def test_research_reads_a_consistent_raw_version_while_serving_rewrites_and_vacuums(
    procs, fast_dir, figures
):
    from pipelines.steps.dataset import run_steps

    home = make_home(fast_dir / "home")
    expected = expected_states(home, fast_dir / "reference-lake")
    root = fast_dir / "lake"
    serving_env = Env(str(home), str(root), "serving")
    serving, _ = lakes(str(root))
    with serving_env.active():  # version 0 of serving's raw ds=D: delivery A
        deliver(str(home), "A")
        run_steps(NAME, DAY, ("extract",), project=serving_env.project(), lake=serving)
    barrier, race = procs.Barrier(2), (procs.Value("i", 0), procs.Event())
    reports = {w: fast_dir / f"{w}.json" for w in ("serving", "research")}
    workers = [
        procs.Process(target=work, args=(str(home), str(root), barrier, str(reports[w]), race))
        for w, work in (("serving", work_serving), ("research", work_research))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=LONGEST + 120)
        if worker.is_alive():
            worker.kill()
    assert [w.exitcode for w in workers] == [0, 0]
    wrote = json.loads(reports["serving"].read_text())
    got = json.loads(reports["research"].read_text())
    versions = {int(v): label for v, label in wrote["versions"].items()} | {0: "A"}
    merges = got["merges"]
    labels = [label_of(versions, m["read"]) for m in merges]
    overlapped = [t for t in wrote["at"] if merges and merges[0]["start"] <= t <= merges[-1]["end"]]
    raced = sum(m["superseded"] for m in merges)
    print(
        f"namespace reads: {len(merges)} research merges ({labels.count('A')} of A,"
        f" {labels.count('B')} of B), {len(wrote['at'])} serving rewrites"
        f" ({len(overlapped)} during them, {len(wrote['vacuumed'])} files vacuumed),"
        f" {raced} reads of a version serving had replaced by the time they ended"
    )
    assert got["failures"] == []
    assert len(merges) >= 12, "too few research merges to prove anything"
    bad = []
    for merge, label in zip(merges, labels, strict=True):  # one read of one serving version
        figures["checked_reads"] += 1
        state = {k: merge[k] for k in ("raw_rows", "cleaned", "quarantine")}
        if state != expected.get(label):
            figures["corrupt_reads"] += 1
            bad.append((merge["read"], state))
    assert bad == [], f"{len(bad)} of {len(merges)} research merges match no serving version"

    # the vacuums deleted exactly the aged orphans, never a file a version of the last hour
    # names: every version serving wrote still reads back whole, as its delivery
    raw = serving.raw(NAME)
    planted = sorted(
        str(Path(p).relative_to(root / "serving" / "raw" / NAME)) for p in wrote["planted"]
    )
    assert sorted(wrote["vacuumed"]) == planted  # vacuum names files relative to the table
    assert not any(Path(p).exists() for p in wrote["planted"])
    sample = sorted(versions)[:: max(1, len(versions) // 40)]
    delivered = {
        label: fingerprint(raw.read_partition(DAY, raw.snapshot(v)))
        for v, label in ((0, "A"), (1, "B"))
    }
    for v in sample:
        assert fingerprint(raw.read_partition(DAY, raw.snapshot(v))) == delivered[versions[v]], v
    assert got["written"] and all(p.startswith(f"{root}/exp/") for p in got["written"])
    assert sorted(p.name for p in root.iterdir()) == ["exp", "serving"]

    # a Delta rewrite cycle (extract, vacuum) takes ~0.3 s here, a research merge ~1 s
    assert len(overlapped) >= 30 and min(labels.count("A"), labels.count("B")) >= 3
    assert raced >= 3, "research reads hardly raced serving's rewrites: the test proved little"
