"""A throw-away project for one measurement: its include/, lake, Airflow home and environment.

The product finds everything through environment variables (``PIPELINES_HOME``,
``PIPELINES_LAKE``, ``PIPELINES_NAMESPACE``) and Airflow through ``AIRFLOW_HOME`` and
``AIRFLOW__CORE__*``; a :class:`Sandbox` sets all of them, and nothing is inherited from the
caller's own Airflow or pipelines settings. Children compile modules to bytecode once and reuse
it, as deployed processes do.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT_DAGS = REPO / "dags"
PROJECT_PLUGINS = REPO / "plugins"
NAMESPACE = "local"
# Not inherited from the caller: its Airflow and pipelines settings, and its bytecode settings
# (a session may set PYTHONDONTWRITEBYTECODE; deployed Python runs from cached bytecode, and
# compiling every module from source would double the cost of importing Airflow).
INHERITED_PREFIXES = (
    "AIRFLOW",
    "PIPELINES_",
    "_AIRFLOW",
    "PYTHONPATH",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPYCACHEPREFIX",
)


@dataclass(frozen=True)
class Sandbox:
    """Folders under ``root``: ``home/include`` (registry, sources), ``lake``, ``airflow``.

    Sandboxes under one parent folder share its ``pycache`` (the bytecode of every child).
    """

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def include(self) -> Path:
        return self.home / "include"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    def create(self) -> Sandbox:
        """Make the folders; returns self."""
        for folder in (self.include, self.lake, self.airflow_home):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def reset_lake(self) -> None:
        """Start the next run on an empty lake."""
        shutil.rmtree(self.lake, ignore_errors=True)
        self.lake.mkdir(parents=True)

    def env(
        self, *, dags_folder: Path = PROJECT_DAGS, python_path: Sequence[Path] = ()
    ) -> dict[str, str]:
        """The environment of a child measuring in this sandbox.

        :param dags_folder: what Airflow parses (the project's ``dags/`` unless a floor or peer)
        :param python_path: extra import roots, searched before the venv (e.g. a peer's site)
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_PREFIXES)}
        env.update(
            {
                "PYTHONPYCACHEPREFIX": str(self.root.parent / "pycache"),
                "PYTHONPATH": os.pathsep.join(
                    str(p) for p in (REPO, *python_path, PROJECT_PLUGINS)
                ),
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_PLUGINS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
                "PIPELINES_HOME": str(self.home),
                "PIPELINES_LAKE": str(self.lake),
                "PIPELINES_NAMESPACE": NAMESPACE,
            }
        )
        return env
