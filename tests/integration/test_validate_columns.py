"""`pipelines validate` over include/columns.yaml: each problem one line naming the file and line,
the dataset and column, and what is wrong; with --sources, the other files name a renamed column
by its clean name and find it under its delivered header, and a declared column the source's
file lacks is a warning (on standard error, exit 0), not a problem."""

from __future__ import annotations

from pipelines.cli import main
from tests.conftest import write_registry

REGISTRY = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,schedule,"
    "start_date\n"
    "vendor,vendor/v_{ds}.csv,csv,{key},sold_on,sold_on,incremental,@daily,2013-02-12\n"
)
DELIVERY = "id,Shop Name,sold_on,Water flow [l/s]\n1,North,2013-02-12,3.5\n2,South,2013-02-12,4\n"
COLUMNS = """\
vendor:
  columns:
    id: {type: text, tests: [not_null]}
    "Shop Name": {rename: shop}
    "Water flow [l/s]": {rename: water_flow, type: float}
    exchange: {type: text}
"""
AGGREGATE = (
    "- {name: flow, dataset: vendor, group_by: [shop], metrics: {total: 'sum:water_flow'}}\n"
)


def project(home, key: str = "id|water_flow", columns: str = COLUMNS) -> None:
    write_registry(home, REGISTRY.replace("{key}", key))
    (home / "include" / "vendor").mkdir()
    (home / "include" / "vendor" / "v_2013-02-12.csv").write_text(DELIVERY)
    (home / "include" / "columns.yaml").write_text(columns)
    (home / "include" / "aggregates.yaml").write_text(AGGREGATE)


def validate(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_a_declaration_s_problems_are_one_line_each_naming_file_line_dataset_column(home, capsys):
    bad = COLUMNS.replace("[not_null]", "[not_nul]")
    project(home, columns=bad.replace("rename: water_flow, type: float", "type: flaot"))
    code, out, err = validate(capsys)
    assert code == 1
    assert out == [
        "columns.yaml:3: vendor.id: test 'not_nul' is not one of not_null, accepted_values, min, "
        "max, pattern, unique, relationships (with an argument: {min: 0})",
        "columns.yaml:5: vendor.Water flow [l/s]: type 'flaot' is not one of text, integer, "
        "float, boolean, date, timestamp, decimal(p,s)",
    ]
    assert "2 problems" in err


def test_sources_find_renamed_columns_under_their_headers_and_warn_of_later_ones(home, capsys):
    project(home)
    code, out, err = validate(capsys, "--sources")
    assert out == []
    assert (
        "warning: columns.yaml:6: vendor.exchange: column 'exchange' is not in the source "
        "(v_2013-02-12.csv) (columns: id, Shop Name, sold_on, Water flow [l/s]); it reads null "
        "on the days it is not delivered\n" in err
    )
    assert code == 0 and "0 problems, 1 warning" in err


def test_sources_still_report_a_name_the_source_does_not_have(home, capsys):
    project(home, key="id|water_flw", columns=COLUMNS.replace("    exchange: {type: text}\n", ""))
    code, out, err = validate(capsys, "--sources")
    assert code == 1
    assert out == [
        "registry.csv:2: primary_key: column 'water_flw' is not in the source (v_2013-02-12.csv); "
        "did you mean 'water_flow'? (columns: id, shop, sold_on, water_flow)"
    ]
    assert "1 problem" in err and "warning" not in err
