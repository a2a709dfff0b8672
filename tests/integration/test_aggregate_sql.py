"""Aggregates computed in DuckDB (steps/aggregate_sql.py) are the pandas path's (steps/aggregate.py
with transforms.aggregate): the same rows in the same order, the same values to the last bit of a
float sum, the same dtypes and Delta field metadata, the same partitions dropped and the same run
records, for incremental and full datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.lake.lake import Lake
from pipelines.project.aggregates import AggregateSpec
from pipelines.project.registry import parse_registry
from pipelines.steps import aggregate, aggregate_sql

REGISTRY = parse_registry(
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,start_date\n"
    "orders,src/o_{ds}.csv,csv,id,ts,ts,incremental,2024-01-01\n"
    "stock,src/s_{ds}.csv,csv,id,,ts,full,2024-01-01\n"
    "shops,src/p_{ds}.csv,csv,id,,,full,2024-01-01\n"
)
KINDS = {
    "id": "int",
    "status": "string",
    "shop": "int",
    "amount": "float",
    "qty": "int",
    "day": "date",
    "ts": "timestamp",
    "flag": "bool",
    "note": "null",
}
METRICS = (
    ("n", "count", None),
    ("revenue", "sum", "amount"),
    ("avg_amount", "mean", "amount"),
    ("units", "sum", "qty"),
    ("avg_units", "mean", "qty"),
    ("lo", "min", "amount"),
    ("hi", "max", "amount"),
    ("amounts", "count_distinct", "amount"),
    ("first_day", "min", "day"),
    ("last_ts", "max", "ts"),
    ("buyers", "count_distinct", "status"),
    ("days", "count_distinct", "day"),
    ("top", "max", "status"),
    ("any_flag", "max", "flag"),
    ("low_qty", "min", "qty"),
    ("notes", "max", "note"),
)
GROUPINGS = [("status", "shop"), ("day",), (), ("flag", "ts"), ("note",)]


def rows(n: int, seed: int, day: str, *, null_keys: bool = False, ts: bool = True) -> pd.DataFrame:
    """Cleaned rows: float amounts of very different sizes (a sum depends on the order it is
    taken in), nulls in every column (but ``ts`` when it is the partition_field of a full
    dataset: the merge quarantines those), a NaN, dates and timestamps over a few days."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(100, 1e6, n) * rng.choice([1e-8, 1.0, 1e8], n)
    amount[::11] = np.nan  # null
    amount = pd.array(amount, dtype="Float64")
    if n > 7:
        amount[7] = float("nan")  # a NaN that is not null (a Parquet source can deliver one)
    start = pd.Timestamp(day)
    frame = pd.DataFrame(
        {
            "id": pd.array(np.arange(n), dtype="Int64"),
            "status": pd.array(rng.choice(["paid", "open", "Zürich", "void"], n), dtype="string"),
            "shop": pd.array(rng.integers(0, 4, n), dtype="Int64"),
            "amount": amount,
            "qty": pd.array(rng.integers(-5, 10**12, n), dtype="Int64"),
            "day": (start + pd.to_timedelta(rng.integers(0, 3, n), "D")).astype("datetime64[s]"),
            "ts": (
                pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.integers(-30, 50, n), unit="h")
            ).astype("datetime64[us, UTC]"),
            "flag": pd.array(rng.random(n) > 0.5, dtype="boolean"),
            "note": pd.array([pd.NA] * n, dtype="string"),
        }
    )
    for col in ("status", "shop", "qty", "day", "flag") + (("ts",) if ts else ()):
        frame.loc[frame.index[3 :: 9 if col != "qty" else 13], col] = pd.NA
    if null_keys:
        frame["status"] = pd.array([pd.NA] * n, dtype="string")
        frame["shop"] = pd.array([pd.NA] * n, dtype="Int64")
    frame["_row"] = np.arange(n, dtype="int64")
    frame["_ds"] = pd.Series([day] * n, dtype="str")
    return frame


def cleaned(lake: Lake, name: str, batches: list[dict[str, pd.DataFrame | None]]) -> None:
    """The cleaned table of ``name``, written by one commit per batch (partitions rewritten)."""
    table = lake.cleaned(REGISTRY.get(name))
    for changes in batches:
        columns = set().union(*(f.columns for f in changes.values() if f is not None))
        kinds = [[c, k] for c, k in KINDS.items() if c in columns]
        table.commit(table.snapshot(), changes, {"schema": kinds})


def specs(dataset: str) -> list[AggregateSpec]:
    return [
        AggregateSpec(f"{dataset}_{'_'.join(keys) or 'all'}", dataset, keys, METRICS)
        for keys in GROUPINGS
    ]


def built(lake: Lake, dataset: str, touched: list[str], ds: str, monkeypatch, engine: bool):
    """Build every spec of ``dataset``; what build returned, and the tables as stored."""
    real = aggregate_sql.changes
    computed = []

    def spy(*args):
        result = real(*args)
        computed.append(result is not None)
        return result

    with monkeypatch.context() as patched:
        patched.setattr(aggregate_sql, "changes", spy if engine else lambda *args: None)
        results = {
            s.name: aggregate.build(s, REGISTRY.get(dataset), lake, touched, ds)
            for s in specs(dataset)
        }
    if engine:
        assert computed and all(computed)  # DuckDB computed every one: no fallback
    stored = {}
    for spec in specs(dataset):
        table = lake.aggregated(spec.name)
        snap = table.snapshot()
        stored[spec.name] = (snap.schema, table.read(), snap.partitions, snap.run_metrics(ds))
    return results, stored


def assert_same(duck, reference):
    assert duck[0] == reference[0]  # partitions and row counts build returned
    for name, (schema, frame, partitions, run) in reference[1].items():
        other_schema, other_frame, other_partitions, other_run = duck[1][name]
        assert other_schema.equals(schema, check_metadata=True), name
        assert other_partitions == partitions and other_run == run, name
        pd.testing.assert_frame_equal(other_frame, frame, check_exact=True)
        pd.testing.assert_frame_equal(bits(other_frame), bits(frame))


def bits(frame: pd.DataFrame) -> pd.DataFrame:
    """Each float column as its values' bit patterns (null: -1): ``assert_frame_equal`` with
    ``check_exact=True`` lets a Float64 column differ in its last bits."""
    out = {}
    for col in frame.columns:
        if pd.api.types.is_float_dtype(frame[col]):
            values = frame[col].to_numpy(dtype="float64", na_value=np.nan)
            patterns = values.view("int64").copy()
            patterns[frame[col].isna().to_numpy()] = -1
            out[col] = patterns
    return pd.DataFrame(out)


def lakes(tmp_path) -> tuple[Lake, Lake]:
    return Lake(str(tmp_path / "duck"), "local"), Lake(str(tmp_path / "pandas"), "local")


def test_an_incremental_aggregate_in_duckdb_is_the_pandas_one(tmp_path, monkeypatch):
    days = {
        "2024-01-01": rows(400, 1, "2024-01-01"),
        "2024-01-02": rows(150, 2, "2024-01-02", null_keys=True),
        "2024-01-04": rows(3, 3, "2024-01-04"),
    }
    older = rows(60, 8, "2023-12-31").drop(columns=["qty", "flag"])  # before they were added
    for lake in lakes(tmp_path):
        cleaned(lake, "orders", [{"2023-12-31": older}])
        cleaned(lake, "orders", [days, {"2024-01-04": days["2024-01-04"].iloc[:0]}])
    touched = ["2023-12-31", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    duck_lake, pandas_lake = lakes(tmp_path)
    reference = built(pandas_lake, "orders", touched, "2024-01-05", monkeypatch, engine=False)
    duck = built(duck_lake, "orders", touched, "2024-01-05", monkeypatch, engine=True)
    assert_same(duck, reference)
    first = reference[1]["orders_status_shop"][1]
    assert set(first["dt"]) == {"2023-12-31", "2024-01-01", "2024-01-02"}  # 03: none, 04: emptied
    assert first["status"].isna().any() and first["revenue"].notna().any()

    # the next run changes one day: the other stays as it was, in both
    later = {"2024-01-02": rows(90, 4, "2024-01-02")}
    for lake in lakes(tmp_path):
        cleaned(lake, "orders", [later])
    reference = built(pandas_lake, "orders", ["2024-01-02"], "2024-01-06", monkeypatch, False)
    duck = built(duck_lake, "orders", ["2024-01-02"], "2024-01-06", monkeypatch, True)
    assert_same(duck, reference)


def test_a_full_aggregate_in_duckdb_is_the_pandas_one(tmp_path, monkeypatch):
    for lake in lakes(tmp_path):
        cleaned(lake, "stock", [{"2024-01-01": rows(300, 5, "2024-01-01", ts=False)}])
        cleaned(lake, "shops", [{"2024-01-01": rows(200, 6, "2024-01-01")}])
    duck_lake, pandas_lake = lakes(tmp_path)
    for name in ("stock", "shops"):
        reference = built(pandas_lake, name, ["2024-01-01"], "2024-01-01", monkeypatch, False)
        duck = built(duck_lake, name, ["2024-01-01"], "2024-01-01", monkeypatch, True)
        assert_same(duck, reference)
    # the next snapshot covers fewer days: the days it lacks disappear from the aggregate
    newest = rows(120, 7, "2024-01-02", ts=False).assign(
        ts=pd.Timestamp("2024-01-02 05:00", tz="UTC")
    )
    for lake in lakes(tmp_path):
        cleaned(lake, "stock", [{"2024-01-02": newest.astype({"ts": "datetime64[us, UTC]"})}])
    reference = built(pandas_lake, "stock", ["2024-01-02"], "2024-01-02", monkeypatch, False)
    duck = built(duck_lake, "stock", ["2024-01-02"], "2024-01-02", monkeypatch, True)
    assert_same(duck, reference)
    assert list(reference[1]["stock_all"][2]) == ["2024-01-02"]


def test_a_column_the_table_does_not_have_yet_reads_as_null(tmp_path, monkeypatch):
    """A column no delivery has brought yet (issue 24: later columns are normal): DuckDB leaves
    the aggregate to pandas, which groups and sums it as null instead of failing."""
    lake = Lake(str(tmp_path / "lake"), "local")
    cleaned(lake, "orders", [{"2024-01-01": rows(20, 1, "2024-01-01")}])
    metrics = (("n", "count", None), ("fees", "sum", "fee"), ("top", "max", "country"))
    spec = AggregateSpec("later", "orders", ("country",), metrics)
    dataset = REGISTRY.get("orders")
    assert aggregate_sql.changes(spec, dataset, lake.cleaned(dataset), ["2024-01-01"]) is None
    built = aggregate.build(spec, dataset, lake, ["2024-01-01"], "2024-01-01")
    assert (built["partitions"], built["rows"]) == (["2024-01-01"], 1)
    [row] = lake.aggregated("later").read().to_dict("records")
    assert row["n"] == 20 and all(pd.isna(row[c]) for c in ("country", "fees", "top"))
