"""Declared columns (include/columns.yaml) through real runs: a delivery's awkward headers get
clean names, its values their declared types and formats, and a value that breaks its type or a
row test goes to quarantine with the column, the value and the rule; the contracts for new
columns and bad values do what they say."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

import pipelines
from pipelines.exceptions import LakeError, SchemaDriftError
from pipelines.project.config import load_project
from pipelines.steps.dataset import run_steps

REGISTRY = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,schedule,"
    "start_date\n"
    "vendor,vendor/v_{ds}.csv,csv,id,sold_on,sold_on,incremental,@daily,2013-02-12\n"
)
DELIVERY = """\
id,zip,sold_on,amount,Water flow [l/s],paid,status
007,02134,02/12/2013,"1.234,50",3.5,ja,new
7,2134,02/12/2013,"12,30",4,nein,paid
0042,00501,02/12/2013,x,4,ja,new
0043,00502,02/12/2013,"1,00",5,ja,lost
"""
COLUMNS = """\
vendor:
  {contracts}
  columns:
    id: {{type: text, tests: [not_null, unique]}}
    zip: {{type: text}}
    sold_on: {{type: date, format: "%m/%d/%Y"}}
    amount: {{type: "decimal(12,2)", format: {{decimal: ",", thousands: "."}}}}
    "Water flow [l/s]": {{rename: water_flow, type: float}}
    paid: {{type: boolean, format: "ja/nein"}}
    status: {{tests: [{{accepted_values: [new, paid]}}]}}
"""


@pytest.fixture
def vendor(tmp_path, monkeypatch):
    """A project of one vendor dataset, its first delivery, and a function that declares it."""
    include = tmp_path / "include"
    (include / "vendor").mkdir(parents=True)
    (include / "registry.csv").write_text(REGISTRY)
    (include / "vendor" / "v_2013-02-12.csv").write_text(DELIVERY)
    monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
    monkeypatch.setenv("PIPELINES_LAKE", str(tmp_path / "lake"))

    def declare(contracts: str = "", columns: str = COLUMNS) -> None:
        (include / "columns.yaml").write_text(columns.format(contracts=contracts))

    return declare


def run(day: str = "2013-02-12", steps=("extract", "merge", "check_keys")):
    return run_steps("vendor", day, steps, project=load_project())


def read(layer: str) -> pd.DataFrame:
    return pipelines.read("vendor", layer=layer)


def test_declared_types_formats_and_names_land_every_row_or_say_why_not(vendor):
    vendor()
    merged = run()["merge"]
    assert (merged.raw_rows, merged.delivered, merged.quarantined) == (4, 2, 2)
    cleaned = read("cleaned").sort_values("id", ignore_index=True)
    assert cleaned["id"].tolist() == ["007", "7"]  # text: two keys, nothing collapsed
    assert cleaned["zip"].tolist() == ["02134", "2134"]
    assert cleaned["sold_on"].tolist() == [pd.Timestamp("2013-02-12")] * 2
    assert [str(v) for v in cleaned["amount"]] == ["1234.50", "12.30"]
    assert cleaned["water_flow"].tolist() == [3.5, 4.0]  # the clean name
    assert cleaned["paid"].tolist() == [True, False]
    quarantined = read("quarantine").sort_values("_row", ignore_index=True)
    assert quarantined["_reason"].tolist() == [
        "amount: 'x' is not a decimal(12,2) (decimal mark ',')",
        "status: 'lost' is not accepted (accepted_values: [new, paid])",
    ]
    assert quarantined["amount"].tolist() == ["x", "1,00"]  # as delivered


def test_without_the_date_format_every_row_is_quarantined_and_names_the_value(vendor):
    vendor(columns=COLUMNS.replace(', format: "%m/%d/%Y"', ""))
    merged = run(steps=("extract", "merge"))["merge"]
    assert merged.quarantined == merged.raw_rows == 4
    reasons = set(read("quarantine")["_reason"])
    assert reasons == {"sold_on: '02/12/2013' is not a date"}


def test_bad_values_freeze_fails_the_run_naming_the_value_and_writes_nothing(vendor):
    vendor("bad_values: freeze")
    with pytest.raises(SchemaDriftError) as failed:
        run()
    assert str(failed.value) == (
        "vendor ds=2013-02-12: amount: 'x' is not a decimal(12,2) (decimal mark ',') "
        "(bad_values: freeze, 1 such rows); nothing was written"
    )
    with pytest.raises(LakeError, match="no cleaned data for 'vendor'"):
        read("cleaned")


def test_bad_values_discard_value_keeps_the_row_with_a_null(vendor):
    vendor("bad_values: discard_value")
    merged = run()["merge"]
    assert (merged.delivered, merged.quarantined) == (4, 0)
    cleaned = read("cleaned").set_index("id")
    assert pd.isna(cleaned.at["0042", "amount"]) and pd.isna(cleaned.at["0043", "status"])


@pytest.mark.parametrize(
    ("contract", "expected"),
    [
        ("evolve", {"rows": 2, "columns": {"extra"}}),
        ("discard_value", {"rows": 2, "columns": set()}),
        ("discard_row", {"rows": 1, "columns": {"extra"}}),
    ],
)
def test_a_new_column_meets_its_contract(vendor, tmp_path, contract, expected):
    delivery = tmp_path / "include" / "vendor" / "v_2013-02-12.csv"
    rows = DELIVERY.splitlines()[:3]
    delivery.write_text(
        "\n".join([rows[0] + ",extra", rows[1] + ",", rows[2] + ",surprise"]) + "\n"
    )
    vendor(f"new_columns: {contract}")
    run()
    cleaned = read("cleaned")
    assert len(cleaned) == expected["rows"]
    assert {"extra"} & set(cleaned.columns) == expected["columns"]
    if contract == "discard_row":
        [reason] = read("quarantine")["_reason"]
        assert reason == "extra: column not declared (new_columns: discard_row)"


def test_new_columns_freeze_fails_the_run(vendor, tmp_path):
    delivery = tmp_path / "include" / "vendor" / "v_2013-02-12.csv"
    delivery.write_text(DELIVERY.replace("status\n", "status,extra\n", 1))
    vendor("new_columns: freeze")
    with pytest.raises(SchemaDriftError, match="column 'extra' is not declared in columns.yaml"):
        run()


def test_the_registry_names_a_renamed_column_by_its_clean_name(vendor, tmp_path):
    vendor()
    (tmp_path / "include" / "aggregates.yaml").write_text(
        textwrap.dedent(
            """\
            - name: flow_by_day
              dataset: vendor
              group_by: [paid]
              metrics:
                flow: sum:water_flow
            """
        )
    )
    run(steps=("extract", "merge", "check_keys", "aggregate"))
    flows = pipelines.read("flow_by_day", layer="aggregated").set_index("paid")["flow"]
    assert flows.to_dict() == {False: 4.0, True: 3.5}


SHOPS = """\
vendor:
  tests: {{min_rows: 1, max_row_change_pct: 40}}
  columns:
    id: {{type: text}}
    sold_on: {{type: date, format: "%m/%d/%Y"}}
    zip: {{type: text, tests: [unique]}}
    shop: {{type: text, tests: [{{relationships: shops.shop}}]}}
"""


@pytest.fixture
def shops(vendor, tmp_path):
    """vendor's rows name a shop, which must exist in the shops dataset (its own delivery)."""
    include = tmp_path / "include"
    with (include / "registry.csv").open("a") as registry:
        registry.write("shops,shops/s_{ds}.csv,csv,shop,,,full,@daily,2013-02-12\n")
    (include / "shops").mkdir()
    for day, body in {
        "12": "id,zip,sold_on,shop\n1,02134,02/12/2013,north\n2,02135,02/12/2013,south\n",
        "13": "id,zip,sold_on,shop\n3,02136,02/13/2013,north\n",
        "14": "id,zip,sold_on,shop\n4,02134,02/14/2013,north\n5,02137,02/14/2013,east\n",
    }.items():
        (include / "vendor" / f"v_2013-02-{day}.csv").write_text(body)
    vendor(columns=SHOPS)
    return include


def checks(day: str) -> str:
    from pipelines.project.config import load_project

    project = load_project()
    table = project.lake().cleaned(project.dataset("vendor"))
    return table.snapshot().run_metrics(day)["checks"]


def test_a_relationship_fails_the_day_until_the_referenced_dataset_lands(shops):
    from pipelines.exceptions import QualityCheckFailed

    with pytest.raises(QualityCheckFailed) as failed:
        run("2013-02-12")
    assert str(failed.value) == (
        "vendor ds=2013-02-12: relationships shop: 2 values not in shops.shop ('north', 'south')"
    )
    assert checks("2013-02-12").startswith("failed: relationships shop:")
    from pipelines.inspection.status import status

    project = load_project()
    [row] = [r for r in status(project, project.lake()) if r.name == "vendor"]
    assert row.checks_text == "failed (relationships shop)"  # status names the failed test
    (shops / "shops" / "s_2013-02-12.csv").write_text("shop,city\nnorth,Oslo\nsouth,Rome\n")
    run_steps("shops", "2013-02-12", ("extract", "merge", "check_keys"), project=load_project())
    run("2013-02-12")  # the rerun passes: the day has landed
    assert checks("2013-02-12") == "passed"


def test_unique_spans_the_table_and_counts_are_checked_against_the_day_before(shops):
    (shops / "shops" / "s_2013-02-12.csv").write_text("shop\nnorth\nsouth\neast\n")
    run_steps("shops", "2013-02-12", ("extract", "merge", "check_keys"), project=load_project())
    run("2013-02-12")
    from pipelines.exceptions import QualityCheckFailed

    with pytest.raises(QualityCheckFailed, match=r"max_row_change_pct: 1 rows against 2 on "):
        run("2013-02-13")  # 2 rows, then 1: a 50% change
    with pytest.raises(QualityCheckFailed) as failed:
        run("2013-02-14")
    assert "unique zip: 1 values occur more than once in the table ('02134')" in str(failed.value)


def test_the_client_s_outputs_name_the_failed_test(shops, airflow_db):
    from pipelines.client import Client

    result = Client().submit("vendor", "2013-02-12")
    assert not result.ok and result.failed_task.endswith("check_keys")
    assert result.outputs["checks"] == (
        "failed: relationships shop: 2 values not in shops.shop ('north', 'south')"
    )
