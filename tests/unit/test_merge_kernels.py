"""The merge's vectorised kernels against the plain rules they replace.

``upsert_partitions`` (one sort and one take of the winners) must give exactly what the upsert
followed by a group-by and a per-partition key sort gave; ``_in_range`` (two searches over every
partition's key range) exactly the partitions the one-by-one range test picks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.common import transforms
from pipelines.steps.merge import _in_range, _may_hold

PK = ["id", "part"]
ORDER = ["updated_at", "_ds", "_row"]


def rows(rng: np.random.Generator, n: int, ds: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.array(rng.integers(0, n // 2 + 1, n), dtype="Int64"),
            "part": pd.array(rng.choice(["a", "b", "c"], n), dtype="string"),
            "value": pd.array(rng.normal(size=n), dtype="Float64"),
            "updated_at": pd.to_datetime(rng.integers(0, 5, n), unit="D", utc=True),
            "_ds": pd.array([ds] * n, dtype="string"),
            "_row": np.arange(n, dtype="int64"),
            "dt": pd.array(rng.choice(["2024-01-01", "2024-01-02", "2024-01-03"], n)).astype(
                "string"
            ),
        }
    )


def grouped(current: pd.DataFrame, delta: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """What the merge did before: upsert, group by partition, sort each group by key."""
    merged = transforms.upsert(current, delta, PK, ORDER)
    return {
        d: transforms.sort_rows(part.drop(columns="dt"), PK)
        for d, part in merged.groupby("dt", sort=True)
    }


@pytest.mark.parametrize("seed", range(12))
def test_upsert_partitions_equals_upsert_then_group_and_sort(seed):
    rng = np.random.default_rng(seed)
    current = rows(rng, 60, "2024-01-01") if seed % 3 else rows(rng, 0, "2024-01-01")
    delta = rows(rng, 40, "2024-01-02") if seed % 4 else rows(rng, 0, "2024-01-02")
    want = grouped(current, delta)
    got = transforms.upsert_partitions(current, delta, PK, ORDER, "dt")
    assert list(got) == list(want)
    for part, frame in want.items():
        pd.testing.assert_frame_equal(got[part], frame, check_exact=True)


def test_upsert_partitions_without_a_duplicate_key():
    delta = rows(np.random.default_rng(7), 40, "2024-01-02").drop_duplicates(PK)
    want = grouped(delta.iloc[0:0], delta)
    got = transforms.upsert_partitions(delta.iloc[0:0], delta, PK, ORDER, "dt")
    assert list(got) == list(want)
    for part, frame in want.items():
        pd.testing.assert_frame_equal(got[part], frame, check_exact=True)


def test_upsert_partitions_of_nothing_is_nothing():
    empty = rows(np.random.default_rng(0), 0, "2024-01-01")
    assert transforms.upsert_partitions(empty, empty, PK, ORDER, "dt") == {}


def ranges(rng: np.random.Generator, make, count: int) -> dict[str, dict]:
    entries = {}
    for i in range(count):
        lo, hi = sorted([make(), make()])
        entries[f"2024-01-{i + 1:02d}"] = {"lo": lo, "hi": hi} if rng.random() < 0.9 else {}
    return entries


@pytest.mark.parametrize("kind", ["int", "float", "mixed", "text", "changed"])
def test_in_range_picks_exactly_the_partitions_the_range_test_picks(kind):
    rng = np.random.default_rng(len(kind))
    for _ in range(300):
        size = int(rng.integers(1, 15))
        number = lambda: int(rng.integers(0, 500))  # noqa: E731
        if kind == "text":
            probe = np.sort(np.array([f"k{rng.integers(0, 99):02d}" for _ in range(size)], object))
            make = lambda: f"k{rng.integers(0, 99):02d}"  # noqa: E731
        else:
            probe = np.sort(rng.integers(0, 500, size))
            probe = probe.astype("float64") if kind in ("float", "mixed") else probe
            make = {
                "int": number,
                "float": lambda: float(number()),
                "mixed": lambda: float(number()) if rng.random() < 0.5 else number(),
                "changed": lambda: f"{number():03d}" if rng.random() < 0.2 else number(),
            }[kind]
        try:
            entries = ranges(rng, make, int(rng.integers(0, 25)))
        except TypeError:  # "changed": a text and a number drawn for one range
            continue
        want = sorted(p for p, e in entries.items() if _may_hold(probe, e))
        assert sorted(_in_range(probe, entries)) == want
