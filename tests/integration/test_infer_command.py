"""`pipelines infer NAME`: the columns.yaml entry a dataset's deliveries suggest, as YAML that
`pipelines validate` accepts as it is; a user's mistake is one line and exit code 1."""

from __future__ import annotations

import yaml

from pipelines.cli import main
from pipelines.project.columns import load_declarations
from tests.conftest import write_registry

REGISTRY = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,schedule,"
    "start_date\n"
    "vendor,vendor/v_{ds}.csv,csv,{key},sold_on,sold_on,incremental,@daily,2013-02-12\n"
)
FIRST = """\
id,sold_on,amount,Water flow [l/s],paid,Amount (EUR),count
007,2013-02-12,"1.234,50",3.5,ja,1,3
7,2013-02-12,"12,30",4,nein,2,4
0042,2013-02-12,x,4,ja,,5
"""
SECOND = """\
id,sold_on,amount,Water flow [l/s],paid,Amount (EUR),count,late
8,2013-02-13T08:00:00Z,"1,00",5,ja,1.5,six,x
"""


def project(home, key: str = "id", first: str = FIRST) -> None:
    write_registry(home, REGISTRY.replace("{key}", key))
    (home / "include" / "vendor").mkdir()
    (home / "include" / "vendor" / "v_2013-02-12.csv").write_text(first)
    (home / "include" / "vendor" / "v_2013-02-13.csv").write_text(SECOND)


def infer(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["infer", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def columns(out: str) -> dict:
    return yaml.safe_load(out)["vendor"]["columns"]


def test_one_delivery_gives_types_keys_renames_and_says_what_it_read(home, capsys):
    project(home)
    code, out, _ = infer(capsys, "vendor")
    assert code == 0
    assert out.splitlines()[:2] == [
        "# pipelines infer vendor: the lossless inference over 1 file, 3 rows:",
        "#   vendor/v_2013-02-12.csv (2013-02-12): 3 rows",
    ]
    assert columns(out) == {
        "id": {"type": "text", "tests": ["not_null"]},  # a key stays text: 007 is not 7
        "sold_on": {"type": "date"},  # the partition field, delivered as dates
        "amount": {"type": "text"},  # a decimal comma is not guessed
        "Water flow [l/s]": {"type": "float", "rename": "water_flow_l_s"},
        "paid": {"type": "text"},
        "Amount (EUR)": {"type": "integer", "rename": "amount_eur"},
        "count": {"type": "integer"},
    }


def test_several_deliveries_give_the_types_all_of_them_fit(home, capsys):
    project(home)
    code, out, _ = infer(capsys, "vendor", "--date", "2013-02-12", "--date", "2013-02-13")
    assert code == 0
    assert "over 2 files, 4 rows:" in out.splitlines()[0]
    assert "#   vendor/v_2013-02-13.csv (2013-02-13): 1 row\n" in out
    found = columns(out)
    assert found["sold_on"] == {"type": "timestamp"}  # a time on one day: timestamps
    assert found["Amount (EUR)"]["type"] == "float"  # 1, 2 then 1.5
    assert found["count"] == {"type": "text"}  # 3, 4, 5 then six
    assert found["late"] == {"type": "text"}  # a column of the second delivery only
    assert list(found)[-1] == "late"


def test_the_output_is_a_declaration_validate_accepts(home, capsys):
    project(home, key="id|Water flow [l/s]")  # registry.csv names the awkward header: a key
    _, out, _ = infer(capsys, "vendor", "--date", "2013-02-12", "--date", "2013-02-13")
    water = next(line for line in out.splitlines() if "Water flow" in line)
    assert water == (
        "    'Water flow [l/s]': {type: text, tests: [not_null]}  # registry.csv names it: rename "
        "it there and here to give it a clean name"
    )
    (home / "include" / "columns.yaml").write_text(out)
    assert main(["validate"]) == 0
    printed, err = capsys.readouterr()
    assert printed == "" and "0 problems" in err
    vendor = load_declarations(home / "include" / "columns.yaml").by_dataset["vendor"]
    assert vendor.renames == {"Amount (EUR)": "amount_eur"}
    assert vendor.kinds["id"] == "string" and vendor.column("id").test("not_null")


def test_a_field_no_iso_date_reads_is_left_untyped_with_a_note(home, capsys):
    project(home, first=FIRST.replace("2013-02-12", "02/12/2013"))
    code, out, _ = infer(capsys, "vendor")
    assert code == 0
    sold_on = next(line for line in out.splitlines() if line.startswith("    sold_on:"))
    assert sold_on == (
        "    sold_on: {}  # no value is an ISO 8601 date or time (like '02/12/2013'): "
        "declare its format"
    )
    (home / "include" / "columns.yaml").write_text(out)
    assert main(["validate"]) == 0


def test_mistakes_are_one_line_and_exit_1(home, capsys):
    project(home)
    for argv, said in (
        (["nope"], "error: no dataset named 'nope' in registry.csv; known: vendor"),
        (["vendor", "--date", "2013-03-01"], "error: vendor: source for 2013-03-01 not found: "),
        (["vendor", "--date", "2013-3-1"], "error: --date: '2013-3-1' is not a date"),
    ):
        code, out, err = infer(capsys, *argv)
        assert code == 1 and out == ""
        assert err.startswith(said) and err.count("\n") == 1 and "Traceback" not in out + err


def test_a_key_of_timestamps_is_a_timestamp_and_a_zip_with_a_leading_zero_is_text(home, capsys):
    """As the merge types them: one instant whatever its offset; 02134 is not 2134."""
    project(
        home,
        key="at",
        first="at,sold_on,zip\n"
        "2013-02-12T08:00:00Z,2013-02-12,02134\n2013-02-12T10:00:00+02:00,2013-02-12,2134\n",
    )
    code, out, _ = infer(capsys, "vendor")
    assert code == 0
    assert columns(out) == {
        "at": {"type": "timestamp", "tests": ["not_null"]},
        "sold_on": {"type": "date"},
        "zip": {"type": "text"},
    }
