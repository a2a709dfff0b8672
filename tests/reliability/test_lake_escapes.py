"""Escapes through symbolic links (issue 26, case 4): a link inside the lake must not carry a
research namespace's writes, creates or deletes into another namespace's tables.

A lake where ``serving`` and the research namespace ``exp`` both ran orders for two days; then,
in a copy of it per case, one thing of ``exp`` is replaced by a link into ``serving`` (a table,
the runs table, the whole namespace folder, a partition folder, the Delta log, a folder inside a
partition) and one command runs in ``exp`` (run, backfill, vacuum, optimize, plan --apply after a
primary key change). Every file of serving is aged two days (and an old orphan lies in its
cleaned table), so that a vacuum through a link would find files to delete. Each attempt counts
as an escape case; one after which any file of serving differs (a version added, a file added,
deleted or rewritten) counts as escaped and fails. A refusal is one line naming the link, with
no traceback. (Was: the guard judged the path as it reads, so a run through
``exp/cleaned/orders -> serving/cleaned/orders`` committed to serving's table.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

DAYS = ("2024-01-01", "2024-01-02")
REGISTRY = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,schedule,"
    "start_date\n"
    "orders,sample/orders/orders_{ds}.csv,csv,%s,updated_at,order_date,incremental,@daily,"
    "2024-01-01\n"
)
# what is replaced by a link, and where the link leads (both relative to the lake root)
LINKS = {
    "table": ("exp/cleaned/orders", "serving/cleaned/orders"),
    "runs table": ("exp/_runs", "serving/_runs"),
    "namespace": ("exp", "serving"),
    "partition": ("exp/cleaned/orders/dt=2024-01-01", "serving/cleaned/orders/dt=2024-01-01"),
    "log": ("exp/cleaned/orders/_delta_log", "serving/cleaned/orders/_delta_log"),
    "inside a partition": ("exp/cleaned/orders/dt=2024-01-01/more", "serving/cleaned/orders"),
}
COMMANDS = {
    "run": ["run", "orders", "--date", DAYS[1]],
    "backfill": ["backfill", "orders", "--start", DAYS[0], "--end", DAYS[1]],
    "vacuum": ["vacuum", "--retention-hours", "1"],
    "optimize": ["optimize"],
    "plan --apply": ["plan", "--apply"],
}
CLI = "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))"
TASKS = ("run", "backfill", "plan --apply")  # the commands that run Airflow tasks here


def use(home: Path, monkeypatch, namespace: str) -> None:
    monkeypatch.setenv("PIPELINES_HOME", str(home))
    monkeypatch.setenv("PIPELINES_LAKE", str(home / "lake"))
    monkeypatch.setenv("PIPELINES_NAMESPACE", namespace)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The home both namespaces ran orders in, every file of it two days old."""
    from pipelines.steps.dataset import run_steps

    home = tmp_path_factory.mktemp("escapes") / "home"
    shutil.copytree(REPO / "include", home / "include")
    (home / "include" / "registry.csv").write_text(REGISTRY % "order_id")
    for name in ("aggregates.yaml", "cookbooks.yaml", "workflows.yaml"):
        (home / "include" / name).write_text("[]\n")
    (home / "include" / "columns.yaml").write_text("{}\n")
    with pytest.MonkeyPatch.context() as patch:
        for namespace in ("serving", "exp"):
            use(home, patch, namespace)
            for day in DAYS:
                run_steps("orders", day)
    lake = home / "lake"
    orphan = lake / "serving" / "cleaned" / "orders" / "dt=2024-01-01" / "part-orphan.parquet"
    orphan.write_bytes(b"left by a writer killed two days ago")
    then = time.time() - 48 * 3600
    for path in lake.rglob("*"):
        os.utime(path, (then, then), follow_symlinks=False)
    return home


def state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` (links not followed): its size and modification time."""
    found = {}
    for top, _, names in os.walk(folder):
        for name in names:
            path = Path(top) / name
            info = path.lstat()
            found[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("placement", LINKS)
def test_a_link_into_another_namespace_carries_no_write(
    template, tmp_path, monkeypatch, capsys, figures, placement, command
):
    from pipelines.cli import main

    home = tmp_path / "home"
    shutil.copytree(template, home, symlinks=True)
    lake = home / "lake"
    if command == "plan --apply":  # a changed key: the plan empties cleaned.orders to rebuild
        (home / "include" / "registry.csv").write_text(REGISTRY % "order_id|customer_id")
    replaced, target = LINKS[placement]
    link = lake / replaced
    if link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(lake / target, target_is_directory=True)
    use(home, monkeypatch, "exp")
    before = state(lake / "serving")

    figures["escape_cases"] += 1
    code = main(COMMANDS[command])
    out, err = capsys.readouterr()
    escaped = state(lake / "serving") != before
    figures["escapes_escaped"] += escaped

    said = out + err
    assert not escaped, f"{placement} link, {command}: serving changed\n{said}"
    if command not in TASKS:  # in-process, the suite's Airflow log level prints task logs
        assert "Traceback" not in said, said  # too: test_a_refusal_is_one_line runs one apart
    if placement != "inside a partition" or command == "vacuum":  # a write there follows none
        assert code != 0, said
        lines = [line for line in said.splitlines() if line.startswith(("FAIL ", "error: "))]
        assert lines and "is a symbolic link" in lines[0], said
        assert f"{lake / replaced} is a symbolic link (to {lake / target})" in lines[0]


def test_a_refusal_is_one_line(template, tmp_path):
    """What a user sees of a run refused through a link, in a process of its own (as the
    command runs): one line naming the link, no traceback."""
    home = tmp_path / "home"
    shutil.copytree(template, home, symlinks=True)
    table = home / "lake" / "exp" / "cleaned" / "orders"
    shutil.rmtree(table)
    table.symlink_to(home / "lake" / "serving" / "cleaned" / "orders", target_is_directory=True)
    env = {  # Airflow's log level as a user has it (the suite's is WARNING)
        **{k: v for k, v in os.environ.items() if k != "AIRFLOW__LOGGING__LOGGING_LEVEL"},
        "PIPELINES_HOME": str(home),
        "PIPELINES_LAKE": str(home / "lake"),
        "PIPELINES_NAMESPACE": "exp",
    }
    for argv in (COMMANDS["run"], COMMANDS["vacuum"]):
        done = subprocess.run(
            [sys.executable, "-c", CLI, *argv], env=env, capture_output=True, text=True
        )
        said = done.stdout + done.stderr
        refused = [line for line in said.splitlines() if "is a symbolic link" in line]
        assert done.returncode != 0 and len(refused) == 1, said
        assert "Traceback" not in said, said
