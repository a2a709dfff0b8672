"""What a workflow's output depends on besides its inputs: its code (the module's source, the
function's name and the params), as a hash each output records and ``status`` and ``plan``
compare. Read from the file, never imported (no user code runs to ask), and light to import:
``status`` asks it of every workflow.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipelines.project.workflows import WorkflowSpec
from pipelines.runtime.environment import include_dir

FOLDER = "workflows"  # include/workflows/: the users' modules


def module_file(spec: WorkflowSpec, include: Path | None = None) -> Path | None:
    """The file of the workflow's module in ``include/workflows/`` (None: not there)."""
    base = (include or include_dir()) / FOLDER / Path(*spec.module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def code_hash(spec: WorkflowSpec, include: Path | None = None) -> str:
    """What a workflow's output depends on besides its inputs: its module's source, the
    function's name and the params, hashed (read from the file, never imported: ``status`` and
    ``plan`` ask it too). Only the module itself is hashed, not the modules it imports."""
    digest = hashlib.sha256(spec.function.encode())
    path = module_file(spec, include)
    digest.update(path.read_bytes() if path is not None else b"")
    digest.update(json.dumps(dict(spec.params), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]
