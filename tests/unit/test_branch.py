"""Branch detection (:mod:`pipelines.runtime.branch`) against real git repositories made in
``tmp_path``, and the namespace :func:`resolve_namespace` makes of it, end to end.

``git`` runs only to *make* the repositories; the code under test reads ``.git`` itself and must
never start a process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.exceptions import NamespaceError, PipelinesError
from pipelines.lake.lake import MARKER, Lake, claimed
from pipelines.runtime import bundles, environment
from pipelines.runtime.branch import git_branch, git_dir
from pipelines.runtime.environment import Resolved, normalise, resolve_namespace

if shutil.which("git") is None:  # pragma: no cover - every CI image we use has git
    pytest.skip("git is not installed", allow_module_level=True)


@pytest.fixture
def git(tmp_path):
    """``git(cwd, *args)``: run git with an isolated identity and config; its stdout."""
    home = tmp_path / "git-home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "LC_ALL": "C",
    }

    def run(cwd: Path, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    return run


@pytest.fixture
def make_repo(tmp_path, git):
    """``make_repo(name, commit=True)``: a repository on ``main`` (one commit unless told)."""

    def make(name: str = "repo", commit: bool = True) -> Path:
        repo = tmp_path / name
        repo.mkdir(parents=True)
        git(repo, "-c", "init.defaultBranch=main", "init", "-q")
        if commit:
            (repo / "README.md").write_text("hello\n")
            (repo / "include").mkdir()
            (repo / "include" / "registry.csv").write_text("name\n")
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", "first")
        return repo

    return make


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No pinned namespace, no bound bundle, a lake of this test's own."""
    monkeypatch.delenv("PIPELINES_NAMESPACE", raising=False)
    monkeypatch.delenv("PIPELINES_HOME", raising=False)
    monkeypatch.setenv("PIPELINES_LAKE", str(tmp_path / "lake"))
    saved = dict(bundles._BOUND)
    bundles._BOUND.clear()
    yield monkeypatch
    bundles._BOUND.clear()
    bundles._BOUND.update(saved)


def resolved_at(monkeypatch, home: Path) -> Resolved:
    monkeypatch.setenv("PIPELINES_HOME", str(home))
    return resolve_namespace()


def _outside_any_repo(path: Path) -> bool:
    return all(not (d / ".git").exists() for d in (path, *path.parents))


# -- git_branch --------------------------------------------------------------------------------


def test_normal_checkout_on_main(make_repo, git, env):
    repo = make_repo()
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git_branch(repo) == ("main", False)
    assert git_dir(repo) == repo / ".git"
    r = resolved_at(env, repo)
    assert r == Resolved("main", "git branch 'main'", "main")


def test_repository_without_commits_has_its_branch(make_repo, env):
    repo = make_repo(commit=False)
    assert git_branch(repo) == ("main", False)


def test_branch_with_slash_and_upper_case(make_repo, git, env):
    repo = make_repo()
    git(repo, "checkout", "-q", "-b", "Feature/Big-Change")
    assert git_branch(repo) == ("Feature/Big-Change", False)  # raw, as git spells it
    assert normalise("Feature/Big-Change") == "feature_big_change"
    r = resolved_at(env, repo)
    assert r.name == "feature_big_change"
    assert r.source == "git branch 'Feature/Big-Change'"
    assert r.branch == "Feature/Big-Change"


def test_detached_head_gives_the_short_commit(make_repo, git, env):
    repo = make_repo()
    (repo / "second.txt").write_text("2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    short = git(repo, "rev-parse", "--short=7", "HEAD")
    assert len(short) == 7
    assert git_branch(repo) == (short, True)
    r = resolved_at(env, repo)
    assert r == Resolved(short, f"git commit {short} (detached HEAD)", None)


def test_worktree_has_its_own_branch(make_repo, git, tmp_path, env):
    repo = make_repo()
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "Topic/Worktree", str(wt))
    assert (wt / ".git").is_file()  # "gitdir: .../repo/.git/worktrees/wt"
    assert git(wt, "symbolic-ref", "--short", "HEAD") == "Topic/Worktree"
    assert git_branch(wt) == ("Topic/Worktree", False)
    assert git_branch(repo) == ("main", False)  # the main checkout is unaffected
    assert resolved_at(env, wt) == Resolved(
        "topic_worktree", "git branch 'Topic/Worktree'", "Topic/Worktree"
    )
    assert resolved_at(env, repo).name == "main"


def test_detached_worktree(make_repo, git, tmp_path, env):
    repo = make_repo()
    wt = tmp_path / "wt-detached"
    git(repo, "worktree", "add", "-q", "--detach", str(wt))
    short = git(wt, "rev-parse", "--short=7", "HEAD")
    assert git_branch(wt) == (short, True)
    assert git_branch(repo) == ("main", False)


def test_project_home_in_a_subfolder(make_repo, git, env):
    repo = make_repo()
    project = repo / "projects" / "pipelines"
    (project / "include").mkdir(parents=True)
    git(repo, "checkout", "-q", "-b", "team/sub")
    assert git_branch(project) == ("team/sub", False)
    assert git_dir(project) == repo / ".git"
    assert resolved_at(env, project) == Resolved("team_sub", "git branch 'team/sub'", "team/sub")


def test_git_file_with_relative_gitdir(make_repo, git, tmp_path, env):
    repo = make_repo()
    git(repo, "checkout", "-q", "-b", "rel/gitdir")
    store = tmp_path / "store"
    store.mkdir()
    (repo / ".git").rename(store / "real.git")
    (repo / ".git").write_text("gitdir: ../store/real.git\n")
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "rel/gitdir"  # git agrees
    assert git_dir(repo) == (store / "real.git").resolve()
    assert git_branch(repo) == ("rel/gitdir", False)
    # from a subfolder, the path is relative to the folder holding .git, not to the start
    sub = repo / "a" / "b"
    sub.mkdir(parents=True)
    assert git_branch(sub) == ("rel/gitdir", False)
    assert resolved_at(env, sub).name == "rel_gitdir"


def test_submodule_has_its_own_branch(make_repo, git, env):
    lib = make_repo("lib")
    git(lib, "branch", "-q", "-m", "lib-main")
    outer = make_repo("outer")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "sub")
    sub = outer / "sub"
    assert (sub / ".git").read_text().startswith("gitdir: ../.git/modules/sub")
    expected = git(sub, "symbolic-ref", "--short", "HEAD")
    assert git_branch(sub) == (expected, False)
    assert git_branch(outer) == ("main", False)


def test_no_repository_is_local(tmp_path, env):
    home = tmp_path / "plain"
    (home / "include").mkdir(parents=True)
    if not _outside_any_repo(home):
        pytest.skip("the temp folder lies inside a git repository")
    assert git_dir(home) is None
    assert git_branch(home) is None
    assert resolved_at(env, home) == Resolved("local", "default")


def test_a_git_file_that_is_not_a_gitdir_pointer_is_no_repository(tmp_path):
    (tmp_path / ".git").write_text("not a pointer\n")
    assert git_branch(tmp_path) is None


# -- resolve_namespace ------------------------------------------------------------------------


def test_pipelines_namespace_wins_over_git(make_repo, git, env):
    repo = make_repo()
    git(repo, "checkout", "-q", "-b", "Feature/Big-Change")
    env.setenv("PIPELINES_NAMESPACE", "pinned_1")
    assert resolved_at(env, repo) == Resolved("pinned_1", "PIPELINES_NAMESPACE", None)


@pytest.mark.parametrize("value", ["Feature/X", "UPPER", "has-dash", "_lead", "a" * 41, "x y"])
def test_invalid_pipelines_namespace_is_refused(make_repo, env, value):
    repo = make_repo()
    env.setenv("PIPELINES_NAMESPACE", value)
    with pytest.raises(PipelinesError, match="PIPELINES_NAMESPACE"):
        resolved_at(env, repo)


def test_branch_detection_spawns_no_process(make_repo, git, tmp_path, env):
    repo = make_repo()
    git(repo, "checkout", "-q", "-b", "Feature/Big-Change")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(wt))
    short = git(wt, "rev-parse", "--short=7", "HEAD")

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args!r}")

    env.setattr(subprocess, "Popen", refuse)
    env.setattr(os, "system", refuse)
    for name in ("posix_spawn", "posix_spawnp", "fork", "execv", "execve"):
        if hasattr(os, name):
            env.setattr(os, name, refuse)
    assert git_branch(repo) == ("Feature/Big-Change", False)
    assert git_branch(wt) == (short, True)
    assert resolved_at(env, repo).name == "feature_big_change"
    assert resolved_at(env, wt).name == short


# -- two branches, one normalised name ----------------------------------------------------------


def _lake_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_two_branches_with_one_name_cannot_share_the_lake(make_repo, git, tmp_path, env):
    repo = make_repo()
    env.setenv("PIPELINES_HOME", str(repo))
    root = tmp_path / "lake"

    git(repo, "checkout", "-q", "-b", "Feature/X")
    first = Lake.from_env()
    assert (first.namespace, first.branch) == ("feature_x", "Feature/X")
    first.storage.write(f"{first.prefix}/raw/orders/part-0.bin", b"from Feature/X")
    assert claimed(first.storage, first.prefix)["branch"] == "Feature/X"
    assert (root / "feature_x" / MARKER).is_file()
    before = _lake_files(root)

    git(repo, "checkout", "-q", "-b", "feature-x")
    second = Lake.from_env()
    assert (second.namespace, second.branch) == ("feature_x", "feature-x")
    with pytest.raises(NamespaceError) as err:
        second.storage.write(f"{second.prefix}/raw/orders/part-1.bin", b"from feature-x")
    assert "'Feature/X'" in str(err.value) and "'feature-x'" in str(err.value)
    assert _lake_files(root) == before  # the refused write left nothing behind

    # the same, built the way Lake.from_env builds it
    again = Lake(environment.lake_root(), "feature_x", branch="feature-x")
    with pytest.raises(NamespaceError, match="feature-x"):
        again.storage.write(f"{again.prefix}/x.bin", b"x")
    assert _lake_files(root) == before

    # the branch that claimed the prefix goes on writing
    git(repo, "checkout", "-q", "Feature/X")
    owner = Lake.from_env()
    owner.storage.write(f"{owner.prefix}/raw/orders/part-2.bin", b"again")
    assert (root / "feature_x" / "raw" / "orders" / "part-2.bin").read_bytes() == b"again"


def test_a_refused_branch_stays_refused_on_the_same_lake(tmp_path):
    root = str(tmp_path / "lake")
    Lake(root, "feature_x", branch="Feature/X").storage.write(f"{root}/feature_x/a.bin", b"a")
    other = Lake(root, "feature_x", branch="feature-x")
    for _ in range(2):  # a refused claim is not used up: the next write is refused too
        with pytest.raises(NamespaceError):
            other.storage.write(f"{root}/feature_x/b.bin", b"b")
        with pytest.raises(NamespaceError):
            other.storage.delete([f"{root}/feature_x/a.bin"])
    assert sorted(p.name for p in (tmp_path / "lake" / "feature_x").iterdir()) == [
        MARKER,
        "a.bin",
    ]
