"""Files as teams really have them: semicolons, latin-1, `NA` nulls, column names with spaces and
capitals, timestamps in epoch seconds or milliseconds; and `validate --sources` before any run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import pipelines
from pipelines.cli import main
from pipelines.steps.dataset import run_steps
from tests import sample_database
from tests.conftest import write_registry

HEADER = "dataset,source,primary_key,incremental_field,partition_field,ingestion,start_date,options"


def test_semicolons_latin1_and_na_nulls_load_without_editing_the_file(home):
    write_registry(
        home,
        f"{HEADER}\nkunden,k_{{ds}}.csv,Kunde Nr.,Geändert am,Geändert am,incremental,"
        "2024-01-01,delimiter=;|encoding=latin-1|null=NA\n",
    )
    text = "Kunde Nr.;Name;Umsatz (EUR);Geändert am\n1;Müller;12,5;2024-01-01T10:00:00Z\n"
    text += "2;NA;NA;2024-01-01T11:00:00Z\nNA;Nobody;1;2024-01-01T12:00:00Z\n"
    (home / "include" / "k_2024-01-01.csv").write_bytes(text.encode("latin-1"))
    out = run_steps("kunden", "2024-01-01")
    assert (out["merge"].delivered, out["merge"].quarantined) == (2, 1)
    cleaned = pipelines.read("kunden").set_index("Kunde Nr.")  # a CSV key: text as delivered
    assert cleaned.loc["1", "Name"] == "Müller" and cleaned.loc["1", "Umsatz (EUR)"] == "12,5"
    assert pd.isna(cleaned.loc["2", "Name"]) and pd.isna(cleaned.loc["2", "Umsatz (EUR)"])
    [reason] = pipelines.read("kunden", "quarantine")["_reason"]
    assert reason == "Kunde Nr.: primary key is null"


@pytest.mark.parametrize(
    ("options", "stamps"),
    [
        ("", ["1704103200", "1704106800.5"]),  # epoch seconds, as text
        ("epoch=ms", ["1704103200000", "1704106800500"]),
    ],
)
def test_epoch_timestamps_are_understood(home, options, stamps):
    write_registry(home, f"{HEADER}\nm,m_{{ds}}.csv,id,ts,ts,incremental,2024-01-01,{options}\n")
    rows = "".join(f"{i},{stamp}\n" for i, stamp in enumerate(stamps))
    (home / "include" / "m_2024-01-01.csv").write_text("id,ts\n" + rows)
    out = run_steps("m", "2024-01-01")
    assert (out["merge"].delivered, out["merge"].quarantined) == (2, 0)
    cleaned = pipelines.read("m")
    assert list(cleaned["ts"].dt.strftime("%Y-%m-%d %H:%M")) == [
        "2024-01-01 10:00",
        "2024-01-01 11:00",
    ]
    assert set(cleaned["dt"]) == {"2024-01-01"}


def test_json_numbers_are_epoch_seconds_and_a_bad_stamp_keeps_its_text(home):
    write_registry(home, f"{HEADER}\nev,ev.jsonl,id,at,at,incremental,2024-01-01,\n")
    rows = [{"id": "a", "at": 1704103200}, {"id": "b", "at": 1704189600}, {"id": "c", "at": "soon"}]
    (home / "include" / "ev.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run_steps("ev", "2024-01-01")
    assert list(pipelines.read("ev")["id"]) == ["a"]  # b is the next day's
    quarantine = pipelines.read("ev", "quarantine")
    assert quarantine[["id", "at", "_ds"]].values.tolist() == [["c", "soon", "2024-01-01"]]


def test_quarantined_rows_keep_the_text_that_did_not_parse_and_their_delivery(home):
    run_steps("orders", "2024-01-01")
    quarantine = pipelines.read("orders", "quarantine", as_of="2024-01-01")
    assert set(quarantine["_ds"]) == {"2024-01-01"}
    raw = pipelines.read("orders", "raw", as_of="2024-01-01").set_index("_row")
    for _, row in quarantine.iterrows():  # every value as delivered
        assert str(row["updated_at"]) == str(raw.loc[row["_row"], "updated_at"])


def test_a_metric_and_keys_on_columns_with_spaces(home):
    write_registry(
        home,
        f"{HEADER}\nsales,s_{{ds}}.csv,Order ID,Updated At,Updated At,incremental,2024-01-01,\n",
    )
    (home / "include" / "aggregates.yaml").write_text(
        "- {name: sales_total, dataset: sales, group_by: [Shop Name],"
        " metrics: {revenue: 'sum:Total (EUR)', orders: count}}\n"
    )
    (home / "include" / "s_2024-01-01.csv").write_text(
        "Order ID,Shop Name,Total (EUR),Updated At\n1,North,10.5,2024-01-01T01:00:00Z\n"
        "2,North,4.5,2024-01-01T02:00:00Z\n3,South,1,2024-01-01T03:00:00Z\n"
    )
    run_steps("sales", "2024-01-01")
    totals = pipelines.read("sales_total", "aggregated").set_index("Shop Name")
    assert totals.loc["North", "revenue"] == 15.0 and totals.loc["South", "orders"] == 1


def test_validate_sources_names_missing_columns_with_close_matches(home, capsys):
    sample_database.without_database_sources(home / "include")  # validate opens every source
    registry = home / "include" / "registry.csv"
    registry.write_text(registry.read_text().replace("order_id,updated_at", "order_idd,updated_at"))
    aggregates = home / "include" / "aggregates.yaml"
    aggregates.write_text(aggregates.read_text().replace("sum:amount", "sum:amout"))
    assert main(["validate"]) == 0  # the config alone is consistent
    capsys.readouterr()
    assert main(["validate", "--sources"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines == [
        "registry.csv:3: primary_key: column 'order_idd' is not in the source "
        "(orders_2024-01-01.csv); did you mean 'order_id' or 'order_date'? (columns: order_id, "
        "customer_id, status, amount, updated_at, order_date)",
    ]
    # an aggregate's column may come with a later delivery (on_schema_change append): a warning
    assert (
        "warning: aggregates.yaml: daily_revenue: column 'amout' is not in the source of dataset "
        "orders (orders_2024-01-01.csv); did you mean 'amount'? (columns: order_id, customer_id, "
        "status, amount, updated_at, order_date)"
    ) in captured.err.splitlines()
    assert "orders: opened sample/orders/orders_2024-01-01.csv" in captured.err.splitlines()
    assert "3 sources opened" in captured.err
    assert "valid; 1 problem, 1 warning" in captured.err


def test_bad_options_are_reported_in_the_usual_form(home, capsys):
    write_registry(
        home,
        f"{HEADER}\nm,m.csv,id,ts,ts,incremental,2024-01-01,delimiter=;;|encoding=klingon|epoch=min|sep=x\n",
    )
    assert main(["validate"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "registry.csv:2: options: 'sep=x' is not one of delimiter=, encoding=, null=, epoch=",
        "registry.csv:2: options: delimiter ';;' must be one character (or tab, pipe)",
        "registry.csv:2: options: encoding 'klingon' is not a text encoding Python knows",
        "registry.csv:2: options: epoch 'min' is not one of: s, ms, us, ns",
    ]


def test_date_only_fields_stay_dates_until_a_delivery_brings_times(home, capsys):
    run_steps("orders", "2024-01-01")
    cleaned = pipelines.read("orders")
    assert str(cleaned["order_date"].dtype) == "datetime64[s]"  # no time, no time zone
    assert set(cleaned["order_date"].astype(str)) == {"2024-01-01"}
    assert main(["read", "orders", "--format", "json", "--columns", "order_date"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == '{"order_date":"2024-01-01"}'
    sample = home / "include" / "sample" / "orders" / "orders_2024-01-02.csv"
    sample.write_text(sample.read_text().replace(",2024-01-02\n", ",2024-01-02T18:00:00Z\n", 1))
    run_steps("orders", "2024-01-02")
    widened = pipelines.read("orders")["order_date"]
    assert str(widened.dtype) == "datetime64[us, UTC]"  # every partition reads widened
    assert widened.min() == pd.Timestamp("2024-01-01", tz="UTC")


def test_validate_sources_of_another_folder_reads_that_folder_s_files(home, tmp_path, capsys):
    other = tmp_path / "elsewhere" / "include"
    other.mkdir(parents=True)
    (other / "registry.csv").write_text(f"{HEADER}\np,p.parquet,id,,,full,2024-01-01,\n")
    (other / "p.parquet").write_bytes(b"not parquet at all")
    assert main(["validate", str(other), "--sources"]) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"registry.csv:2: source: p: cannot read {other}/p.parquet as parquet (")
    assert "Traceback" not in line
