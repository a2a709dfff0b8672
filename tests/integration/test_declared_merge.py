"""A declared Parquet dataset merged in DuckDB (steps/declared_sql.py) gives the pandas path's
cleaned and quarantine tables, row for row and reason for reason, in any order the days run:
random deliveries with values breaking each row test the DuckDB path states, nulls, blanks,
NaN-free floats, duplicate keys and null keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pipelines
from pipelines.steps import typed_extract
from pipelines.steps import typed_merge as engine
from pipelines.steps.dataset import run_steps
from tests.conftest import write_registry
from tests.integration.test_typed_merge import DAYS, REGISTRY, run_all

COLUMNS = """\
items:
  tests: {min_rows: 1}
  columns:
    id: {type: integer, tests: [not_null]}
    ts: {type: timestamp}
    v: {type: float, tests: [{min: 0}, {max: 0.95}]}
    n: {type: integer, tests: [not_null, {min: 1}, {accepted_values: [1, 2, 3, 4, 5, 6, 7, 8]}]}
    label: {type: text, tests: [not_null, {accepted_values: [x0, x1, x2, x3, x4, x5]}]}
    flag: {type: boolean, tests: [{accepted_values: [true]}]}
    note: {tests: [unique]}
"""
LABELS = np.array(["x0", "x1", "x2", "x3", "x4", "x5", " x2 ", "  ", "", "x9", "é" * 90])


def deliveries(home) -> None:
    """Four days of 300 rows over 120 keys; every declared column has nulls and values that
    break its tests, a few keys and ts are null, keys repeat within a day and across days."""
    rng = np.random.default_rng(11)
    (home / "include" / "src").mkdir(exist_ok=True)
    for d in DAYS:
        n = 300

        def holes(values, share: float, dtype=None) -> pd.Series:
            return pd.Series(values, dtype=dtype).where(rng.random(n) > share)

        ts = pd.Timestamp(d, tz="UTC") + pd.to_timedelta(rng.integers(0, 6, n), unit="h")
        day = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 4, n), "D")
        labels = LABELS[rng.choice(len(LABELS), n, p=_odds())]
        frame = pd.DataFrame(
            {
                "id": holes(rng.integers(0, 120, n), 0.01, "Int64"),
                "ts": holes(ts, 0.03),
                "day": day,
                "v": holes(rng.random(n).round(3) * 1.02 - 0.01, 0.05),
                "n": holes(rng.integers(0, 11, n), 0.03, "Int64"),
                "label": holes(labels, 0.03, "str"),
                "flag": holes(rng.random(n) > 0.08, 0.05, "boolean"),
                "note": [f"r{d}-{i}" for i in range(n)],
            }
        )
        frame.to_parquet(home / "include" / "src" / f"items_{d}.parquet")


def _odds() -> list[float]:
    rare = [0.02, 0.02, 0.02, 0.02, 0.02]
    common = (1 - sum(rare)) / (len(LABELS) - len(rare))
    return [common] * (len(LABELS) - len(rare)) + rare


@pytest.mark.parametrize("order", [DAYS, DAYS[::-1]])
def test_a_declared_merge_in_duckdb_equals_the_pandas_merge(home, monkeypatch, order):
    write_registry(home, REGISTRY)
    (home / "include" / "columns.yaml").write_text(COLUMNS)
    deliveries(home)
    reference = run_all(home, monkeypatch, "lake-pandas", DAYS, typed=False)
    typed = run_all(home, monkeypatch, "lake-typed", order, typed=True)  # asserts DuckDB ran
    pd.testing.assert_frame_equal(typed["cleaned"], reference["cleaned"])
    pd.testing.assert_frame_equal(typed["quarantine"], reference["quarantine"])
    assert typed["counts"] == reference["counts"]
    reasons = reference["quarantine"]["_reason"].str.extract(r"^(\w+): .*\((\w+)(?::[^()]*)?\)$")
    broken = set(map(tuple, reasons.dropna().to_numpy()))
    assert broken >= {
        ("id", "not_null"),
        ("v", "min"),
        ("v", "max"),
        ("n", "not_null"),
        ("n", "min"),
        ("n", "accepted_values"),
        ("label", "not_null"),
        ("label", "accepted_values"),
        ("flag", "accepted_values"),
    }  # every row test the DuckDB path states failed somewhere
    assert {"ts: missing or not an ISO 8601 timestamp", engine.SUPERSEDED} <= set(
        reference["quarantine"]["_reason"]
    )


def test_a_declaration_duckdb_cannot_apply_is_merged_by_pandas(home, monkeypatch):
    """A declared type the delivery does not have (``n`` delivered as integers, declared a
    float): the extract is DuckDB's (the declaration does not change it), the merge pandas',
    which types ``n`` as declared."""
    write_registry(home, REGISTRY)
    declaration = COLUMNS.replace("n: {type: integer", "n: {type: float")
    (home / "include" / "columns.yaml").write_text(declaration)
    deliveries(home)
    monkeypatch.setenv("PIPELINES_LAKE", str(home / "lake"))
    calls = {"extract": spied(monkeypatch, typed_extract, "extract"), "merge": []}
    calls["merge"] = spied(monkeypatch, engine, "merge")
    run_steps("items", DAYS[0], steps=("extract", "merge"))
    assert calls == {"extract": [DAYS[0]], "merge": []}
    assert pipelines.read("items")["n"].dtype == "Float64"


def spied(monkeypatch, module, name: str) -> list[str]:
    """The days ``module.name`` (called with the interval second) is called for from now on."""
    calls, real = [], getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(args[1].ds)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls
