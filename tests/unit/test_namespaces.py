"""Namespace names (:func:`normalise`), kinds and settings (``include/namespaces.yaml``) and the
DAG bundle a DAG file is parsed from (:func:`bind_dag_file`, :func:`check_bundles`).

No git process runs here: a branch is a hand-written ``.git/HEAD``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipelines.exceptions import ConfigError, NamespaceError
from pipelines.project.namespaces import (
    DEFAULT_RULES,
    NAMESPACES,
    NamespaceKind,
    Rules,
    load_rules,
    namespace_spec,
)
from pipelines.runtime import branch, environment
from pipelines.runtime import bundles as bundles_module
from pipelines.runtime.bundles import (
    GIT_BUNDLE,
    Bundle,
    bind_dag_file,
    check_bundles,
    configured_bundles,
)
from pipelines.runtime.bundles import storage_root as bundle_storage_root
from pipelines.runtime.environment import normalise, project_home, resolve_namespace

SERVING, MASTER, RESEARCH = NamespaceKind.SERVING, NamespaceKind.MASTER, NamespaceKind.RESEARCH


@pytest.fixture
def env(monkeypatch):
    """No pinned namespace, home or schedules switch, and no bound bundle before or after."""
    for name in ("PIPELINES_NAMESPACE", "PIPELINES_HOME", "PIPELINES_SCHEDULES"):
        monkeypatch.delenv(name, raising=False)
    saved = dict(bundles_module._BOUND)
    bundles_module._BOUND.clear()
    yield monkeypatch
    bundles_module._BOUND.clear()
    bundles_module._BOUND.update(saved)


def project(tmp_path: Path, yaml_text: str | None = None, branch: str | None = None) -> Path:
    """A project home (``include/``, optionally namespaces.yaml and a checkout on ``branch``)."""
    home = tmp_path / "home"
    (home / "include").mkdir(parents=True, exist_ok=True)
    if yaml_text is not None:
        (home / "include" / NAMESPACES).write_text(textwrap.dedent(yaml_text))
    if branch is not None:
        (home / ".git").mkdir(exist_ok=True)
        (home / ".git" / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
    return home


def spec_at(env, home: Path, name: str | None = None):
    env.setenv("PIPELINES_HOME", str(home))
    return namespace_spec(home / "include", name)


# -- normalise ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("main", "main"),
        ("Feature/Big-Change", "feature_big_change"),
        ("feature/x", "feature_x"),
        ("release-2024.1", "release_2024_1"),
        ("v1.2.3", "v1_2_3"),
        ("UPPER", "upper"),
        ("a//b..c--d", "a_b_c_d"),
        ("  --/Feature/X/--  ", "feature_x"),
        ("_lead_and_trail_", "lead_and_trail"),
        ("2024", "2024"),
        ("a" * 45, "a" * 40),
        ("x" * 39 + "/yz", "x" * 39),  # cut at 40, then no trailing underscore
        ("ÄÖü-straße", "stra_e"),
    ],
)
def test_normalise(value, expected):
    name = normalise(value)
    assert name == expected
    assert branch.NAMESPACE_RE.match(name)
    assert len(name) <= branch.MAX_NAMESPACE


@pytest.mark.parametrize("value", ["", "   ", "///", "-._-", "ÄÖÜ"])
def test_normalise_refuses_a_name_with_no_letter_or_digit(value):
    with pytest.raises(NamespaceError, match="no letter or digit"):
        normalise(value)


# -- DEFAULT_RULES ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("main", MASTER),
        ("master", MASTER),
        ("prod", SERVING),
        ("production", SERVING),
        ("serving", SERVING),
        ("release-2024.1", SERVING),
        ("release_2024_1", SERVING),
        ("local", SERVING),
        ("feature_x", RESEARCH),
        ("mainline", RESEARCH),
        ("prod2", RESEARCH),
        ("abc1234", RESEARCH),
    ],
)
def test_default_rules(name, kind):
    assert Rules().rules == DEFAULT_RULES
    assert Rules().kind_of(name) is kind


def test_default_rules_match_the_branch_as_git_spells_it(tmp_path, env):
    spec = spec_at(env, project(tmp_path, branch="Release-2024.1"))
    assert (spec.name, spec.branch, spec.kind) == ("release_2024_1", "Release-2024.1", SERVING)
    assert spec.source == "git branch 'Release-2024.1'"


def test_without_namespaces_yaml_local_is_serving(tmp_path, env):
    home = project(tmp_path)
    if any((d / ".git").exists() for d in home.parents):
        pytest.skip("the temp folder lies inside a git repository")
    spec = spec_at(env, home)
    assert (spec.name, spec.kind, spec.source) == ("local", SERVING, "default")
    assert load_rules(home / "include") == Rules()


def test_a_given_name_overrides_the_resolved_one(tmp_path, env):
    spec = spec_at(env, project(tmp_path, branch="main"), name="prod")
    assert (spec.name, spec.kind, spec.source, spec.branch) == ("prod", SERVING, "given", None)
    same = spec_at(env, project(tmp_path, branch="main"), name="main")
    assert (same.source, same.branch) == ("git branch 'main'", "main")


# -- include/namespaces.yaml ---------------------------------------------------------------------

CUSTOM = """\
    kinds:
      - match: ["exp/*"]
        kind: research
      - match: [main, "stable*"]
        kind: master
      - match: prod
        kind: serving
    master:
      schedule: "@daily"
      date: 2024-01-02
      cookbook: smoke
      pool: "{namespace}_pool"
    research:
      upstream: prod
      pool: "{namespace}_pool"
"""


def test_custom_rules_and_settings(tmp_path, env):
    home = project(tmp_path, CUSTOM, branch="exp/Try-1")
    spec = spec_at(env, home)
    assert (spec.name, spec.branch, spec.kind) == ("exp_try_1", "exp/Try-1", RESEARCH)
    assert spec.upstream == "prod"
    assert spec.pool == "exp_try_1_pool"
    assert spec.e2e is None
    assert not spec.schedules

    master = spec_at(env, home, name="stable_2")
    assert master.kind is MASTER
    assert master.e2e == ("smoke", "0 0 * * *", "2024-01-02")  # a preset is kept as cron
    assert master.pool == "stable_2_pool"
    assert master.upstream is None

    serving = spec_at(env, home, name="prod")
    assert serving.kind is SERVING
    assert serving.pool is None  # no serving settings: default_pool
    assert serving.upstream is None

    # the rules replace the defaults: a name matching none of them is research
    assert spec_at(env, home, name="production").kind is RESEARCH
    assert spec_at(env, home, name="local").kind is RESEARCH


def test_a_research_namespace_reads_serving_by_default(tmp_path, env):
    home = project(tmp_path)
    assert spec_at(env, home, name="feature_x").upstream == "serving"
    assert spec_at(env, home, name="serving").upstream is None  # serving reads itself


def test_upstream_null_gives_no_upstream(tmp_path, env):
    home = project(tmp_path, "research:\n  upstream: null\n")
    spec = spec_at(env, home, name="feature_x")
    assert spec.kind is RESEARCH
    assert spec.settings.upstream is None
    assert spec.upstream is None


def test_an_upstream_equal_to_the_namespace_is_none(tmp_path, env):
    home = project(tmp_path, "research:\n  upstream: feature_x\n")
    assert spec_at(env, home, name="feature_x").upstream is None
    assert spec_at(env, home, name="feature_y").upstream == "feature_x"


def test_an_edited_file_is_read_again(tmp_path, env):
    home = project(tmp_path, "research:\n  upstream: prod\n")
    assert spec_at(env, home, name="feature_x").upstream == "prod"
    (home / "include" / NAMESPACES).write_text("research:\n  upstream: production\n")
    assert spec_at(env, home, name="feature_x").upstream == "production"


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("servings:\n  pool: x\n", "servings", "unknown key"),
        ("kinds:\n  - match: x\n    kind: staging\n", "kinds entry 1", "staging"),
        ("kinds:\n  - match: [a, 3]\n    kind: serving\n", "kinds entry 1", "pattern"),
        ("kinds:\n  - {match: a, kind: serving, pool: p}\n", "kinds entry 1", "match"),
        ("master:\n  upstream: prod\n", "master.upstream", "not a master setting"),
        ("serving:\n  cookbook: e2e_test\n", "serving.cookbook", "not a serving setting"),
        ("research:\n  schedule: '@daily'\n", "research.schedule", "not a research setting"),
        ("master:\n  date: 2024/01/02\n", "master.date", "YYYY-MM-DD"),
        ("master:\n  date: next tuesday\n", "master.date", "YYYY-MM-DD"),
        ("research:\n  upstream: Not-A-Name\n", "research.upstream", "not a namespace name"),
        ("master:\n  schedule: ''\n", "master.schedule", "must be text"),
        ("master:\n  schedule: '@sometimes'\n", "master.schedule", "not a preset"),
        ("master:\n  schedule: every hour\n", "master.schedule", "cron"),
        ("research: [a, b]\n", "research", "mapping"),
        ("- a\n- b\n", "file", "mapping"),
        ("master:\n  schedule: '@daily'\nresearch:\n  pool: x: y\n", "yaml", "line 4"),
        ("research:\n  upstream: [prod\n", "yaml", "cannot parse"),
    ],
)
def test_a_bad_file_gives_one_config_error(tmp_path, env, text, column, words):
    home = project(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        spec_at(env, home, name="feature_x")
    (problem,) = err.value.problems
    assert problem.file == NAMESPACES
    assert problem.column == column
    assert words in problem.message
    assert str(err.value).startswith(f"{NAMESPACES}: {column}: ")


def test_an_impossible_unquoted_date_gives_a_config_error(tmp_path, env):
    home = project(tmp_path, "master:\n  date: 2024-13-01\n")
    with pytest.raises(ConfigError, match="namespaces.yaml"):
        spec_at(env, home, name="main")


def test_an_impossible_quoted_date_gives_a_config_error(tmp_path, env):
    home = project(tmp_path, "master:\n  date: '2024-02-30'\n")
    with pytest.raises(ConfigError, match="master.date") as err:
        spec_at(env, home, name="main")
    (problem,) = err.value.problems  # in the form: it is the day that does not exist
    assert problem.message == "'2024-02-30' is not a real date: February 2024 has days 1 to 29"


# -- maintenance ---------------------------------------------------------------------------------


def test_maintenance_is_a_setting_of_every_kind(tmp_path, env):
    home = project(
        tmp_path,
        """\
        serving: {maintenance: "0 3 * * 0", retention_hours: 24}
        master: {maintenance: "@weekly"}
        research: {maintenance: null, retention_hours: 2.5}
        """,
    )
    assert spec_at(env, home, name="prod").maintenance == ("0 3 * * 0", 24.0)
    assert spec_at(env, home, name="main").maintenance == ("0 0 * * 0", 168.0)  # kept as cron
    research = spec_at(env, home, name="feature_x")
    assert research.maintenance is None  # null: off, as when absent
    assert research.settings.retention_hours == 2.5  # what `pipelines vacuum` keeps there
    assert spec_at(env, project(tmp_path, "serving: {}\n"), name="prod").maintenance is None


FLOOR = (
    "is under 1: a commit in flight writes its files before it commits them, and a vacuum that "
    "young could delete them"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "serving:\n  maintenance: every sunday\n",
            "serving.maintenance: 'every sunday' is not a valid 5-field cron expression or preset",
        ),
        (
            "research:\n  maintenance: '@fortnightly'\n",
            "research.maintenance: '@fortnightly' is not a preset; use one of: @hourly, @daily, "
            "@weekly, @monthly, @quarterly, @yearly, @annually or a cron expression",
        ),
        ("master:\n  maintenance: 3\n", "master.maintenance: must be text"),
        ("serving:\n  retention_hours: 0.5\n", f"serving.retention_hours: 0.5 {FLOOR}"),
        ("serving:\n  retention_hours: 0\n", f"serving.retention_hours: 0 {FLOOR}"),
        ("serving:\n  retention_hours: -24\n", f"serving.retention_hours: -24 {FLOOR}"),
        (
            "serving:\n  retention_hours: a week\n",
            "serving.retention_hours: 'a week' is not a number of hours",
        ),
        (
            "serving:\n  retention_hours: '168'\n",
            "serving.retention_hours: '168' is not a number of hours",
        ),
        (
            "serving:\n  retention_hours: true\n",
            "serving.retention_hours: True is not a number of hours",
        ),
        (
            "serving:\n  retention_hours: .inf\n",
            "serving.retention_hours: inf is not a number of hours",
        ),
        (
            "serving:\n  retention_hours: null\n",
            "serving.retention_hours: None is not a number of hours",
        ),
    ],
)
def test_maintenance_settings_are_checked(tmp_path, env, text, message):
    with pytest.raises(ConfigError) as err:
        spec_at(env, project(tmp_path, text), name="prod")
    assert str(err.value) == f"{NAMESPACES}: {message}"


# -- schedules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "on"), [("prod", True), ("main", False), ("feature_x", False)])
def test_only_serving_schedules(tmp_path, env, name, on):
    home = project(tmp_path)
    assert spec_at(env, home, name=name).schedules is on
    env.setenv("PIPELINES_SCHEDULES", "off")
    assert spec_at(env, home, name=name).schedules is False
    env.setenv("PIPELINES_SCHEDULES", "ON")
    assert spec_at(env, home, name=name).schedules is on


# -- DAG bundles ---------------------------------------------------------------------------------


@pytest.fixture
def bundles(tmp_path, env):
    """``bundles(*entries)``: a fake bundle storage folder and ``dag_bundle_config_list`` of
    ``(name, tracking_ref)`` git bundles; returns the storage root. ``_BOUND`` is cleaned after
    (by ``env``)."""
    root = tmp_path / "bundles"
    root.mkdir()
    env.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(root))

    def configure(*entries: tuple[str, str | None]) -> Path:
        config = [
            {"name": name, "classpath": GIT_BUNDLE, "kwargs": {"tracking_ref": ref}}
            for name, ref in entries
        ]
        env.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(config))
        return root

    configure()
    return configure


def checkout(root: Path, *parts: str) -> Path:
    """A bundle checkout ``root/parts...`` with dags/pipelines_dags.py and include/ beside it;
    the DAG file."""
    repo = root.joinpath(*parts)
    (repo / "include").mkdir(parents=True)
    (repo / "dags").mkdir()
    dag_file = repo / "dags" / "pipelines_dags.py"
    dag_file.write_text("# DAGs\n")
    return dag_file


def test_airflow_conf_sees_variables_set_after_import(tmp_path, bundles, env):
    from airflow.sdk.configuration import conf

    root = bundles(("serving_b", "prod"))
    assert conf.get("dag_processor", "dag_bundle_storage_path") == str(root)
    assert bundle_storage_root() == root
    assert configured_bundles() == [Bundle("serving_b", "prod")]
    env.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "elsewhere"))
    bundles(("other", "main"))
    assert bundle_storage_root() == tmp_path / "elsewhere"
    assert configured_bundles() == [Bundle("other", "main")]


def test_the_dag_file_of_a_bundle_gives_its_branch_and_checkout(bundles, env):
    root = bundles(("serving_b", "prod"), ("research_b", "Feature/Big-Change"))
    dag_file = checkout(root, "serving_b", "tracking_repo")
    bundle = bind_dag_file(dag_file)
    assert bundle == Bundle("serving_b", "prod")
    assert project_home() == (root / "serving_b" / "tracking_repo").resolve()
    assert environment.include_dir() == project_home() / "include"
    r = resolve_namespace()
    assert (r.name, r.source, r.branch) == ("prod", "DAG bundle 'serving_b'", "prod")
    spec = namespace_spec(environment.include_dir())
    assert (spec.name, spec.kind) == ("prod", SERVING)
    assert spec.schedules


def test_a_task_runs_from_a_version_of_the_bundle(bundles, env):
    root = bundles(("research_b", "Feature/Big-Change"))
    dag_file = checkout(root, "research_b", "versions", "0123abc")
    assert bind_dag_file(dag_file) == Bundle("research_b", "Feature/Big-Change")
    assert project_home() == (root / "research_b" / "versions" / "0123abc").resolve()
    spec = namespace_spec(environment.include_dir())
    assert (spec.name, spec.branch, spec.kind) == (
        "feature_big_change",
        "Feature/Big-Change",
        RESEARCH,
    )


def test_pipelines_variables_win_over_the_bundle(tmp_path, bundles, env):
    root = bundles(("serving_b", "prod"))
    bind_dag_file(checkout(root, "serving_b", "tracking_repo"))
    env.setenv("PIPELINES_NAMESPACE", "pinned")
    env.setenv("PIPELINES_HOME", str(tmp_path))
    assert resolve_namespace().name == "pinned"
    assert project_home() == tmp_path.resolve()


def test_a_bundle_missing_from_the_config_list_is_named_after_itself(bundles, env):
    root = bundles(("serving_b", "prod"))
    bundle = bind_dag_file(checkout(root, "Adhoc-Bundle", "tracking_repo"))
    assert bundle == Bundle("Adhoc-Bundle")
    assert resolve_namespace().name == "adhoc_bundle"


def test_a_dag_file_outside_the_bundle_storage_binds_nothing(tmp_path, bundles, env):
    root = bundles(("serving_b", "prod"))
    bind_dag_file(checkout(root, "serving_b", "tracking_repo"))
    assert bundles_module._BOUND
    assert bind_dag_file(checkout(tmp_path / "elsewhere")) is None
    assert bundles_module._BOUND == {}  # the earlier binding does not linger
    assert bind_dag_file(root / "loose.py") is None


def test_check_bundles_refuses_two_branches_with_one_name(bundles, env):
    with pytest.raises(NamespaceError) as err:
        check_bundles([Bundle("a", "Feature/X"), Bundle("b", "feature-x")])
    for words in ("'a'", "'b'", "'Feature/X'", "'feature-x'", "'feature_x'"):
        assert words in str(err.value)

    root = bundles(("a", "Feature/X"), ("b", "feature-x"))
    with pytest.raises(NamespaceError, match="feature_x"):
        bind_dag_file(checkout(root, "a", "tracking_repo"))
    assert bundles_module._BOUND == {}


def test_check_bundles_refuses_one_branch_tracked_twice(bundles, env):
    """Two bundles on one branch would build the same DAG ids; the last parse would win."""
    check_bundles([Bundle("a", "Feature/X"), Bundle("c", "main")])
    check_bundles([Bundle("x", "///")])  # a name that normalises to nothing is skipped
    with pytest.raises(NamespaceError, match="'a' .*'b' .*both give namespace 'feature_x'"):
        check_bundles([Bundle("a", "Feature/X"), Bundle("b", "Feature/X")])
    root = bundles(("a", "Feature/X"), ("b", "Feature/X"), ("c", "main"))
    with pytest.raises(NamespaceError):
        bind_dag_file(checkout(root, "b", "tracking_repo"))
    assert bind_dag_file(checkout(root, "c", "tracking_repo")) == Bundle("c", "main")
    assert resolve_namespace().name == "main"


def test_a_full_ref_names_the_same_namespace_as_its_branch():
    assert Bundle("a", "refs/heads/Feature/X").namespace == normalise("Feature/X") == "feature_x"


def test_a_bundle_needs_an_include_folder_and_a_shared_lake(bundles, env, monkeypatch, tmp_path):
    root = bundles(("a", "main"))
    bare = root / "a" / "tracking_repo" / "dags"
    bare.mkdir(parents=True)
    (bare / "pipelines_dags.py").write_text("")
    with pytest.raises(NamespaceError, match="no include/ folder above"):
        bind_dag_file(bare / "pipelines_dags.py")
    monkeypatch.delenv("PIPELINES_LAKE")
    with pytest.raises(NamespaceError, match="set PIPELINES_LAKE"):
        bind_dag_file(checkout(root, "a", "versions", "abc123"))
    assert bundles_module._BOUND == {}


def test_a_local_bundle_with_a_path_is_its_folder(env, monkeypatch, tmp_path):
    folder = tmp_path / "team_a"
    (folder / "dags").mkdir(parents=True)
    (folder / "include").mkdir()
    (folder / "dags" / "pipelines_dags.py").write_text("")
    config = [
        {
            "name": "team_a",
            "classpath": bundles_module.LOCAL_BUNDLE,
            "kwargs": {"path": str(folder)},
        }
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(config))
    assert bind_dag_file(folder / "dags" / "pipelines_dags.py") == Bundle(
        "team_a", None, str(folder)
    )
    assert resolve_namespace().name == "team_a" and project_home() == folder
