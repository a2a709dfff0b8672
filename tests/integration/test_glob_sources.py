"""A glob source (``landing/{ds}/part-*.csv``) through the real command: several part files a day
are one delivery, in file-name order (a key delivered twice with the same updated_at is won by
the later file), and a day with no file is no delivery; ``validate --sources`` and ``infer`` say
which file they opened."""

from __future__ import annotations

import io

import pandas as pd
import pytest

import pipelines
from pipelines.cli import main
from tests.conftest import write_registry

REGISTRY = (
    "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date\n"
    "orders,landing/{ds}/part-*.csv,order_id,updated_at,order_date,incremental,2024-01-01\n"
)
# per day, its part files as a Firehose-like writer lands them (part-10 sorts before part-2)
PARTS = {
    "2024-01-01": {
        "part-1.csv": "order_id,status,updated_at,order_date\n"
        "001,placed,2024-01-01T08:00:00Z,2024-01-01\n"
        "002,placed,2024-01-01T09:00:00Z,2024-01-01\n",
        "part-2.csv": "order_id,status,updated_at,order_date,coupon\n"  # a column the other lacks
        "002,paid,2024-01-01T09:00:00Z,2024-01-01,X1\n"  # same updated_at: the later file wins
        "003,placed,2024-01-01T10:00:00Z,2024-01-01,\n",
    },
    "2024-01-02": {
        "part-2.csv": "order_id,status,updated_at,order_date\n"
        "001,shipped,2024-01-02T07:00:00Z,2024-01-01\n",
        "part-10.csv": "order_id,status,updated_at,order_date\n"
        "001,lost,2024-01-02T07:00:00Z,2024-01-01\n"  # same updated_at, earlier file: loses
        "004,placed,2024-01-02T11:00:00Z,2024-01-02\n",
        ".part-3.csv": "order_id,status,updated_at,order_date\n"  # hidden: an upload in progress
        "005,placed,2024-01-02T12:00:00Z,2024-01-02\n",
    },
}
DAYS = [*PARTS, "2024-01-03"]  # 2024-01-03: no file


@pytest.fixture
def landing(home):
    write_registry(home, REGISTRY)
    for day, parts in PARTS.items():
        folder = home / "include" / "landing" / day
        folder.mkdir(parents=True)
        for name, text in parts.items():
            (folder / name).write_text(text)
    (home / "include" / "landing" / "2024-01-03").mkdir()
    return home


def delivered(day: str) -> pd.DataFrame:
    """The day's visible files, in name order, read as text: the delivery a run must see."""
    names = sorted(n for n in PARTS[day] if not n.startswith("."))
    frames = [pd.read_csv(io.StringIO(PARTS[day][n]), dtype="string") for n in names]
    return pd.concat(frames, ignore_index=True)


def test_part_files_are_one_delivery_in_name_order_and_a_day_without_is_none(
    landing, airflow_db, capsys
):
    assert main(["backfill", "orders", "--start", DAYS[0], "--end", DAYS[-1]]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in out if line.startswith(("ok ", "FAIL"))] == [
        "ok   local__orders 2024-01-01",
        "ok   local__orders 2024-01-02",
        "FAIL local__orders 2024-01-03",
    ]
    failed = next(line for line in out if line.startswith("FAIL"))
    pattern = landing.resolve() / "include" / "landing" / "2024-01-03" / "part-*.csv"
    assert failed.endswith(f"orders: source for 2024-01-03 not found: {pattern}"), failed

    for day in PARTS:
        raw = pipelines.read("orders", "raw", as_of=day).sort_values("_row")
        expected = delivered(day)
        assert raw["_row"].tolist() == list(range(len(expected)))
        got = raw[list(expected.columns)].reset_index(drop=True).astype("string")
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)

    every = pd.concat([delivered(d).assign(ds=d) for d in PARTS], ignore_index=True)
    every["at"] = range(len(every))  # delivery order: day, then file name, then row
    winners = every.sort_values(["updated_at", "at"]).groupby("order_id").tail(1)
    cleaned = pipelines.read("orders", "cleaned")
    assert dict(zip(cleaned["order_id"], cleaned["status"], strict=True)) == dict(
        zip(winners["order_id"], winners["status"], strict=True)
    ) == {"001": "shipped", "002": "paid", "003": "placed", "004": "placed"}  # fmt: skip


def test_validate_and_infer_open_the_first_file_of_the_start_date_and_say_which(landing, capsys):
    assert main(["validate", "--sources"]) == 0
    _, err = capsys.readouterr()
    assert "orders: opened landing/2024-01-01/part-1.csv" in err.splitlines()
    assert main(["infer", "orders", "--date", "2024-01-02"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[1] == "#   landing/2024-01-02/part-10.csv (2024-01-02): 2 rows"
