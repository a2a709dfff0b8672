"""``plan --apply`` killed mid-rebuild (issue 26, case 10): the real command, SIGKILLed while it
rebuilds a dataset beside its tables (after its first day, after its third) and as it starts
switching them. After each kill every table must read as before the rebuild, or (killed among
the switches) a table already switched must read as rebuilt, the cleaned table last; the next
``plan`` must still show the change unless every table switched; and a rerun of
``plan --apply`` must finish it. Each kill is a corruption case, healed when all of that held.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from pipelines.cli import main
from pipelines.common.partitions import Layer
from pipelines.lake.lake import Lake
from pipelines.project.table_config import CONFIG
from pipelines.steps.dataset import run_steps
from tests.integration.test_plan_rebuild import DAYS, assert_same, configure, deliveries, state
from tests.reliability.s3server import BUCKET

# the line of the command's output after which it is killed
KILLED_AFTER = [
    "ok   local__shop 2024-01-01",  # during the rebuild's backfill
    "ok   local__shop 2024-01-03",
    "5/5 runs succeeded",  # as it starts switching
]
COMMAND = [sys.executable, "-c", "from pipelines.cli import entry; entry()", "plan", "--apply"]


def apply_killed(after: str) -> bool:
    """Start ``plan --apply``, SIGKILL it once ``after`` is printed; whether it was killed
    (False: it ended first)."""
    proc = subprocess.Popen(
        COMMAND, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
    )
    try:
        for line in proc.stdout:
            if line.startswith(after):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.stdout.close()
        code = proc.wait(timeout=600)
    return code == -signal.SIGKILL


@pytest.mark.parametrize("after", KILLED_AFTER)
def test_a_killed_rebuild_leaves_the_tables_readable_and_a_rerun_finishes_it(
    home, after, figures, capsys
):
    deliveries(home)
    configure(home, "order_id")
    for day in DAYS:
        run_steps("shop", day)
    before = state()
    configure(home, "order_id|line")
    figures["corruption_cases"] += 1
    assert apply_killed(after), f"plan --apply ended before {after!r}"
    figures["kills"] += 1

    now = state()
    switched = [t for t, (v, _, _) in now.items() if v != before[t][0]]
    for table in switched:  # a table a switch reached: its one commit, the rebuilt rows
        assert now[table][0] == before[table][0] + 1, table
    assert_same({t: v for t, v in before.items() if t not in switched}, now)
    cleaned = Lake.from_env().manifest(Layer.CLEANED, "shop").snapshot()
    if "cleaned.shop" not in switched:  # switched last: the change is still planned
        assert main(["plan"]) == 2
        assert "primary_key: order_id -> order_id, line" in capsys.readouterr().out
    else:
        assert switched == list(before), switched

    assert main(["plan", "--apply"]) == 0, capsys.readouterr().out
    assert main(["plan"]) == 0
    after_rerun = state()
    cleaned = Lake.from_env().manifest(Layer.CLEANED, "shop").snapshot()
    assert cleaned.meta[CONFIG]["primary_key"] == ["order_id", "line"]
    assert len(after_rerun["cleaned.shop"][2]) == 25 and sorted(cleaned.partitions) == DAYS
    assert all(cleaned.has_landed(day) for day in DAYS)
    assert not os.path.exists(Lake.from_env().staging)
    figures["corruptions_healed"] += 1


def test_on_s3_a_failed_rebuild_changes_nothing_and_a_fixed_one_is_switched(
    home, s3, monkeypatch, capsys
):
    """The same all-or-nothing rebuild on an S3 lake (moto on 127.0.0.1): a rebuild that fails
    on day 1 leaves every table at its version with its rows; the fixed one switches them all
    and leaves nothing in the staging area."""
    import boto3

    from pipelines.runtime.secrets import delta_storage_options, s3_filesystem

    s3.clear()
    for key, value in s3.connection_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PIPELINES_LAKE", f"s3://{BUCKET}/rebuilds-{os.getpid()}")
    s3_filesystem.cache_clear()
    delta_storage_options.cache_clear()
    deliveries(home)
    configure(home, "order_id")
    for day in DAYS:
        run_steps("shop", day)
    before = state()
    configure(home, "order_id|discount", ", discounted: sum:discount")
    assert main(["plan", "--apply"]) == 1
    assert "nothing was switched" in capsys.readouterr().err
    assert_same(before, state())
    configure(home, "order_id|line", ", discounted: sum:discount")
    assert main(["plan", "--apply"]) == 0, capsys.readouterr().out
    after = state()
    assert all(after[t][0] == before[t][0] + 1 for t in before), after
    rows = {t: len(after[t][2]) for t in after}  # each partition copied once, not the table
    assert (
        rows
        == {t: len(before[t][2]) for t in before}
        == {
            "cleaned.shop": 25,
            "quarantine.shop": 0,
            "aggregated.by_status": 10,
            "aggregated.totals": 5,
        }
    )
    assert after["aggregated.totals"][2]["discounted"].notna().sum() == 2  # days 4 and 5
    assert main(["plan"]) == 0
    client = boto3.client("s3", **s3.client_args())
    prefix = f"rebuilds-{os.getpid()}/local/_rebuild/"
    assert client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0) == 0
    assert s3.clear() == 0  # no fault was injected: every call answered
    s3_filesystem.cache_clear()
    delta_storage_options.cache_clear()
