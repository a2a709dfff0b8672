"""Concurrency with real processes: a 14-day backfill in order, by 4 concurrent workers and
backwards gives identical data in every layer; two workers merging into the same cleaned
partition lose nothing; two namespaces running the same datasets at once stay apart."""

from __future__ import annotations

from pathlib import Path

from tests.reliability import workload
from tests.reliability.workload import DATASETS, DAYS, Env, lake_state, read_table


def run_processes(procs, target, arg_lists) -> None:
    """Start one worker per argument list at once; all must finish cleanly."""
    workers = [procs.Process(target=target, args=args) for args in arg_lists]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0] * len(workers)


def differing(state: dict, reference: dict) -> list[str]:
    return sorted(k for k in reference if state.get(k) != reference[k])


def test_backfill_in_order_by_4_concurrent_workers_and_backwards_is_identical(
    procs, project, reference, fast_dir, figures
):
    """Sequential is the reference fixture (days in order, one at a time, every step)."""
    concurrent = Env(str(project), str(fast_dir / "concurrent"))
    queue = procs.Queue()
    for day in [*DAYS, None, None, None, None]:
        queue.put(day)
    run_processes(procs, workload.work_queue, [(concurrent, DATASETS, queue)] * 4)
    backwards = Env(str(project), str(fast_dir / "backwards"))
    workload.run(backwards, DATASETS, reversed(DAYS))
    results = {"concurrent": lake_state(concurrent), "backwards": lake_state(backwards)}
    figures["modes_tried"] += 3
    figures["modes_identical"] += 1 + sum(state == reference for state in results.values())
    assert {mode: differing(state, reference) for mode, state in results.items()} == {
        "concurrent": [],
        "backwards": [],
    }
    assert len(reference) == 16 and "empty" not in {reference[f"cleaned.{n}"] for n in DATASETS}


def test_two_workers_merging_into_the_same_partition_lose_nothing(
    procs, project, reference, fast_dir, figures
):
    """Every row of ``hot`` lands in cleaned dt=2024-01-01; two workers merge 7 days each at
    once, three times over. Optimistic commits retry, so no worker's rows are lost."""
    raced = 0
    for attempt in range(3):
        env = Env(str(project), str(fast_dir / f"hot-{attempt}" / "lake"))
        reports = [fast_dir / f"hot-{attempt}-{n}" for n in range(2)]
        halves = [DAYS[:7], DAYS[7:]] if attempt % 2 == 0 else [DAYS[::2], DAYS[1::2]]
        run_processes(
            procs,
            workload.work_counting_conflicts,
            [
                (env, ["hot"], half, ("extract", "merge"), str(r))
                for half, r in zip(halves, reports)
            ],
        )
        raced += sum(int(r.read_text()) for r in reports)
        cleaned = read_table(env, "hot", "cleaned")
        assert set(cleaned["dt"]) == {DAYS[0]}
        lost = 560 - cleaned["id"].nunique()
        figures["lost_rows"] += max(lost, 0)
        assert lost == 0 and cleaned["id"].is_unique
        assert lake_state(env, ["hot"])["cleaned.hot"] == reference["cleaned.hot"]
    figures["conflicts"] += raced
    assert raced > 0, "the two workers never collided: the test proved nothing"
    print(f"same-partition merges: {raced} commits lost a race and were retried")


def test_two_namespaces_at_once_never_touch_each_others_files(procs, project, reference, fast_dir):
    """Same lake root, same dataset names, different data; each worker records every lake path
    it reads, lists, writes or deletes."""
    other = workload.make_project(fast_dir / "other-home", seed=2)
    lake = str(fast_dir / "shared-lake")
    names = ("ledger", "accounts")
    teams = {"team_a": Env(str(project), lake, "team_a"), "team_b": Env(str(other), lake, "team_b")}
    reports = {ns: fast_dir / f"{ns}.paths" for ns in teams}
    run_processes(
        procs,
        workload.work_guarded,
        [(env, names, DAYS, str(reports[ns])) for ns, env in teams.items()],
    )
    for ns in teams:
        touched = reports[ns].read_text().split("\n")
        assert touched and all(p.startswith(f"{lake}/{ns}/") for p in touched), ns
    assert sorted(p.name for p in Path(lake).iterdir()) == ["team_a", "team_b"]
    team_a, team_b = (lake_state(teams[ns], names) for ns in teams)
    assert team_a == {k: v for k, v in reference.items() if k in team_a}  # as if alone
    alone = Env(str(other), str(fast_dir / "team_b-alone"))
    workload.run(alone, names, DAYS)
    assert team_b == lake_state(alone, names) != team_a


def test_an_aggregate_computed_from_older_cleaned_data_never_commits_last(
    project, fast_dir, monkeypatch
):
    """The race the 4-worker backfill can only hit by chance, forced: run A reads cleaned for
    its aggregate; before A commits, run B merges newer rows into the same partition and commits
    its own aggregate. A must not then commit what it computed from the older rows."""
    from pipelines.steps import aggregate as aggregation

    raced = Env(str(project), str(fast_dir / "raced"))
    workload.run(raced, ["ledger"], DAYS[:1], ("extract", "merge"))
    workload.run(raced, ["ledger"], DAYS[1:2], ("extract",))
    original, calls = aggregation._changes, []

    def changes_then_b_overtakes(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:  # A has read cleaned: now B runs to the end
            workload.run(raced, ["ledger"], DAYS[1:2], ("merge", "aggregate"))
        return result

    monkeypatch.setattr(aggregation, "_changes", changes_then_b_overtakes)
    aggregate_as_run_a(raced)
    in_order = Env(str(project), str(fast_dir / "in-order"))
    workload.run(in_order, ["ledger"], DAYS[:2])
    assert lake_state(raced, ["ledger"]) == lake_state(in_order, ["ledger"])
    assert len(calls) >= 3  # A, B, then A again: A's first result was thrown away


def aggregate_as_run_a(env: Env) -> None:
    """The aggregate step of the first day's run, which touched cleaned dt=DAYS[0]."""
    from pipelines.common.partitions import interval_for
    from pipelines.steps.dataset import MergeResult, aggregate

    project = env.project()
    dataset = project.dataset("ledger")
    with env.active():
        interval = interval_for(dataset.cron, DAYS[0])
        aggregate(dataset, interval, env.lake_obj(), MergeResult(touched=[DAYS[0]]), project)
