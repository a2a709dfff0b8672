"""The DAG folder read the way a worker reads it before running a task: only one DAG is built.

A worker sets ``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` to the DAG it runs and executes the DAG file;
the factory then builds that DAG alone (:func:`pipelines.wiring.factory.build_dags`).
:func:`load` does the same without a ``DagBag``: it executes the folder's DAG files as Airflow's
Python importer does (the same file list and module names, DAGs taken from the module's globals
and from ``with DAG(...)`` blocks) and checks the DAG as bagging it would (``validate``, cycles,
cluster policies), so Airflow's DAG processing, bundles and metadata database stay out of a local
run.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import traceback
from pathlib import Path

from pipelines.exceptions import PipelinesError
from pipelines.runtime import environment

PARSING_ENV = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"  # what get_parsing_context().dag_id reads


def parsing_only(dag_id: str):
    """While inside, parsing the DAG folder builds only ``dag_id`` (as on a worker)."""
    return environment.variable(PARSING_ENV, dag_id)


def dags_folder() -> Path:
    """``[core] dags_folder``: what :func:`pipelines.runs.local.configure` points Airflow at."""
    from airflow.sdk.configuration import conf

    return Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or conf.get("core", "dags_folder"))


def load(dag_id: str):
    """The DAG ``dag_id``, built from the DAG folder with the parsing context set to it.

    :raises PipelinesError: a DAG file fails to execute, the DAG breaks a check or a cluster
        policy, or no file (or two) defines it
    """
    from airflow.utils.file import list_py_file_paths  # Airflow's own listing (.airflowignore)

    folder = dags_folder()
    found = {}
    with parsing_only(dag_id):
        for path in list_py_file_paths(folder):
            for dag in _dags_of(path):
                if dag.dag_id in found:
                    where = f"{found[dag.dag_id].fileloc} and {path}"
                    raise PipelinesError(f"DAG {dag.dag_id!r} is defined twice: {where}")
                found[dag.dag_id] = dag
    dag = found.get(dag_id)
    if dag is None:
        raise PipelinesError(f"no DAG {dag_id!r} in {folder}")
    _bag(dag)
    return dag


def _dags_of(path: str) -> list:
    """Execute one DAG file as a fresh module; the DAGs it defines (its globals and ``with``)."""
    from airflow.sdk import DAG
    from airflow.sdk.definitions._internal.contextmanager import DagContext
    from airflow.utils.file import get_unique_dag_module_name

    name = get_unique_dag_module_name(path)
    sys.modules.pop(name, None)
    DagContext.autoregistered_dags.clear()
    DagContext.current_autoregister_module_name = name
    loader = importlib.machinery.SourceFileLoader(name, path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except (KeyboardInterrupt, PipelinesError):  # ours already says what to fix
        sys.modules.pop(name, None)
        raise
    except Exception as exc:  # a DAG file's error: its place and message, no traceback
        sys.modules.pop(name, None)
        last = traceback.extract_tb(exc.__traceback__)[-1]
        raise PipelinesError(
            f"cannot load the DAG folder:\n{path}: {type(exc).__name__}: {exc} "
            f"({last.filename}:{last.lineno})"
        ) from None
    finally:
        DagContext.current_autoregister_module_name = None
    dags = {id(o): o for o in vars(module).values() if isinstance(o, DAG)}
    dags.update({id(dag): dag for dag, _ in DagContext.autoregistered_dags})
    DagContext.autoregistered_dags.clear()
    for dag in dags.values():
        dag.fileloc = path
    return list(dags.values())


def _bag(dag) -> None:
    """What bagging a DAG checks and applies: validation, no cycle, the cluster policies."""
    from airflow import settings

    try:
        dag.validate()
        dag.check_cycle()
        dag.resolve_template_files()
        settings.dag_policy(dag)
        for task in dag.tasks:
            settings.task_policy(task)
    except Exception as exc:  # as DagBag reports it: an import error of the DAG's file
        raise PipelinesError(
            f"cannot load the DAG folder:\n{dag.fileloc}: {type(exc).__name__}: {exc}"
        ) from None
