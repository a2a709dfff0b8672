"""registry.csv parsing: every valid and invalid kind of row, reported as file:line: column."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.exceptions import RegistryError
from pipelines.project.registry import Ingestion, SchemaChange, load_registry, parse_registry

HEADER = (
    "dataset,source,format,primary_key,incremental_field,partition_field,ingestion,schedule,"
    "start_date\n"
)
GOOD = "orders,sample/o_{ds}.csv,csv,order_id,updated_at,order_date,incremental,@daily,2024-01-01\n"


def problems(text: str) -> list[str]:
    return [str(p) for p in parse_registry(text).problems]


def test_good_row_is_typed():
    reg = parse_registry(HEADER + GOOD)
    assert reg.problems == ()
    (d,) = reg.datasets
    assert d.name == "orders"
    assert d.primary_key == ("order_id",)
    assert d.ingestion is Ingestion.INCREMENTAL
    assert d.cron == "0 0 * * *"
    assert d.start_date == dt.date(2024, 1, 1)
    assert d.max_active_runs == 1
    assert d.on_schema_change is SchemaChange.APPEND
    assert d.per_interval_source
    assert d.line == 2


def test_columns_in_any_order_and_optional_columns():
    text = (
        "ingestion,dataset,primary_key,source,start_date,tags,max_active_runs,owner\n"
        "full,customers,id|region,s/c.parquet,2024-02-01,a|b,3,crm\n"
    )
    (d,) = parse_registry(text).datasets
    assert d.primary_key == ("id", "region")
    assert d.format == "parquet"
    assert d.tags == ("a", "b")
    assert d.max_active_runs == 3
    assert d.owner == "crm"
    assert d.schedule == "@daily"
    assert d.incremental_field is None


def test_bom_crlf_blank_and_comment_lines():
    text = (
        "\ufeff" + HEADER.replace("\n", "\r\n") + "\r\n# a comment\r\n" + GOOD.replace("\n", "\r\n")
    )
    reg = parse_registry(text.encode())
    assert reg.problems == ()
    assert reg.datasets[0].line == 4


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "orders,s/o.csv,csv,order_id,updated_at,order_date,incremntal,@daily,2024-01-01",
            "registry.csv:2: ingestion: 'incremntal' is not one of: full, incremental",
        ),
        (
            "orders,s/o.csv,csv,order_id,,order_date,incremental,@daily,2024-01-01",
            "registry.csv:2: incremental_field: required when ingestion is incremental",
        ),
        (
            "orders,s/o.csv,csv,order_id,updated_at,,incremental,@daily,2024-01-01",
            "registry.csv:2: partition_field: required when ingestion is incremental",
        ),
        (
            ",s/o.csv,csv,order_id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: dataset: required value is empty",
        ),
        (
            "orders,s/o.csv,csv,id|id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: primary_key: column 'id' listed twice",
        ),
        (
            "Orders,s/o.csv,csv,id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: dataset: 'Orders' must match",
        ),
        (
            "../x,s/o.csv,csv,id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: dataset: '../x' must match",
        ),
        (
            "orders,s/o.txt,,id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: format: cannot tell the format",
        ),
        (
            "orders,s/o.csv,xml,id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: format: 'xml' is not one of",
        ),
        (
            "orders,s/o.csv,csv,id,u,d,incremental,@dayly,2024-01-01",
            "registry.csv:2: schedule: '@dayly' is not a preset",
        ),
        (
            "orders,s/o.csv,csv,id,u,d,incremental,61 * * * *,2024-01-01",
            "registry.csv:2: schedule: '61 * * * *' is not a valid",
        ),
        (
            "orders,s/o.csv,csv,id,u,d,incremental,@hourly,2024-01-01",
            "registry.csv:2: schedule: '0 * * * *' runs more than once a day",
        ),
        (
            "orders,s/o.csv,csv,id,u,d,incremental,@daily,01/02/2024",
            "registry.csv:2: start_date: '01/02/2024' is not a date in the form YYYY-MM-DD",
        ),
        (
            "orders,s/o.csv,csv,id,u,d,incremental,@daily,2013-02-30",
            "registry.csv:2: start_date: '2013-02-30' is not a real date: February 2013 has days "
            "1 to 28",
        ),
        (
            "orders,s/o.csv,csv,id,u,d,incremental,@daily,2999-01-01",
            "registry.csv:2: start_date: 2999-01-01 is in the future",
        ),
        (
            "orders,s3://KEY:SECRET@bucket/o.csv,csv,id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: source: credentials must not be written in the URI",
        ),
        (
            "orders,/etc/passwd.csv,csv,id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: source: absolute paths are not allowed",
        ),
        (
            "orders,../../o.csv,csv,id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: source: relative source must stay inside include/",
        ),
        (
            "orders,s/o_{date}.csv,csv,id,u,d,incremental,@daily,2024-01-01",
            "registry.csv:2: source: only the placeholders {ds} and {ds_nodash} are allowed",
        ),
        (
            "orders,s/o.csv,csv,id,u,d,incremental,@daily",
            "registry.csv:2: row: has 8 fields, header has 9",
        ),
    ],
)
def test_invalid_rows_name_line_and_column(row, expected):
    found = problems(HEADER + row + "\n")
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("s3://b/o.csv?aws_session_token=topsecret", "key 'aws_session_token'"),
        ("s3://b/o.csv?X-Amz-Signature=topsecret", "key 'X-Amz-Signature'"),
        ("s3://b/o.csv?x-amz-security-token=topsecret", "key 'x-amz-security-token'"),
        (
            "s3://b/o.csv?X-Amz-Credential=AKIA%2Ftopsecret&X-Amz-Signature=topsecret",
            "keys 'X-Amz-Credential', 'X-Amz-Signature'",
        ),
        ("file:///d/o.csv?SIG=topsecret", "key 'SIG'"),
        ("s3://b/o.csv?Access_Token=topsecret", "key 'Access_Token'"),
        ("s3://b/o.csv?X%2DAmz%2DSignature=topsecret", "key 'X-Amz-Signature'"),  # key encoded
        ("s3://b/o.csv%3Faws_session_token%3Dtopsecret", "key 'aws_session_token'"),
        ("s3://b/o.csv%253FX-Amz-Security-Token%253Dtopsecret", "key 'X-Amz-Security-Token'"),
        ("s/o_{ds}.csv?token=topsecret", "key 'token'"),  # a path carries none either
        ("file:///tmp/nonexist/ev.jsonl#X-Amz-Signature=topsecret", "key 'X-Amz-Signature'"),
        ("s3://b/o.csv?versionId=3#sig=topsecret", "key 'sig'"),  # a fragment as a query
        ("s3://b/o.csv%23aws_session_token%3Dtopsecret", "key 'aws_session_token'"),
    ],
)
def test_a_credential_bearing_query_key_is_refused_by_name_never_by_value(source, named):
    text = HEADER + f"o,{source},csv,id,u,d,incremental,@daily,2024-01-01\n"
    found = problems(text)
    assert found == [
        "registry.csv:2: source: the URI query carries a secret; use an Airflow connection "
        f"instead ({named})"
    ]


@pytest.mark.parametrize(
    "source",
    ["s3://b/o.csv?versionId=3", "s3://b/o_{ds}.csv", "s/it;x=1_{ds}.csv", "s3://b/user@x/o.csv"],
)
def test_a_source_without_a_credential_passes(source):
    text = HEADER + f"o,{source},csv,id,u,d,incremental,@daily,2024-01-01\n"
    assert not [p for p in problems(text) if ": source:" in p]


def test_a_password_with_a_slash_written_unencoded_is_still_refused():
    text = HEADER + "o,s3://AKIA:top/secret@bucket/o.csv,csv,id,u,d,incremental,@daily,2024-01-01\n"
    found = problems(text)
    assert any("source: credentials must not be written in the URI" in p for p in found), found
    assert not any("top/secret" in p or "secret@" in p for p in found), found


def test_secret_never_printed():
    text = HEADER + "o,s3://AKIA:topsecret@bucket/o.csv,csv,id,u,d,incremental,@daily,2024-01-01\n"
    assert not any("topsecret" in p for p in problems(text))


def test_unknown_and_missing_header_columns_on_line_1():
    found = problems("dataset,source,colour,ingestion,start_date\n")
    assert "registry.csv:1: colour: unknown column; known: dataset, source" in found[0]
    assert "registry.csv:1: primary_key: required column missing from the header" in found


def test_duplicate_names_report_first_line():
    found = problems(HEADER + GOOD + "\n" + GOOD)
    assert found == ["registry.csv:4: dataset: duplicate dataset 'orders' (first on line 2)"]


def test_unclosed_quote_and_empty_file():
    assert problems(HEADER + 'orders,"s/o.csv,csv\n')[0].startswith("registry.csv:2: csv:")
    assert problems("") == ["registry.csv:1: header: file is empty: a header row is required"]


def test_header_only_is_an_empty_registry():
    reg = parse_registry(HEADER)
    assert reg.datasets == () and reg.problems == ()


def test_one_bad_row_keeps_the_others_and_lines_are_physical():
    text = (
        HEADER
        + GOOD
        + "# comment\n\n"
        + GOOD.replace("orders", "bad").replace("incremental", "sometimes")
        + GOOD.replace("orders", "third")
    )
    reg = parse_registry(text)
    assert [d.name for d in reg.datasets] == ["orders", "third"]
    assert [str(p) for p in reg.problems] == [
        "registry.csv:5: ingestion: 'sometimes' is not one of: full, incremental"
    ]
    assert reg.datasets[1].line == 6


def test_multiline_quoted_field_keeps_later_line_numbers():
    text = (
        HEADER.replace("start_date", "start_date,description")
        + GOOD.replace("\n", ',"two\nlines"\n')
        + "x,s/x.csv,csv,id,u,d,never,@daily,2024-01-01,\n"
    )
    assert problems(text) == ["registry.csv:4: ingestion: 'never' is not one of: full, incremental"]


def test_strict_mode_raises_with_every_problem(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text(HEADER + GOOD.replace("incremental", "x") + GOOD.replace("@daily", "@often"))
    with pytest.raises(RegistryError) as err:
        load_registry(path, strict=True)
    assert len(err.value.problems) == 2
    assert load_registry(path).datasets == ()


def test_jinja_and_shell_text_kept_literally():
    text = HEADER.replace("start_date", "start_date,description") + GOOD.replace(
        "\n", ",{{ conn.db.password }} $(rm -rf /) `id`\n"
    )
    (d,) = parse_registry(text).datasets
    assert d.description == "{{ conn.db.password }} $(rm -rf /) `id`"
