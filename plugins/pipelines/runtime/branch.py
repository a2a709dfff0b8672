"""The git branch a project folder is checked out on, read from ``.git`` without running git, and
how a branch's name becomes a namespace's (:func:`normalise`).

Handles a normal checkout (``.git/HEAD`` holds ``ref: refs/heads/NAME``), a detached HEAD (the
short commit), a worktree or submodule (``.git`` is a file ``gitdir: PATH``) and a project in a
subfolder of the repository (the nearest ``.git`` above it).
"""

from __future__ import annotations

import re
from pathlib import Path

NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
MAX_NAMESPACE = 40
SHORT = 7  # characters of a detached HEAD's commit, as ``git rev-parse --short`` gives by default


def git_dir(start: Path) -> Path | None:
    """The git directory of the repository holding ``start`` (None: not in a repository)."""
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            text = dot.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text.removeprefix("gitdir:").strip())
                return target if target.is_absolute() else (folder / target).resolve()
            return None
    return None


def git_branch(start: Path) -> tuple[str, bool] | None:
    """``(name, detached)``: the branch checked out in the repository holding ``start``, or the
    short commit of a detached HEAD (``detached`` True); None outside a repository."""
    found = git_dir(Path(start).resolve())
    if found is None:
        return None
    try:
        head = (found / "HEAD").read_text(errors="replace").strip()
    except OSError:
        return None
    if head.startswith("ref:"):
        ref = head.removeprefix("ref:").strip()
        return ref.removeprefix("refs/heads/"), False
    if len(head) >= SHORT and all(c in "0123456789abcdef" for c in head.lower()):
        return head[:SHORT].lower(), True
    return None


def normalise(value: str) -> str:
    """A branch or bundle name as a namespace: lower case, ``[a-z0-9_]``, at most 40 characters
    (``Feature/Big-Change`` -> ``feature_big_change``; a full ref loses its ``refs/heads/``).

    :raises NamespaceError: nothing is left to name a namespace with
    """
    from pipelines.exceptions import NamespaceError

    name = value.strip().removeprefix("refs/heads/").lower()
    name = re.sub(r"[^a-z0-9]+", "_", name).strip("_")[:MAX_NAMESPACE].rstrip("_")
    if not name:
        raise NamespaceError(f"{value!r} has no letter or digit to make a namespace name of")
    return name
