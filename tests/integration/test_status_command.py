"""`pipelines status` over a lake the sample project's real steps wrote: the table, --json, gaps
where a delivery is missing, freshness and lateness against a fixed "now", namespaces, and the
one-line errors of wrong uses."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import pipelines
from pipelines.cli import main
from pipelines.lake.lake import Lake
from pipelines.project.config import load_project
from pipelines.steps.dataset import run_steps
from pipelines.steps.maintenance import tables
from pipelines.steps.workflow import run as run_workflow
from tests import sample_database

REPO = Path(__file__).resolve().parents[2]
NOW = "2024-01-05T03:00"  # the latest complete day is 2024-01-04
ALLOWANCES = {"orders": "1d", "customers": "2h", "events": ""}
DAYS = {  # what each dataset delivered: orders misses 2024-01-03, customers stopped after the 2nd
    "orders": ("2024-01-01", "2024-01-02", "2024-01-04"),
    "customers": ("2024-01-01", "2024-01-02"),
    "events": ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"),
    "payments": ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"),  # the shop database
}
FEATURE_DAYS = ("2024-01-01", "2024-01-02")


def set_allowances(home: Path, allowances: dict[str, str]) -> None:
    """The registry's ``freshness`` column, as given (added when missing)."""
    path = home / "include" / "registry.csv"
    lines = path.read_text().splitlines(keepends=True)
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    header = rows[0] if "freshness" in rows[0] else [*rows[0], "freshness"]
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in rows[1:]:
            values = dict(zip(header, row, strict=False))
            values["freshness"] = allowances.get(values["dataset"], "")
            writer.writerow([values.get(c, "") for c in header])


def build_sample_lake(home: Path, lake: Lake | None = None) -> dict[str, dict]:
    """The sample project's lake after the runs of :data:`DAYS` (orders' delivery of the 3rd is
    missing: its run fails at extract) and of the two workflows for :data:`FEATURE_DAYS`.

    :return: each dataset's step results by day
    """
    set_allowances(home, ALLOWANCES)
    (home / "include" / "sample" / "orders" / "orders_2024-01-03.csv").unlink()
    with pytest.raises(pipelines.exceptions.PipelinesError, match="not found"):
        run_steps("orders", "2024-01-03", lake=lake)
    with pytest.MonkeyPatch.context() as env:  # payments reads the sample's seeded database
        env.setenv(sample_database.CONN_ENV, sample_database.seeded())
        results = {
            name: {day: run_steps(name, day, lake=lake) for day in days}
            for name, days in DAYS.items()
        }
    project = load_project()
    for name in ("customer_features", "train_refund_model"):
        for day in FEATURE_DAYS:
            run_workflow(project.workflow(name), day, lake or project.lake(), project)
    return results


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sample lake, built once for the module: (its project home, the steps' results)."""
    root = tmp_path_factory.mktemp("status")
    shutil.copytree(REPO / "include", root / "include")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PIPELINES_HOME", str(root))
        env.setenv("PIPELINES_LAKE", str(root / "lake"))
        return root, build_sample_lake(root)


@pytest.fixture
def sample(built, home):
    """A copy of the built sample lake and project in this test's ``home``."""
    root, results = built
    for folder in ("include", "lake"):
        shutil.rmtree(home / folder, ignore_errors=True)
        shutil.copytree(root / folder, home / folder)
    return results


def status_of(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["status", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_of(out: str) -> dict[str, dict[str, str]]:
    """The printed table, by row name: each column by its header (columns split on the
    header's offsets, as a reader's eye does)."""
    lines = out.splitlines()[1:]
    header = lines[0]
    names = header.split()
    starts = [header.index(n) for n in names]
    ends = [*starts[1:], None]
    return {
        line.split()[0]: {n: line[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)}
        for line in lines[1:]
    }


def test_the_table_has_a_row_per_dataset_workflow_and_aggregate(sample, capsys):
    code, out, err = status_of(capsys, "--now", NOW)
    assert code == 0
    assert out.splitlines()[0].endswith("namespace local as of 2024-01-05 03:00 UTC")
    rows = table_of(out)
    assert list(rows) == [
        *("orders", "customers", "events", "payments", "customer_features", "train_refund_model"),
        *("daily_revenue", "customers_by_country", "events_by_type"),
    ]
    orders = rows["orders"]
    last_merge = sample["orders"]["2024-01-04"]["merge"]
    assert orders["KIND"] == "dataset" and orders["RAW"] == "2024-01-04"
    assert orders["ROWS"] == str(
        len(pipelines.read("orders"))
    )  # the manifests' count is the data's
    assert orders["QUARANTINED"] == str(last_merge.quarantined)
    assert orders["CHECKS"] == "passed" and orders["GAPS"] == "2024-01-03"
    assert orders["FRESHNESS"] == "up to date"
    customers = rows["customers"]  # a full dataset: its rows are the newest snapshot's
    assert customers["PARTITION"] == "ds=2024-01-02" and customers["FRESHNESS"] == "2d behind, late"
    assert customers["ROWS"] == str(len(pipelines.read("customers")))
    assert rows["events"]["FRESHNESS"] == "up to date" and rows["events"]["GAPS"] == "-"
    payments = rows["payments"]  # a database source: the same row as a file's
    assert (payments["KIND"], payments["RAW"], payments["GAPS"]) == ("dataset", "2024-01-04", "-")
    assert payments["ROWS"] == str(len(pipelines.read("payments"))) == "8"  # every seeded row
    assert (payments["QUARANTINED"], payments["CHECKS"]) == ("0", "passed")
    features = rows["customer_features"]
    assert (features["KIND"], features["RAW"], features["QUARANTINED"]) == ("workflow", "-", "-")
    assert features["PARTITION"] == "ds=2024-01-02" and features["FRESHNESS"] == "2d behind, late"
    assert features["STALE"] == "-"  # every input ran before it: nothing changed since it read
    newest = pipelines.read("customer_features", layer="workflows", as_of="2024-01-02")
    assert features["ROWS"] == str(len(newest))  # a workflow's newest output
    # no run of orders on the 3rd, but the 4th's recomputed dt=2024-01-03 (a late row): no gap
    assert rows["daily_revenue"]["GAPS"] == "-"
    assert rows["customers_by_country"]["FRESHNESS"] == "2d behind, late"  # its dataset's 2h
    assert err.strip() == "4 tables late"


def test_status_reads_the_runs_table_and_opens_no_tables_log(sample, capsys, monkeypatch):
    """Every count comes from the runs table's records of what each commit left (one read of
    it): no table's Delta log is opened, and the table is the one the logs give; still so after
    maintenance (optimize and vacuum commit too)."""
    from pipelines.lake import delta

    code, expected, _ = status_of(capsys, "--now", NOW, "--json")
    opened: list[str] = []
    real = delta.open_table

    def counting(path, storage, version=None):
        opened.append(path)
        return real(path, storage, version)

    monkeypatch.setattr(delta, "open_table", counting)
    for layer, name, table, kind in tables(load_project(), Lake.from_env()):
        snap = table.snapshot()
        outline = table.outline()
        assert (outline.version, outline.partitions) == (snap.version, snap.partitions), name
    opened.clear()
    code, out, _ = status_of(capsys, "--now", NOW, "--json")
    assert code == 0 and out == expected
    assert {Path(p).name for p in opened} == {"_runs"}
    assert main(["optimize"]) == main(["vacuum"]) == 0  # commits that change no row
    capsys.readouterr()
    opened.clear()
    assert status_of(capsys, "--now", NOW, "--json")[1] == expected
    assert {Path(p).name for p in opened} == {"_runs"}


def test_json_holds_every_figure_and_each_day(sample, capsys):
    code, out, _ = status_of(capsys, "--now", NOW, "--json")
    body = json.loads(out)
    rows = {r["name"]: r for r in body["rows"]}
    assert code == 0 and body["namespace"] == "local"
    orders = rows["orders"]
    assert orders["gaps"] == [["2024-01-03", "2024-01-03"]]
    assert [d["ds"] for d in orders["days"]] == list(DAYS["orders"])
    merges = {day: r["merge"] for day, r in sample["orders"].items()}
    assert [d["rows"] for d in orders["days"]] == [m.raw_rows for m in merges.values()]
    assert [d["quarantined"] for d in orders["days"]] == [m.quarantined for m in merges.values()]
    assert orders["freshness"] == {
        "expected": "2024-01-04",
        "newest": "2024-01-04",
        "behind_seconds": 0.0,
        "overdue_seconds": None,
        "allowance_seconds": 86400.0,
        "late": False,
        "text": "up to date",
    }
    customers = rows["customers"]["freshness"]
    assert (customers["late"], customers["behind_seconds"]) == (True, 2 * 86400.0)
    assert customers["overdue_seconds"] == 27 * 3600.0  # the 3rd ended on the 4th, 00:00
    assert rows["events"]["freshness"]["allowance_seconds"] is None
    # a workflow: its inputs' largest allowance (orders 1d, customers 2h)
    assert rows["customer_features"]["freshness"]["allowance_seconds"] == 86400.0
    assert rows["train_refund_model"]["dag_id"] == "local__workflow__train_refund_model"
    assert rows["daily_revenue"]["dag_id"] == "local__orders"  # the DAG that writes it


def test_an_aggregate_day_a_later_run_recomputed_is_no_gap(sample, home, capsys):
    """daily_revenue has no run of 2024-01-03 (orders' delivery is missing) but holds that day:
    the run of the 4th recomputed dt=2024-01-03 (order 1008, placed on the 3rd). The 5th, with
    neither a run nor a partition, is a gap, for the aggregate as for its dataset."""
    (home / "include" / "sample" / "orders" / "orders_2024-01-06.csv").write_text(
        "order_id,customer_id,status,amount,updated_at,order_date\n"
        "1010,c2,placed,5.00,2024-01-06T08:00:00Z,2024-01-06\n"
    )
    run_steps("orders", "2024-01-06")
    assert "2024-01-03" in set(pipelines.read("daily_revenue", layer="aggregated")["dt"])
    code, out, _ = status_of(capsys, "--now", "2024-01-07T03:00", "--json")
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    assert code == 0
    assert rows["orders"]["gaps"] == [["2024-01-03", "2024-01-03"], ["2024-01-05", "2024-01-05"]]
    revenue = rows["daily_revenue"]
    assert revenue["gaps"] == [["2024-01-05", "2024-01-05"]]
    days = {d["ds"]: d["rows"] for d in revenue["days"]}  # the chart has the covered day's bar
    assert list(days) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-06"]
    recomputed = pipelines.read("daily_revenue", layer="aggregated")
    assert days["2024-01-03"] == int((recomputed["dt"] == "2024-01-03").sum())


@pytest.mark.parametrize(
    ("now", "customers", "features"),
    [
        ("2024-01-03T01:00", "up to date", "up to date"),
        ("2024-01-04T01:00", "1d behind", "1d behind"),  # the 3rd ended 1h ago: within 2h
        ("2024-01-04T02:30", "1d behind, late", "1d behind"),  # over 2h; features have 1d
        ("2024-01-05T03:00", "2d behind, late", "2d behind, late"),
    ],
)
def test_freshness_and_lateness_as_of_a_fixed_now(sample, capsys, now, customers, features):
    _, out, _ = status_of(capsys, "--now", now)
    rows = table_of(out)
    assert (rows["customers"]["FRESHNESS"], rows["customer_features"]["FRESHNESS"]) == (
        customers,
        features,
    )
    assert rows["events"]["FRESHNESS"] == "up to date"  # no allowance: never late


def test_without_an_allowance_nothing_is_late(sample, home, capsys):
    set_allowances(home, {})
    _, out, err = status_of(capsys, "--now", "2024-02-01")
    rows = table_of(out)
    assert rows["customers"]["FRESHNESS"] == "29d behind" and err == ""


def test_a_failed_check_shows_in_its_row(home, capsys):
    run_steps("orders", "2024-01-01")
    set_allowances(home, {})
    registry = home / "include" / "registry.csv"
    registry.write_text(registry.read_text().replace("max_active_runs", "max_quarantine_pct", 1))
    with pytest.raises(pipelines.exceptions.QualityCheckFailed):  # 2 of 5 quarantined, over 1
        run_steps("orders", "2024-01-02")
    _, out, _ = status_of(capsys, "--now", NOW)
    orders = table_of(out)["orders"]
    assert orders["CHECKS"] == "failed" and orders["FRESHNESS"] == "3d behind"  # 01 landed
    body = json.loads(status_of(capsys, "--now", NOW, "--json")[1])
    [row] = [r for r in body["rows"] if r["name"] == "orders"]
    assert row["failed_days"] == ["2024-01-02"] and row["checks"].startswith("failed: 2 of")


def test_a_full_dataset_whose_snapshots_shrank_too_far_shows_failed(home, capsys):
    """customers' deliveries of the 3rd and 4th keep 1 of 4 customers: each merge refuses the
    snapshot (max_drop_pct, 50 by default) and keeps the 2nd's. The row says failed, naming the
    check, as an incremental dataset's failed checks do; the cleaned table is unchanged."""
    set_allowances(home, {})
    folder = home / "include" / "sample" / "customers"
    for day in ("2024-01-01", "2024-01-02"):
        run_steps("customers", day)
    kept = pipelines.read("customers")
    one = "".join(folder.joinpath("customers_20240102.csv").read_text().splitlines(True)[:2])
    for day in ("2024-01-03", "2024-01-04"):
        folder.joinpath(f"customers_{day.replace('-', '')}.csv").write_text(one)
        with pytest.raises(pipelines.exceptions.QualityCheckFailed, match="max_drop_pct=50"):
            run_steps("customers", day)
    pd.testing.assert_frame_equal(pipelines.read("customers"), kept)
    _, out, _ = status_of(capsys, "--now", NOW)
    customers = table_of(out)["customers"]
    assert customers["CHECKS"] == "failed (max_drop_pct); 1 earlier failed"
    assert customers["FRESHNESS"] == "2d behind" and customers["PARTITION"] == "ds=2024-01-02"
    body = json.loads(status_of(capsys, "--now", NOW, "--json")[1])
    [row] = [r for r in body["rows"] if r["name"] == "customers"]
    assert row["failed_days"] == ["2024-01-03", "2024-01-04"]
    assert row["checks"] == (
        "failed: max_drop_pct: snapshot 2024-01-04 has 1 rows, 4 on 2024-01-02: a drop of 75% "
        "is over max_drop_pct=50"
    )
    assert [d["state"] for d in row["days"]] == ["ok", "ok", "failed", "failed"]
    folder.joinpath("customers_20240104.csv").write_text(
        folder.joinpath("customers_20240102.csv").read_text()
    )
    run_steps("customers", "2024-01-04")  # a whole delivery heals the day
    _, out, _ = status_of(capsys, "--now", NOW)
    assert table_of(out)["customers"]["CHECKS"] == "passed; 1 earlier failed"


def test_namespace_selects_the_lake(home, capsys):
    set_allowances(home, ALLOWANCES)
    run_steps("customers", "2024-01-01", lake=Lake.from_env("prod"))
    _, out, _ = status_of(capsys, "--namespace", "prod", "--now", NOW)
    assert out.splitlines()[0].split()[2:4] == ["namespace", "prod"]
    rows = table_of(out)
    assert rows["customers"]["RAW"] == "2024-01-01" and rows["orders"]["RAW"] == "-"
    assert rows["orders"]["FRESHNESS"] == "no data, late"  # 1d allowed after the 1st ended
    assert rows["events"]["FRESHNESS"] == "no data"  # none allowed
    _, out, _ = status_of(capsys, "--now", NOW)  # this process's namespace (local): nothing yet
    assert table_of(out)["customers"]["RAW"] == "-"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--namespace", "Bad-Name"], "error: PIPELINES_NAMESPACE: 'Bad-Name' must match"),
        (["--now", "yesterday"], "error: --now: 'yesterday' is not a time in the form"),
        (["--now", "2024-02-30T03:00"], "error: --now: '2024-02-30' is not a real date: Febr"),
        (["--html", "/nonexistent/folder/s.html"], "error: --html: cannot write /nonexistent/"),
        (["--url", "ftp://airflow"], "error: the Airflow URL must be http:// or https://"),
        (["--url", "http://127.0.0.1:9"], "error: cannot reach Airflow at http://127.0.0.1:9"),
    ],
)
def test_wrong_uses_are_one_line_and_exit_1(home, capsys, monkeypatch, argv, message):
    monkeypatch.setenv("PIPELINES_AIRFLOW_TOKEN", "not-a-token")
    code, out, err = status_of(capsys, *argv)
    errors = [line for line in err.splitlines() if not line.startswith("note: ")]
    assert code == 1 and len(errors) == 1 and errors[0].startswith(message), err
    assert out == ""


def test_the_html_page_is_written_whole_with_its_data(sample, capsys, tmp_path):
    (tmp_path / "site").mkdir()
    page = tmp_path / "site" / "status.html"
    page.write_text("the old page")
    code, out, err = status_of(capsys, "--now", NOW, "--html", str(page))
    assert code == 0 and table_of(out)["orders"]["GAPS"] == "2024-01-03"  # the table too
    assert err.splitlines()[0] == f"wrote {page} (9 rows)"
    text = page.read_text()
    assert "<script src" not in text and "<link" not in text and "https://" not in text
    data = json.loads(text.split('id="status-data">', 1)[1].split("</script>", 1)[0])
    assert [r["name"] for r in data["rows"]][:2] == ["orders", "customers"]
    assert data["rows"][0]["days"][0] == ["2024-01-01", 6, 2, 0, 0]  # ds rows quar. failed stale
    assert [p.name for p in page.parent.iterdir()] == ["status.html"]  # no temp file left


WINDOW_DAYS = ("2024-01-01", "2024-01-02", "2024-01-03")
REWRITTEN = "input orders (cleaned orders) {days} rewritten after it (run {run})"
CODE = "the code changed (features:customer_features, its module or params)"


def run_features(day: str) -> None:
    project = load_project()
    run_workflow(project.workflow("customer_features"), day, project.lake(), project)


@pytest.fixture(scope="module")
def windowed_lake(tmp_path_factory):
    """orders, customers and customer_features (orders over 3 days) run day by day for
    :data:`WINDOW_DAYS`, as a cookbook runs them, built once for the module."""
    root = tmp_path_factory.mktemp("stale")
    shutil.copytree(REPO / "include", root / "include")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PIPELINES_HOME", str(root))
        env.setenv("PIPELINES_LAKE", str(root / "lake"))
        for day in WINDOW_DAYS:
            run_steps("orders", day)
            run_steps("customers", day)
            run_features(day)
    return root


@pytest.fixture
def windowed(windowed_lake, home):
    for folder in ("include", "lake"):
        shutil.rmtree(home / folder, ignore_errors=True)
        shutil.copytree(windowed_lake / folder, home / folder)
    return home


def stale_of(capsys, name: str, now: str = "2024-01-04T03:00") -> tuple[str, dict]:
    """The STALE cell of ``name``'s row, and its row in ``--json``."""
    _, out, _ = status_of(capsys, "--now", now)
    cell = table_of(out)[name]["STALE"]
    body = json.loads(status_of(capsys, "--now", now, "--json")[1])
    return cell, next(r for r in body["rows"] if r["name"] == name)


def test_a_workflow_day_is_stale_when_an_input_day_of_its_window_is_rewritten(
    windowed, capsys, monkeypatch
):
    """The day-by-day run already leaves 01 and 02 stale: orders' delivery of the 3rd updates
    order 1002 of the 1st (refunded), rewriting partition 2024-01-01 after their outputs read it.
    A late correction of the 2nd, rerun, reaches the outputs whose 3-day windows hold it."""
    from pipelines.lake import delta

    opened: list[str] = []
    real = delta.open_table
    monkeypatch.setattr(delta, "open_table", lambda *a: opened.append(a[0]) or real(*a))
    cell, row = stale_of(capsys, "customer_features")
    first = REWRITTEN.format(days="2024-01-01", run="2024-01-03")
    assert row["stale"] == {
        "days": ["2024-01-01", "2024-01-02"],
        "reasons": {"2024-01-01": first, "2024-01-02": first},
    }
    assert cell == f"2024-01-01..2024-01-02: {first}"
    hint = "customer_features: 2 days stale: pipelines run customer_features --stale"
    assert status_of(capsys, "--now", "2024-01-04T03:00")[2].splitlines() == [hint]
    assert [d["state"] for d in row["days"]] == ["stale", "stale", "ok"]
    assert row["freshness"]["text"] == "up to date" and row["checks"] == "passed"
    logs = [str(Path(p).relative_to(windowed / "lake" / "local")) for p in opened]
    assert logs.count("_runs") == 3  # once per status (table, --json, table): stale_days too
    unwritten = {"raw/events", "cleaned/events", "aggregated/events_by_type"}
    unwritten |= {"raw/payments", "cleaned/payments"}  # the sample's database source: not run
    unwritten.add("workflows/train_refund_model")  # nothing recorded: the outline asks its log
    assert set(logs) - {"_runs"} == unwritten
    assert stale_of(capsys, "orders")[1]["stale"] == {"days": [], "reasons": {}}

    source = windowed / "include" / "sample" / "orders" / "orders_2024-01-02.csv"
    text = source.read_text()
    source.write_text(text.replace("1006,c2,placed,30.00", "1006,c2,refunded,0.00"))
    run_steps("orders", "2024-01-02")  # the late correction: partition 2024-01-02 rewritten
    cell, row = stale_of(capsys, "customer_features")
    assert row["stale"]["days"] == list(WINDOW_DAYS)  # 03's window holds the 2nd
    newest = row["stale"]["reasons"]["2024-01-03"]
    assert newest.startswith("input orders (cleaned orders) ") and "2024-01-02" in newest
    assert newest.endswith("rewritten after it (run 2024-01-02)")
    assert cell.startswith(f"2024-01-01..2024-01-03: {newest}")

    for day in WINDOW_DAYS:  # what a rerun of the stale days does: each reads its window anew
        run_features(day)
    cell, row = stale_of(capsys, "customer_features")
    assert (cell, row["stale"]["days"]) == ("-", [])
    assert {d["state"] for d in row["days"]} == {"ok"}


def test_a_changed_param_makes_every_output_stale_with_the_code_as_reason(windowed, capsys):
    for day in WINDOW_DAYS[:2]:  # 01 and 02 read what is there now: only the code can differ
        run_features(day)
    assert stale_of(capsys, "customer_features")[0] == "-"
    workflows = windowed / "include" / "workflows.yaml"
    workflows.write_text(workflows.read_text().replace("min_orders: 0", "min_orders: 1", 1))
    cell, row = stale_of(capsys, "customer_features")
    assert row["stale"]["reasons"] == dict.fromkeys(WINDOW_DAYS, CODE)
    assert cell == f"2024-01-01..2024-01-03: {CODE}"
    workflows.write_text(workflows.read_text().replace("min_orders: 1", "min_orders: 0", 1))
    assert stale_of(capsys, "customer_features")[0] == "-"  # the code each output ran again


def test_a_failed_workflow_day_shows_failed_not_as_a_gap(windowed, capsys, tmp_path):
    with pytest.raises(pipelines.exceptions.LakeError, match="has no data for 2024-01-04"):
        run_features("2024-01-04")  # orders and customers have not run for the 4th
    now = "2024-01-05T03:00"
    _, out, _ = status_of(capsys, "--now", now)
    features = table_of(out)["customer_features"]
    assert (features["CHECKS"], features["GAPS"]) == ("failed", "-")
    assert features["FRESHNESS"] == "1d behind" and features["PARTITION"] == "ds=2024-01-03"
    _, row = stale_of(capsys, "customer_features", now)
    assert row["failed_days"] == ["2024-01-04"] and row["gaps"] == []
    assert row["checks"].startswith("failed: customer_features: input orders (cleaned orders")
    assert [d["state"] for d in row["days"]] == ["stale", "stale", "ok", "failed"]

    page = tmp_path / "status.html"
    assert status_of(capsys, "--now", now, "--html", str(page))[0] == 0
    text = page.read_text()
    data = json.loads(text.split('id="status-data">', 1)[1].split("</script>", 1)[0])
    [shown] = [r for r in data["rows"] if r["name"] == "customer_features"]
    assert [d[3:] for d in shown["days"]] == [[0, 1], [0, 1], [0, 0], [1, 0]]  # failed, stale
    assert shown["cells"][data["columns"].index("STALE")].startswith("2024-01-01..2024-01-02: ")
    assert "stale (an input rewritten, or the code changed)" in text  # the legend's entry

    for name in ("orders", "customers"):
        run_steps(name, "2024-01-04")
    run_features("2024-01-04")  # a run that passes replaces the failure
    _, row = stale_of(capsys, "customer_features", now)
    assert (row["checks"], row["failed_days"], row["days"][-1]["state"]) == ("passed", [], "ok")
