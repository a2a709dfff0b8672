"""Upsert semantics on 3-row frames: late update wins, tie-breaks, deletes in full snapshots."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.common import transforms

PK = ["id"]
ORDER = ["updated_at", "_ds", "_row"]


def frame(rows):
    df = pd.DataFrame(rows, columns=["id", "value", "updated_at", "_ds", "_row"])
    df["updated_at"] = pd.to_datetime(df["updated_at"], utc=True)
    return df


def test_late_update_wins_whichever_arrives_first():
    old = frame([(1, "a", "2024-01-01T10:00Z", "2024-01-01", 0)])
    late = frame([(1, "b", "2024-01-03T10:00Z", "2024-01-03", 0)])
    assert transforms.upsert(old, late, PK, ORDER)["value"].tolist() == ["b"]
    assert transforms.upsert(late, old, PK, ORDER)["value"].tolist() == ["b"]


def test_stale_delivery_does_not_overwrite_newer_row():
    current = frame([(1, "new", "2024-01-05T00:00Z", "2024-01-05", 0)])
    stale = frame([(1, "stale", "2024-01-04T00:00Z", "2024-01-06", 0)])
    assert transforms.upsert(current, stale, PK, ORDER)["value"].tolist() == ["new"]


def test_tie_goes_to_later_delivery_then_later_row():
    same_time = "2024-01-01T10:00Z"
    a = frame([(1, "early-delivery", same_time, "2024-01-01", 5)])
    b = frame([(1, "late-delivery", same_time, "2024-01-02", 0)])
    assert transforms.upsert(b, a, PK, ORDER)["value"].tolist() == ["late-delivery"]
    rows = frame(
        [(2, "first", same_time, "2024-01-01", 0), (2, "second", same_time, "2024-01-01", 1)]
    )
    winners, losers = transforms.latest_per_key(rows, PK, ORDER)
    assert winners["value"].tolist() == ["second"]
    assert losers["value"].tolist() == ["first"]


def test_latest_per_key_ignores_input_order():
    rows = frame(
        [
            (1, "x", "2024-01-02T00:00Z", "d", 0),
            (2, "y", "2024-01-01T00:00Z", "d", 1),
            (1, "z", "2024-01-01T00:00Z", "d", 2),
        ]
    )
    a, _ = transforms.latest_per_key(rows, PK, ORDER)
    b, _ = transforms.latest_per_key(rows.iloc[::-1], PK, ORDER)
    assert transforms.sort_rows(a, PK).equals(transforms.sort_rows(b, PK))
    assert sorted(a["value"]) == ["x", "y"]


def test_full_snapshot_dedupe_drops_rows_absent_from_source():
    # a full snapshot is the delivery itself: a key missing from it is gone
    snapshot = frame([(1, "a", "2024-01-01T00:00Z", "d", 0), (3, "c", "2024-01-01T00:00Z", "d", 1)])
    winners, _ = transforms.latest_per_key(snapshot, PK, ORDER)
    assert sorted(winners["id"]) == [1, 3]


def test_quarantine_null_keys_and_bad_timestamps_with_reasons():
    raw = pd.DataFrame(
        {"id": ["1", None, "3"], "ts": ["2024-01-01T00:00:00Z", "2024-01-01", "yesterday"]},
        dtype="string",
    )
    kept, bad = transforms.quarantine_invalid(raw, ["id"], ["ts"])
    assert kept["id"].tolist() == ["1"]
    assert bad["_reason"].tolist() == [
        "id: primary key is null",
        "ts: missing or not an ISO 8601 timestamp",
    ]


def test_timestamps_naive_is_utc_and_aware_is_converted():
    parsed, bad = transforms.parse_timestamps(
        pd.Series(["2024-01-01T10:00:00", "2024-01-01T10:00:00+02:00"])
    )
    assert not bad.any()
    assert [t.hour for t in parsed] == [10, 8]


def test_filter_interval_is_half_open():
    df = pd.DataFrame(
        {"t": ["2024-01-01T00:00:00Z", "2024-01-01T23:59:59Z", "2024-01-02T00:00:00Z", "garbage"]}
    )
    inside, bad = transforms.filter_interval(
        df, "t", pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02", tz="UTC")
    )
    assert inside.index.tolist() == [0, 1]
    assert bad.index.tolist() == [3]


def test_widen_rules():
    assert transforms.widen("int", "float") == "float"
    assert transforms.widen("float", "int") == "float"
    assert transforms.widen("string", "int") == "string"
    assert transforms.widen("int", "string") is None
    assert transforms.widen("int", "null") == "int"


def test_aggregate_metrics_skip_nulls_but_count_counts_rows():
    df = pd.DataFrame(
        {
            "dt": ["d1", "d1", "d1"],
            "g": ["a", "a", "b"],
            "x": pd.array([1.0, None, 3.0], dtype="Float64"),
            "u": ["p", "p", None],
        }
    )
    out = transforms.aggregate(
        df,
        ["dt", "g"],
        {
            "n": ("count", None),
            "total": ("sum", "x"),
            "avg": ("mean", "x"),
            "lo": ("min", "x"),
            "hi": ("max", "x"),
            "users": ("count_distinct", "u"),
        },
    )
    a = out[out["g"] == "a"].iloc[0]
    b = out[out["g"] == "b"].iloc[0]
    assert (a["n"], a["total"], a["avg"], a["lo"], a["hi"], a["users"]) == (
        2,
        1.0,
        1.0,
        1.0,
        1.0,
        1,
    )
    assert (b["n"], b["total"], b["users"]) == (1, 3.0, 0)


def test_only_text_shaped_like_a_date_is_a_date():
    from pipelines.common.transforms import is_date_only, parse_timestamps

    for text, expected in [
        (["2024-01-02", "2024-01-03"], True),
        (["2024-01-02", "2024-01-03T05:00:00Z"], False),
        (["1704153600", "1704240000"], False),  # epoch seconds at midnight: times, not dates
        (["2024-01-02T00:00:00Z"], False),
    ]:
        delivered = pd.Series(text, dtype="string")
        parsed, _ = parse_timestamps(delivered)
        assert is_date_only(delivered, parsed) is expected, text


def test_a_field_with_no_value_in_a_delivery_does_not_decide_its_kind():
    from pipelines.project.registry import parse_registry
    from pipelines.steps.schema import delivery_kinds

    header = "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date"
    [dataset] = parse_registry(f"{header}\nm,m.csv,id,,day,full,2024-01-01\n").datasets
    empty = pd.DataFrame(
        {"id": pd.Series([], dtype="string"), "day": pd.Series([], dtype="string")}
    )
    assert delivery_kinds(empty, dataset) == {"id": "null", "day": "null"}


def test_a_missing_value_of_a_typed_timestamp_column_cannot_be_parsed():
    """As an empty text value: a row whose typed incremental field is missing is quarantined
    (the pandas path kept it before, with no incremental field; the DuckDB path quarantines)."""
    stamps = pd.Series(pd.to_datetime(["2024-01-02T01:00:00Z", None], utc=True))
    _, bad = transforms.parse_timestamps(stamps)
    assert bad.tolist() == [False, True]


@pytest.mark.parametrize("kind", ["timestamp", "date"])
def test_coerce_keeps_a_missing_timestamp_null(kind):
    """A typed column's missing value (a Parquet timestamp, a declared date) is null, not a
    value that does not fit (the merge refused the whole delivery)."""
    stamps = pd.Series(pd.to_datetime(["2024-01-01T01:00:00Z", None], utc=True))
    out = transforms.coerce(stamps, kind)
    assert out.isna().tolist() == [False, True]
    with pytest.raises(ValueError, match="'soon' is not an ISO 8601 timestamp"):
        transforms.coerce(pd.Series(["2024-01-01", None, "soon"], dtype="string"), kind)
