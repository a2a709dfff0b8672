"""`pipelines lake upgrade` on a lake the release before Delta tables wrote.

The lake is ``tests/data/lake_before_delta.tar.gz``, made by
``tests/data/make_lake_before_delta.sh`` at commit a2363a0 (the sample ``e2e_test`` cookbook
for 2024-01-01 … 03, then ``refund_model`` for 01-02 again; 13 superseded data files and a
crashed writer's temp file put back; see ``tests/data/README.md``).
``lake_before_delta.expected.json`` holds what that release's ``pipelines.read``, ``show`` and
``status --json`` said of it: the upgraded lake must say the same.
Its manifests, read here as plain JSON, are the independent account of its runs and config.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import pipelines
from pipelines.cli import main
from pipelines.cli.text import plural
from pipelines.lake import upgrade as upgrading
from pipelines.lake.lake import Lake
from pipelines.lake.runs import RunLog
from tests.sample_database import without_database_sources

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = json.loads((DATA / "lake_before_delta.expected.json").read_text())
LAYERS = ("raw", "cleaned", "quarantine", "aggregated", "workflows")
UPGRADE_HINT = "run `pipelines lake upgrade`"
# the old format stored a datetime64[s] column in ms (Parquet has no seconds) and its reader gave
# it back so; the Delta table keeps the unit it was written from, as the new writer does
UNIT_NOW_KEPT = {("customers_by_country", "first_signup"): ("datetime64[ms]", "datetime64[s]")}


@pytest.fixture
def old_lake(home) -> Path:
    """The fixture lake unpacked as the ``home`` project's lake (namespace ``local``), with the
    project as the release that wrote it had it: no ``columns.yaml`` (a declaration is a change
    of config that ``plan`` would rightly show), no database dataset (``payments`` came later:
    ``show`` would list its raw table, never written)."""
    (home / "include" / "columns.yaml").unlink()
    without_database_sources(home / "include")
    return unpack(home / "lake")


def unpack(root: Path) -> Path:
    with tarfile.open(DATA / "lake_before_delta.tar.gz") as tar:
        tar.extractall(root, filter="data")
    return root


def tables_of(root: Path) -> list[Path]:
    return sorted(p for layer in LAYERS for p in (root / "local" / layer).iterdir())


def newest_manifest(table: Path) -> dict:
    logs = sorted(table.glob("_log/*.json"))
    return json.loads(logs[-1].read_text())


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def records(frame) -> list[dict]:
    """Rows as the fixture's script recorded them."""
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="us"))


def as_released(status: dict) -> dict:
    """``status --json`` as that release said it: what it did not say yet is taken out, once
    checked to say what it must of an old lake (its outputs recorded nothing of what they read:
    none is stale; none is damaged; each day ok or failed; a workflow's runs all wrote: passed)."""
    for row in status["rows"]:
        assert row.pop("stale") == {"days": [], "reasons": {}}, row["name"]
        assert row.pop("damaged") == [], row["name"]
        for day in row["days"]:
            state = "failed" if day["failed"] else "ok"
            assert (day.pop("stale"), day.pop("state")) == (False, state), (row["name"], day)
        if row["kind"] == "workflow":
            assert row["checks"] == "passed", row["name"]
            row["checks"] = None  # that release said nothing of a workflow's runs' outcome
    return status


def out_of(capsys, argv) -> tuple[int, list[str]]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).strip().splitlines()


@pytest.mark.parametrize(
    "argv",
    [["read", "orders"], ["show"], ["status"], ["run", "orders", "--date", "2024-01-04"]],
    ids=" ".join,
)
def test_commands_on_an_old_lake_say_so_in_one_line(old_lake, capsys, argv):
    before = files_of(old_lake)
    code, lines = out_of(capsys, argv)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("error: ") and UPGRADE_HINT in lines[0]
    assert files_of(old_lake) == before  # nothing written, nothing deleted


def test_upgrade_converts_every_table_and_every_reader_says_what_the_old_release_said(
    old_lake, capsys
):
    manifests = {f"{t.parent.name}/{t.name}": newest_manifest(t) for t in tables_of(old_lake)}
    old_files = sum(len(files_of(t)) for t in tables_of(old_lake))  # manifests and data files
    code, lines = out_of(capsys, ["lake", "upgrade"])
    assert code == 0
    per_table = {line.split(":")[0].removeprefix("upgraded "): line for line in lines[:-1]}
    assert sorted(per_table) == sorted(manifests)
    for name, manifest in manifests.items():
        parts = [p for p in manifest["partitions"].values() if p["rows"]]
        rows = sum(p["rows"] for p in parts)
        runs = len(manifest["meta"].get("runs", {}))
        said = f": {plural(len(parts), 'partition')}, {plural(rows, 'row')}, {runs} run records"
        assert per_table[name].endswith(said)
    assert lines[-1].startswith("upgraded 14 tables of namespace local (")
    assert lines[-1].endswith(
        f"38 partitions, 107 rows, 33 run records; {old_files} old files deleted"
    )

    for table in tables_of(old_lake):
        assert not (table / "_log").exists()
        on_disk = {str(p.relative_to(table)) for p in table.rglob("*") if p.is_file()}
        data = {f for f in on_disk if not f.startswith("_delta_log/")}
        named = pa.table(DeltaTable(str(table)).get_add_actions(flatten=True))["path"]
        assert data == set(named.to_pylist())  # superseded and temp files gone

    for read in EXPECTED["reads"]:
        frame = pipelines.read(read["name"], read["layer"], as_of=read["as_of"])
        assert records(frame) == read["rows"], (read["name"], read["layer"], read["as_of"])
        dtypes = {c: str(t) for c, t in frame.dtypes.items()}
        for (name, column), (old, new) in UNIT_NOW_KEPT.items():
            if read["name"] == name and dtypes.get(column) == new:
                dtypes[column] = old
        assert dtypes == read["dtypes"], (read["name"], read["layer"], read["as_of"])

    code, lines = out_of(capsys, ["show"])
    assert code == 0 and lines[1:] == EXPECTED["show"].splitlines()[1:]  # [0]: the lake's path
    code = main(["status", "--json", "--now", "2024-01-04T03:00"])
    assert code == 0 and as_released(json.loads(capsys.readouterr().out)) == EXPECTED["status"]
    code, lines = out_of(capsys, ["plan"])
    assert code == 0 and lines[-1].startswith("No changes: namespace local")

    recorded = Lake(str(old_lake), "local").run_log().all()
    for name, manifest in manifests.items():
        meta = manifest["meta"]
        holds = {p: e["rows"] for p, e in manifest["partitions"].items() if e["rows"]}
        assert recorded[name].holdings.rows == holds, name  # what status reads of each table
        if "runs" not in meta and "config" not in meta:  # quarantine tables record neither
            assert (recorded[name].runs, recorded[name].config) == ({}, None)
            continue
        assert recorded[name].runs == meta["runs"] and recorded[name].config == meta["config"]
    code, lines = out_of(capsys, ["lake", "upgrade"])
    assert code == 0 and lines == [
        f"nothing to upgrade: every table of namespace local ({old_lake}/local) is a Delta table"
    ]


def test_the_landed_days_carry_over(old_lake):
    """Of every table that recorded runs (not quarantine: the old reader's fallback, a
    partition without any recorded run has landed, is not carried over; no step asks it)."""
    manifests = {t: newest_manifest(t) for t in tables_of(old_lake)}
    upgrading.upgrade(Lake(str(old_lake), "local"))
    lake = Lake(str(old_lake), "local")
    for table, manifest in manifests.items():
        runs = manifest["meta"].get("runs", {})
        if not runs:
            continue
        snap = lake.manifest(table.parent.name, table.name).snapshot()
        for day in ("2023-12-31", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"):
            landed = day in runs and runs[day].get("checks", "passed") == "passed"
            assert snap.has_landed(day) == landed, (table, day)
            assert snap.run_metrics(day) == runs.get(day, {})


def test_the_next_day_runs_and_the_tables_are_what_the_new_code_writes(
    old_lake, home, capsys, monkeypatch
):
    assert main(["lake", "upgrade"]) == 0
    assert main(["run", "e2e_test", "--date", "2024-01-04"]) == 0
    fresh = home / "fresh"  # the fixture's history, then the same next day, by this release
    monkeypatch.setenv("PIPELINES_LAKE", str(fresh))
    for argv in (
        ["backfill", "e2e_test", "--start", "2024-01-01", "--end", "2024-01-02"],
        ["run", "e2e_test", "--date", "2024-01-03"],
        ["run", "refund_model", "--date", "2024-01-02"],  # reads day 3's orders: a rerun
        ["run", "e2e_test", "--date", "2024-01-04"],
    ):
        assert main(argv) == 0
    capsys.readouterr()
    for table in tables_of(old_lake):
        rel = table.relative_to(old_lake)
        upgraded, written = DeltaTable(str(table)), DeltaTable(str(fresh / rel))
        kept = int_keys_kept(schema_of(upgraded), schema_of(written))
        assert kept == INT_KEYS_KEPT.get(str(rel), set()), rel
        assert as_written(schema_of(upgraded), schema_of(written), kept).equals(
            schema_of(written), check_metadata=True
        ), rel
        assert rows_of(upgraded, kept) == rows_of(written), rel
    orders = pipelines.read("orders", "cleaned")
    assert "2024-01-04" in set(orders["dt"])


# issue 24: a CSV key is text, but a table whose key the old release typed as an int keeps it
# while the deliveries' keys read losslessly as ints (this release writes the key as text)
INT_KEYS_KEPT = {"local/cleaned/orders": {"order_id"}}


def schema_of(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def int_keys_kept(upgraded: pa.Schema, written: pa.Schema) -> set[str]:
    """The columns the upgraded table holds as ints where this release writes text."""
    return {
        f.name
        for f in upgraded
        if pa.types.is_integer(f.type)
        and f.name in written.names
        and pa.types.is_string(written.field(f.name).type)
    }


def as_written(upgraded: pa.Schema, written: pa.Schema, kept: set[str]) -> pa.Schema:
    """``upgraded`` with the kept int keys as this release writes them."""
    return pa.schema([written.field(f.name) if f.name in kept else f for f in upgraded])


def rows_of(table: DeltaTable, kept: set[str] = frozenset()) -> list[str]:
    """The rows (each kept int key as its text, which is what the delivery said)."""
    rows = table.to_pyarrow_table().to_pylist()
    rows = [{k: str(v) if k in kept and v is not None else v for k, v in r.items()} for r in rows]
    return sorted(json.dumps(r, default=str, sort_keys=True) for r in rows)


class Crash(Exception):
    """The process dies here."""


def state(root: Path) -> dict:
    """What a finished upgrade leaves: each table's files (by name, without Delta's random
    names), schema and rows, and every run record but its time."""
    out = {}
    for table in tables_of(root):
        names = sorted(
            re.sub(r"part-.*\.parquet$", "part", str(p.relative_to(table)))
            for p in table.rglob("*")
            if p.is_file()
        )
        delta = DeltaTable(str(table))
        schema = schema_of(delta)
        out[str(table.relative_to(root))] = (names, schema, schema.metadata, rows_of(delta))
    records = DeltaTable(str(root / "local" / "_runs")).to_pyarrow_table()
    out["_runs"] = rows_of_arrow(records.drop_columns(["recorded_at"]))
    return out


def rows_of_arrow(table) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in table.to_pylist())


CLEANED_ORDERS = "/local/cleaned/orders/"


def crash_in_commit(monkeypatch):
    real = upgrading.delta.replace

    def replace(path, *args, **kwargs):
        if path.endswith("/cleaned/orders"):
            raise Crash(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(upgrading.delta, "replace", replace)


def crash_before_runs(monkeypatch):
    real = RunLog.append_all

    def append_all(self, table, *args, **kwargs):
        if table == "cleaned/orders":
            raise Crash(table)
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(RunLog, "append_all", append_all)


def crash_in_clean_up(monkeypatch):
    real = upgrading._clean_up

    def clean_up(storage, path, named):
        if path.endswith("/cleaned/orders"):
            raise Crash(path)
        return real(storage, path, named)

    monkeypatch.setattr(upgrading, "_clean_up", clean_up)


def crash_between_data_and_manifests(monkeypatch):
    from pipelines.lake.storage import Storage

    real = Storage.delete

    def delete(self, paths):
        paths = list(paths)
        if any(CLEANED_ORDERS + "_log/" in p for p in paths):
            raise Crash("before the manifests")
        return real(self, paths)

    monkeypatch.setattr(Storage, "delete", delete)


@pytest.mark.parametrize(
    "crash",
    [crash_in_commit, crash_before_runs, crash_in_clean_up, crash_between_data_and_manifests],
)
def test_a_rerun_after_a_crash_finishes_as_an_uninterrupted_upgrade(
    old_lake, home, capsys, monkeypatch, crash
):
    reference = unpack(home / "reference")
    upgrading.upgrade(Lake(str(reference), "local"))
    orders = old_lake / "local" / "cleaned" / "orders"
    old_files = files_of(orders)

    with monkeypatch.context() as patched:
        crash(patched)
        with pytest.raises(Crash):
            main(["lake", "upgrade"])
    capsys.readouterr()
    committed = (orders / "_delta_log").exists()
    assert committed == (crash is not crash_in_commit)
    if committed:  # a reader sees the complete Delta table, the old _log/ still there or not
        assert (orders / "_log").exists()
        frame = pipelines.read("orders", "cleaned")
        [expected] = [r for r in EXPECTED["reads"] if (r["name"], r["layer"], r["as_of"])
                      == ("orders", "cleaned", None)]  # fmt: skip
        assert records(frame) == expected["rows"]
    else:  # nothing of the old table was touched, and it still says so
        assert files_of(orders) == old_files
        code, lines = out_of(capsys, ["read", "orders"])
        assert code == 1 and UPGRADE_HINT in lines[0]

    code, lines = out_of(capsys, ["lake", "upgrade"])
    assert code == 0
    rerun = {line.split(":")[0] for line in lines[:-1]}
    if committed:
        assert "finished cleaned/orders" in rerun
    else:
        assert "upgraded cleaned/orders" in rerun
    assert state(old_lake) == state(reference)  # no run record twice, no old file left
    shutil.rmtree(reference)
