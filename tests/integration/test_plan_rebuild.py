"""``plan --apply`` rebuilds all or nothing (issue 26, case 10): a changed primary key plus an
aggregate over a column that arrives on day 4, over 5 days. The rebuild fails on day 1 (the new
key names that column): every table reads as before, at the same version, the staging area is
gone, and the plan still shows the change; once the key is fixed, --apply rebuilds and switches
them. On a read-only lake, --apply fails in one line and changes nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.common.partitions import Layer
from pipelines.lake.lake import Lake
from pipelines.project.table_config import CONFIG
from pipelines.steps.dataset import run_steps

DAYS = [f"2024-01-0{i}" for i in range(1, 6)]
HEADER = "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date"
ROW = "shop,sample/shop/shop_{ds}.csv,csv,%s,updated_at,order_date,incremental,2024-01-01"
AGGREGATES = (
    "- {name: by_status, dataset: shop, group_by: [status], metrics: {orders: count}}\n"
    "- {name: totals, dataset: shop, group_by: [], metrics: {revenue: sum:amount%s}}\n"
)
TABLES = [
    (Layer.CLEANED, "shop"),
    (Layer.QUARANTINE, "shop"),
    (Layer.AGGREGATED, "by_status"),
    (Layer.AGGREGATED, "totals"),
]


def deliveries(home) -> None:
    """Five daily deliveries of five order lines; ``discount`` arrives on day 4."""
    folder = home / "include" / "sample" / "shop"
    folder.mkdir(parents=True)
    for n, day in enumerate(DAYS, start=1):
        later = n >= 4
        lines = ["order_id,line,status,amount,updated_at,order_date" + (",discount" * later)]
        for j in range(1, 6):
            status = "placed" if j % 3 else "shipped"
            row = f"{n}{j},{j % 2},{status},{10 + j}.5,{day}T0{j}:00:00Z,{day}"
            lines.append(row + (f",{j}.25" if later else ""))
        (folder / f"shop_{day}.csv").write_text("\n".join(lines) + "\n")


def configure(home, key: str, metrics: str = "") -> None:
    include = home / "include"
    (include / "registry.csv").write_text(f"{HEADER}\n{ROW % key}\n")
    (include / "aggregates.yaml").write_text(AGGREGATES % metrics)
    for name in ("workflows.yaml", "cookbooks.yaml"):
        (include / name).write_text("[]\n")
    (include / "columns.yaml").write_text("{}\n")


@pytest.fixture
def shop(home):
    deliveries(home)
    configure(home, "order_id")
    for day in DAYS:
        run_steps("shop", day)
    return home


def state() -> dict:
    """Each table's version, partitions and rows (as read)."""
    lake = Lake.from_env()
    found = {}
    for layer, name in TABLES:
        table = lake.manifest(layer, name)
        snap = table.snapshot()
        rows = table.read(snapshot=snap) if snap.exists else pd.DataFrame()
        found[f"{layer}.{name}"] = (snap.version, dict(snap.partitions), rows)
    return found


def assert_same(before: dict, after: dict) -> None:
    for table, (version, partitions, rows) in before.items():
        assert after[table][:2] == (version, partitions), table
        pd.testing.assert_frame_equal(after[table][2], rows, obj=table)


def apply(capsys) -> tuple[int, str, str]:
    code = main(["plan", "--apply"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_failed_rebuild_changes_nothing_and_a_fixed_one_switches_every_table(shop, capsys):
    before = state()
    assert before["cleaned.shop"][0] >= 0 and len(before["cleaned.shop"][1]) == 5
    configure(shop, "order_id|discount", ", discounted: sum:discount")
    code, out, err = apply(capsys)
    assert code == 1, out
    assert_same(before, state())  # every table as it was, at the same version
    assert "FAIL local__shop 2024-01-01" in out
    # the days left are plan --apply's to rerun: neither `pipelines run` (it writes the live
    # tables) nor --keep-going (plan has none) is suggested
    assert "\nnot run: 2024-01-02 .. 2024-01-05 (4 days)\n" in out and "keep-going" not in out
    assert (
        "error: the rebuild of shop failed (2024-01-01 .. 2024-01-05): nothing was switched, "
        "every table stays as it was (quarantine.shop, aggregated.by_status, aggregated.totals, "
        "cleaned.shop); fix the cause, then rerun `pipelines plan --apply` to finish it"
    ) in err
    lake = Lake.from_env()
    assert not os.path.exists(lake.staging)  # the staging area is removed
    assert lake.manifest(Layer.CLEANED, "shop").snapshot().meta[CONFIG]["primary_key"] == [
        "order_id"
    ]

    code = main(["plan"])
    out = capsys.readouterr().out
    assert code == 2
    assert "primary_key: order_id -> order_id, discount" in out
    assert "the cleaned table must be rebuilt: 5 partitions" in out

    configure(shop, "order_id|line", ", discounted: sum:discount")  # the fix
    code, out, _ = apply(capsys)
    assert code == 0, out
    assert (
        "switched to their rebuilt versions: quarantine.shop, aggregated.by_status, "
        "aggregated.totals, cleaned.shop"
    ) in out
    assert main(["plan"]) == 0, capsys.readouterr().out
    after = state()
    for table, (version, _, _) in before.items():  # one switch commit each, nothing between
        assert after[table][0] == version + 1, table
    cleaned = after["cleaned.shop"]
    assert len(cleaned[1]) == 5 and len(cleaned[2]) == 25
    snap = lake.manifest(Layer.CLEANED, "shop").snapshot()
    assert snap.meta[CONFIG]["primary_key"] == ["order_id", "line"]
    assert all(snap.has_landed(day) for day in DAYS)  # the rebuild's runs are the table's
    assert not os.path.exists(lake.staging)
    reference = _built_afresh()  # the same config run day by day into an empty namespace
    for layer, name in TABLES:
        ours, theirs = after[f"{layer}.{name}"][2], reference[f"{layer}.{name}"][1]
        if layer is Layer.QUARANTINE:  # empty: its `_ds` dtype is the merge path's, either way
            assert ours.empty and theirs.empty and set(ours) == set(theirs)
            continue
        assert lake.manifest(layer, name).snapshot().kinds == reference[f"{layer}.{name}"][0]
        # in any order: a manifest reads in its files' order
        pd.testing.assert_frame_equal(_sorted(ours), _sorted(theirs), obj=name)
    totals = after["aggregated.totals"][2].sort_values("dt").reset_index(drop=True)
    expected = _totals(shop)
    assert list(totals["dt"].astype(str)) == DAYS
    assert totals["revenue"].astype(float).tolist() == pytest.approx(expected["revenue"])
    assert totals["discounted"].astype(float).fillna(0).tolist() == pytest.approx(
        expected["discounted"]
    )


def _built_afresh() -> dict:
    """Each table's kinds and rows when the project now is run day by day into a namespace that
    holds nothing yet."""
    fresh = Lake(os.environ["PIPELINES_LAKE"], "fresh")
    for day in DAYS:
        run_steps("shop", day, lake=fresh)
    found = {}
    for layer, name in TABLES:
        table = fresh.manifest(layer, name)
        snap = table.snapshot()
        rows = table.read(snapshot=snap) if snap.exists else pd.DataFrame()
        found[f"{layer}.{name}"] = (snap.kinds, rows)
    return found


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s columns by name, its rows by every column."""
    frame = frame[sorted(frame.columns)]
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def _totals(home) -> dict[str, list[float]]:
    """Each day's sum of amount and of discount (0 before it arrives), in pandas."""
    frames = [pd.read_csv(home / f"include/sample/shop/shop_{day}.csv") for day in DAYS]
    return {
        "revenue": [float(f["amount"].sum()) for f in frames],
        "discounted": [float(f["discount"].sum()) if "discount" in f else 0.0 for f in frames],
    }


@contextlib.contextmanager
def read_only(folder):
    """``folder`` and everything in it read-only: by its mode, or for root (whom modes do not
    stop) immutable (``chattr +i``); skipped where neither holds."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        undo = ["chmod", "-R", "u+w", str(folder)]
    else:
        if shutil.which("chattr") is None:
            pytest.skip("running as root and no chattr: the lake cannot be made read-only")
        done = subprocess.run(["chattr", "-R", "+i", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"running as root and chattr +i refused: {done.stderr.decode()[:200]}")
        undo = ["chattr", "-R", "-i", str(folder)]
    try:
        probe = folder / "probe"
        with contextlib.suppress(OSError):
            probe.write_text("")
        if probe.exists():
            probe.unlink()
            pytest.skip("the folder stayed writable")
        yield
    finally:
        subprocess.run(undo, check=True)


def test_a_read_only_lake_fails_in_one_line_and_changes_nothing(shop, capsys):
    before = state()
    configure(shop, "order_id|line")
    lake = Lake.from_env()
    with read_only(shop / "lake"):
        code, out, err = apply(capsys)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: the lake {lake.prefix} cannot be written here (Operation not permitted): "
        "plan --apply rebuilds and records tables there; nothing was changed"
    ] or errors == [
        f"error: the lake {lake.prefix} cannot be written here (Permission denied): "
        "plan --apply rebuilds and records tables there; nothing was changed"
    ], err
    assert "Traceback" not in out + err
    assert "starting" not in out  # no run started
    assert_same(before, state())
    assert main(["plan"]) == 2


def test_a_switch_that_meets_another_writer_says_what_stayed_and_a_rerun_finishes(
    shop, capsys, monkeypatch
):
    """Another writer commits to the cleaned table while it is rebuilt: the tables switched
    before it (its quarantine and aggregates) are named, the cleaned table stays at the other
    writer's version, the plan still shows the change, and a rerun finishes the rebuild."""
    from pipelines.cli import plan as plan_command
    from pipelines.project.config import load_project

    real = plan_command._backfill
    other: list[int] = []

    def meanwhile(name, first, last, args):
        code = real(name, first, last, args)
        lake = Lake(os.environ["PIPELINES_LAKE"], "local")  # the current tables, not beside
        table = lake.cleaned(load_project().dataset("shop"))
        base = table.snapshot()
        other.append(table.commit(base, {DAYS[0]: table.read_partition(DAYS[0], base)}).version)
        return code

    before = state()
    configure(shop, "order_id|line")
    monkeypatch.setattr(plan_command, "_backfill", meanwhile)
    code, out, err = apply(capsys)
    monkeypatch.setattr(plan_command, "_backfill", real)
    assert code == 1, out
    assert (
        "error: switching cleaned.shop to its rebuilt version failed (another writer committed "
        "to it during the rebuild); switched: quarantine.shop, aggregated.by_status, "
        "aggregated.totals; stayed as they were: cleaned.shop; rerun `pipelines plan --apply` "
        "to finish it"
    ) in err
    now = state()
    assert now["cleaned.shop"][0] == other[0] == before["cleaned.shop"][0] + 1
    assert main(["plan"]) == 2
    assert "primary_key: order_id -> order_id, line" in capsys.readouterr().out
    code, out, _ = apply(capsys)
    assert code == 0, out
    assert main(["plan"]) == 0
    snap = Lake.from_env().manifest(Layer.CLEANED, "shop").snapshot()
    assert snap.meta[CONFIG]["primary_key"] == ["order_id", "line"] and snap.rows() == 25


def test_a_rebuild_is_not_sent_to_airflow(shop, capsys):
    """With --url the backfills run on Airflow, where a run cannot write beside the tables: a
    plan with a rebuild is refused in one line, before anything is written or started."""
    before = state()
    configure(shop, "order_id|line")
    code = main(["plan", "--apply", "--url", "http://127.0.0.1:9"])
    out, err = capsys.readouterr()
    assert code == 1 and "error" not in out
    assert err.splitlines()[-1] == (
        "error: shop: a rebuild is built beside the current tables and switched in from here, "
        "not on Airflow: run `pipelines plan --apply` without --url"
    )
    assert_same(before, state())
