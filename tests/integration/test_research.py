"""A research namespace over a serving one in the same lake: it reads serving's raw layer in
place, writes only under its own prefix, and leaves every serving file byte-identical; the
``namespace`` command shows, lists and drops namespaces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import pipelines
from pipelines.cli import main
from pipelines.exceptions import LakeError
from pipelines.project.config import load_project
from pipelines.steps.dataset import run_steps
from tests.conftest import data_columns

DAYS = ["2024-01-01", "2024-01-02"]


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def serving(home, monkeypatch):
    """Two days of orders and customers in namespace ``serving``; the process is then in ``exp``
    (a research namespace, by the shipped namespaces.yaml)."""
    monkeypatch.setenv("PIPELINES_NAMESPACE", "serving")
    for day in DAYS:
        for name in ("orders", "customers"):
            run_steps(name, day)
    monkeypatch.setenv("PIPELINES_NAMESPACE", "exp")
    return home / "lake"


def out_of(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def err_of(capsys, argv) -> tuple[int, str]:
    """The exit code and standard error of a command that fails (its standard output: empty)."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert out == "", out
    return code, err


def test_research_reads_servings_raw_in_place_and_writes_only_its_own(
    serving, airflow_db, monkeypatch
):
    from pipelines.runs.local import run_dag

    before = files_of(serving / "serving")
    for day in DAYS:
        for dag_id in ("exp__orders", "exp__customers"):
            outcome = run_dag(dag_id, day)
            assert outcome.ok, outcome.error
    for name in ("customer_features", "train_refund_model"):
        assert run_dag(f"exp__workflow__{name}", DAYS[1]).ok
    assert files_of(serving / "serving") == before  # byte for byte, manifests included
    assert sorted(p.name for p in serving.iterdir()) == ["exp", "serving"]
    assert not (serving / "exp" / "raw").exists()  # nothing copied, nothing re-ingested
    assert {p.name for p in (serving / "exp").iterdir()} == {
        "_namespace.json",
        "_runs",  # what research's own runs recorded
        "cleaned",
        "quarantine",
        "aggregated",
        "workflows",
    }
    research = {n: data_columns(pipelines.read(n, "cleaned")) for n in ("orders", "customers")}
    raw = pipelines.read("orders", "raw")  # serving's delivery, read through research
    monkeypatch.setenv("PIPELINES_NAMESPACE", "serving")
    for name, frame in research.items():
        pd.testing.assert_frame_equal(frame, data_columns(pipelines.read(name, "cleaned")))
    pd.testing.assert_frame_equal(raw, pipelines.read("orders", "raw"))


def test_a_write_into_another_namespace_fails_naming_both_prefixes(serving):
    before = files_of(serving)
    lake = load_project().lake()
    assert (lake.namespace, lake.upstream) == ("exp", "serving")
    raw = lake.raw("orders")  # serving's table, read in place
    assert len(raw.read()) == 11
    with pytest.raises(LakeError) as refused:
        raw.commit(raw.snapshot(), {"2024-01-05": pd.DataFrame({"order_id": [1]})})
    message = str(refused.value)
    assert f"writes only under {serving}/exp" in message
    assert f"{serving}/serving belongs to another namespace" in message
    with pytest.raises(LakeError, match="belongs to another namespace"):
        lake.storage.delete([f"{serving}/serving/raw/orders/_delta_log/00000000000000000000.json"])
    assert files_of(serving) == before


def test_vacuum_in_research_never_deletes_servings_files(serving, capsys, monkeypatch):
    import os

    run_steps("orders", DAYS[0])  # research has tables of its own too
    leftovers = [
        serving / "serving" / "raw" / "orders" / "ds=2024-01-01" / "part-00000099-abc.parquet",
        serving / "exp" / "cleaned" / "orders" / "dt=2024-01-01" / "part-00000099-abc.parquet",
    ]
    for path in leftovers:
        path.write_bytes(b"left by a crashed writer")
        os.utime(path, (1, 1))
    assert out_of(capsys, ["vacuum", "--retention-hours", "1"]) == (
        0,
        "deleted 1 file no version of the last 1 h needs\n",
    )
    assert leftovers[0].exists() and not leftovers[1].exists()
    monkeypatch.setenv("PIPELINES_NAMESPACE", "serving")
    assert out_of(capsys, ["vacuum", "--retention-hours", "1"])[0] == 0
    assert not leftovers[0].exists()


def test_namespace_shows_the_kind_prefix_and_upstream(serving, capsys):
    code, out = out_of(capsys, ["namespace"])
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert code == 0
    assert fields["namespace"] == "exp" and fields["from"] == "PIPELINES_NAMESPACE"
    assert fields["kind"].startswith("research (nothing is scheduled")
    assert fields["lake"] == f"{serving}/exp"
    assert fields["raw"] == f"read in place from 'serving' ({serving}/serving/raw)"
    code, out = out_of(capsys, ["namespace", "--namespace", "serving"])
    assert "kind       serving" in out and "ingested from the registry's sources" in out
    _, out = out_of(capsys, ["list"])  # what the DAGs get here, not what the registry says
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[1:]}
    assert rows["exp__orders"] == ["triggered", "(research)", "incremental"]
    _, out = out_of(capsys, ["list", "--namespace", "main"])
    assert "triggered (master)" in out.splitlines()[1]
    assert "None" not in out  # Python's word for nothing is no schedule a user reads
    assert "0 * * * * (replays 2024-01-01)" in next(
        line for line in out.splitlines() if line.startswith("main__cookbook__e2e_test")
    )


def test_namespace_list_then_drop(serving, capsys, monkeypatch):
    run_steps("orders", DAYS[0])
    code, out = out_of(capsys, ["namespace", "list"])
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert code == 0 and set(rows) == {"exp", "serving"}
    assert rows["exp"][1:3] == ["*", "research"] and rows["serving"][1:3] == ["serving", "8"]
    # a log a repair set aside (kept under _damaged/) or a rebuild left (_rebuild/) is no table
    log = next((serving / "serving" / "cleaned" / "orders" / "_delta_log").glob("*.json"))
    for kept in ("_damaged/20240101T000000000000Z/cleaned/orders", "_rebuild/cleaned/orders"):
        copy = serving / "serving" / kept / "_delta_log" / log.name
        copy.parent.mkdir(parents=True)
        copy.write_bytes(log.read_bytes())
    code, out = out_of(capsys, ["namespace", "list"])
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert rows["serving"][1:3] == ["serving", "8"], out
    serving_files = files_of(serving / "serving")

    code, err = err_of(capsys, ["namespace", "drop", "serving", "--yes"])
    assert code == 1 and "is a serving namespace" in err
    for name in ("serving/raw", ".", "..", "exp/../serving", ""):  # never a path, only a name
        code, err = err_of(capsys, ["namespace", "drop", name, "--yes"])
        assert code == 1 and "is not a namespace name" in err, (name, err)
    assert files_of(serving / "serving") == serving_files
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: (_ for _ in ()).throw(EOFError))
    assert out_of(capsys, ["namespace", "drop", "exp"]) == (1, "not dropped\n")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, err = err_of(capsys, ["namespace", "drop", "exp"])
    assert (
        code == 1 and err.strip() == "error: drop 'exp': confirm with --yes (no terminal to ask on)"
    )
    assert (serving / "exp").exists()
    code, out = out_of(capsys, ["namespace", "drop", "exp", "--yes"])
    assert code == 0 and out.startswith("dropped namespace exp: deleted ")
    assert not (serving / "exp").exists()
    assert files_of(serving / "serving") == serving_files
    code, err = err_of(capsys, ["namespace", "drop", "exp", "--yes"])
    assert code == 1 and "has nothing in the lake" in err


def test_a_master_namespace_cannot_be_dropped(home, capsys, monkeypatch):
    monkeypatch.setenv("PIPELINES_NAMESPACE", "main")
    run_steps("orders", DAYS[0])
    monkeypatch.setenv("PIPELINES_NAMESPACE", "exp")
    code, err = err_of(capsys, ["namespace", "drop", "main", "--yes"])
    assert code == 1 and "'main' is a master namespace" in err
    assert (home / "lake" / "main" / "cleaned" / "orders").exists()


def test_namespace_diff_reports_the_rows_a_branch_changed(serving, capsys):
    from pipelines.lake.tables import commit_with_retry

    for day in DAYS:
        run_steps("orders", day)
    code, out = out_of(capsys, ["namespace", "diff", "serving", "--table", "orders"])
    assert (code, out.splitlines()[-1]) == (0, "exp and serving are identical (tables compared: 2)")
    project = load_project()
    cleaned = project.lake().cleaned(project.dataset("orders"))

    def edit(base):
        frame = cleaned.read_partition("2024-01-01", base)
        frame = frame[frame["order_id"] != "1003"].copy()  # a row the branch no longer has
        frame.loc[frame["order_id"] == "1001", "status"] = "lost"  # and one it changed (keys: text)
        return cleaned.commit(base, {"2024-01-01": frame})

    commit_with_retry(cleaned, edit)
    code, out = out_of(capsys, ["namespace", "diff", "serving", "--table", "orders"])
    lines = out.splitlines()
    assert code == 2  # they differ: exit 2, like plan's changes, so CI can fail on it
    assert "cleaned.orders: 0 only in exp, 1 only in serving, 1 changed, 4 same" in lines
    assert "  dt=2024-01-01: 0 only in exp, 1 only in serving, 1 changed" in lines
    assert "  e.g. only in serving: order_id=1003" in lines
    assert "  e.g. changed: order_id=1001 (status)" in lines
    assert "quarantine.orders: 0 only in exp, 0 only in serving, 0 changed, 4 same" in lines
    assert lines[-1].startswith("exp vs serving: tables differing: 1 of 2")


def test_a_research_run_whose_code_writes_into_serving_fails_clearly(
    serving, airflow_db, monkeypatch
):
    """A bug that makes research believe it owns the raw layer: its extract then writes the
    delivery into serving's raw table, and the run fails on the guard, naming both prefixes."""
    from pipelines.lake.lake import Lake
    from pipelines.runs.local import run_dag

    before = files_of(serving / "serving")
    monkeypatch.setattr(Lake, "owns", lambda self, layer: True)
    outcome = run_dag("exp__orders", DAYS[0])
    assert (outcome.ok, outcome.failed_task) == (False, "ingest.extract")
    assert outcome.error.startswith(f"refused to write {serving}/serving/raw/orders: ")
    assert f"writes only under {serving}/exp, and {serving}/serving belongs to another" in (
        outcome.error
    )
    assert files_of(serving / "serving") == before


def test_validate_reports_namespaces_yaml(home, capsys):
    path = home / "include" / "namespaces.yaml"
    path.write_text("master: {cookbook: e2e_tset}\n")
    code, out = out_of(capsys, ["validate"])
    assert code == 1
    assert out.splitlines() == [
        "namespaces.yaml: master.cookbook: no cookbook 'e2e_tset' in cookbooks.yaml; known: "
        "e2e_test, refund_model"
    ]
    path.write_text("master: {colour: red}\n")
    code, out = out_of(capsys, ["validate"])
    assert (code, out.splitlines()) == (
        1,
        [
            "namespaces.yaml: master.colour: not a master setting "
            "(those: cookbook, date, maintenance, pool, retention_hours, schedule)"
        ],
    )
