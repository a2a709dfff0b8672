"""A research namespace reads serving's raw layer in place while serving rewrites and vacuums it.

Two real processes share one lake root for ~20 s. Serving re-extracts day D over and over,
alternating between two deliveries of the day (A and B: different rows, a different ``batch``
marker, different rows to quarantine), and every commit deletes the file it replaced; serving
also sweeps the table with no age limit between rewrites. Research merges day D from serving's
raw table over and over (extract, merge, check_keys: what its DAG runs). Every research merge
must succeed, and leave a cleaned and a quarantine partition equal to what an undisturbed merge
of exactly the serving version it read gives (A or B, never a mix), and research must never
write or delete under serving's prefix.

Left alone, a research read is beaten by a vacuum only about once in 100 merges (the window
between reading the manifest and opening the file is tiny); so every other research merge's
first read of a serving file lags 0-20 ms (a slow object store), which a ~10 ms rewrite cycle
beats about every third time: those reads must re-read the newest version and still be exact.
The figures (merges, rewrites, races) are printed (``-s``); checked reads count in the suite's
summary line.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from pathlib import Path

import pandas as pd

from tests.reliability.workload import Env, fingerprint, record_paths

NAME, DAY = "feed", "2024-01-05"
SECONDS = 20.0  # of racing, once both processes are up
MANIFEST = re.compile(r"/_log/\d{10}\.json$")
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


def work_serving(home: str, root: str, barrier, report: str) -> None:
    """Worker: rewrite serving's raw ds=D, alternating B, A, B, ... until the time is up;
    report which version holds which delivery, when each was committed, what the sweeps
    deleted."""
    from pipelines.lake.tables import sweep
    from pipelines.steps.dataset import run_steps

    env = Env(home, root, "serving")
    project, (lake, _) = env.project(), lakes(root)
    raw = lake.raw(NAME)
    versions, committed, swept = {}, [], []
    barrier.wait(timeout=120)
    until = time.time() + SECONDS
    with env.active():
        while time.time() < until:
            label = "B" if len(committed) % 2 == 0 else "A"
            deliver(home, label)
            run_steps(NAME, DAY, ("extract",), project=project, lake=lake)
            committed.append(time.time())
            versions[raw.snapshot().version] = label
            swept += sweep(raw, 0)
    Path(report).write_text(json.dumps({"versions": versions, "at": committed, "swept": swept}))


def work_research(home: str, root: str, barrier, report: str) -> None:
    """Worker: merge day D from serving's raw until the time is up, recording for each merge
    the serving file it read, the reads a vacuum beat, and what the merge left; and every path
    this process wrote, created or deleted."""
    from pipelines.lake import tables as resources
    from pipelines.steps.dataset import run_steps

    _, lake = lakes(root)
    project = Env(home, root, "exp").project()
    serving_data = f"{root}/serving/raw/{NAME}/ds="
    read, vacuumed, written, slow = [], [], set(), [False]
    original_read = resources.Storage.read
    rng = random.Random(7)

    def spy_read(self, path):
        if slow[0] and path.startswith(serving_data):  # a slow store between manifest and data
            slow[0] = False
            time.sleep(rng.uniform(0, 0.02))
        try:
            data = original_read(self, path)
        except FileNotFoundError:
            if path.startswith(serving_data):
                vacuumed.append(path)
            raise
        if path.startswith(serving_data):
            read.append(path)
        return data

    resources.Storage.read = spy_read
    record_paths(("write", "create", "delete"), written)
    merges, failures = [], []
    barrier.wait(timeout=120)
    until = time.time() + SECONDS
    while time.time() < until:
        start, reads_before, missed_before = time.time(), len(read), len(vacuumed)
        slow[0] = len(merges) % 2 == 1  # every other merge: its first data read lags
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
                "vacuumed": len(vacuumed) - missed_before,
                "raw_rows": out["merge"].raw_rows,
                **research_state(lake, project),
            }
        )
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


def serving_files(root: Path) -> set[str]:
    """Every file under serving's prefix."""
    return {str(p) for p in (root / "serving").rglob("*") if p.is_file()}


def test_research_reads_a_consistent_raw_version_while_serving_rewrites_and_vacuums(
    procs, fast_dir, figures
):
    from pipelines.lake.tables import sweep
    from pipelines.steps.dataset import run_steps

    home = make_home(fast_dir / "home")
    expected = expected_states(home, fast_dir / "reference-lake")
    root = fast_dir / "lake"
    serving_env = Env(str(home), str(root), "serving")
    serving, _ = lakes(str(root))
    with serving_env.active():  # version 1 of serving's raw ds=D: delivery A
        deliver(str(home), "A")
        run_steps(NAME, DAY, ("extract",), project=serving_env.project(), lake=serving)
    barrier = procs.Barrier(2)
    reports = {w: fast_dir / f"{w}.json" for w in ("serving", "research")}
    workers = [
        procs.Process(target=work, args=(str(home), str(root), barrier, str(reports[w])))
        for w, work in (("serving", work_serving), ("research", work_research))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=SECONDS + 120)
        if worker.is_alive():
            worker.kill()
    assert [w.exitcode for w in workers] == [0, 0]
    wrote = json.loads(reports["serving"].read_text())
    got = json.loads(reports["research"].read_text())
    versions = {int(v): label for v, label in wrote["versions"].items()} | {1: "A"}
    merges = got["merges"]
    assert got["failures"] == []
    assert len(merges) >= 40, "too few research merges to prove anything"
    bad, labels = [], []
    for merge in merges:
        figures["checked_reads"] += 1
        files = merge["read"]  # one partition: one successful read of one serving file
        version = int(files[0].rsplit("/part-", 1)[1][:8]) if len(files) == 1 else None
        labels.append(versions.get(version))
        state = {k: merge[k] for k in ("raw_rows", "cleaned", "quarantine")}
        if state != expected.get(labels[-1]):
            figures["corrupt_reads"] += 1
            bad.append((files, state))
    assert bad == [], f"{len(bad)} of {len(merges)} research merges match no serving version"

    raw = serving.raw(NAME)
    named = {f"{raw.path}/{f}" for f in raw.snapshot().files}
    kept = named | {str(root / "serving" / "_namespace.json")}
    leftovers = {p for p in serving_files(root) - kept if not MANIFEST.search(p)}
    assert set(sweep(raw, 0)) == leftovers  # anything else is what serving's own sweep removes
    assert {p for p in serving_files(root) if not MANIFEST.search(p)} == kept
    assert got["written"] and all(p.startswith(f"{root}/exp/") for p in got["written"])
    assert sorted(p.name for p in root.iterdir()) == ["exp", "serving"]

    overlapped = [t for t in wrote["at"] if merges[0]["start"] <= t <= merges[-1]["end"]]
    raced = sum(m["vacuumed"] for m in merges)
    print(
        f"namespace reads: {len(merges)} research merges ({labels.count('A')} of A,"
        f" {labels.count('B')} of B), {len(wrote['at'])} serving rewrites"
        f" ({len(overlapped)} during them, {len(wrote['swept'])} files swept),"
        f" {raced} reads beaten by a vacuum and re-read, {len(leftovers)} leftovers"
    )
    assert len(overlapped) >= 200 and min(labels.count("A"), labels.count("B")) >= 10
    assert raced >= 5, "research reads hardly raced a vacuum: the test proved little"
