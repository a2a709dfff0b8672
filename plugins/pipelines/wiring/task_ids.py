"""Every task group and task id of the package's DAGs, in one place and without Airflow.

A dataset DAG has four *stages* (task groups, nouns) of one *step* each (task ids, verbs, the
names of :data:`pipelines.steps.DATASET_STEPS`): ``ingest.extract``, ``clean.merge``,
``check.check_keys``, ``aggregate.aggregate``. A workflow DAG runs ``workflow.run``; a cookbook's
parent DAG triggers each child with ``trigger_{child}``, then runs ``verify``; a namespace's
maintenance DAG runs ``optimize``, then ``vacuum``. The operators take
their ids from here, and so do the readers of a run's results (:mod:`pipelines.runs.outputs`) and
the local cookbook runner.
"""

from __future__ import annotations

from pipelines.steps import DATASET_STEPS

EXTRACT_STEP, MERGE_STEP, CHECK_STEP, AGGREGATE_STEP = DATASET_STEPS
STAGES = dict(zip(DATASET_STEPS, ("ingest", "clean", "check", "aggregate"), strict=True))
WORKFLOW_STAGE, WORKFLOW_STEP = "workflow", "run"
VERIFY = "verify"  # the task id of a cookbook's checks
TRIGGER = "trigger_{child}"  # the task id that triggers one child of a cookbook
TRIGGERS = r"trigger_.*"  # every trigger task (the local cookbook runner marks them done)
OPTIMIZE, VACUUM = "optimize", "vacuum"  # the maintenance DAG's tasks, in order


def task_id(group: str, step: str) -> str:
    """``{group}.{step}``: a step's task id inside its task group."""
    return f"{group}.{step}"


def dataset_task(step: str) -> str:
    """The task id of one of a dataset's steps (``merge`` -> ``clean.merge``)."""
    return task_id(STAGES[step], step)


def trigger(child: str) -> str:
    """The task id of the cookbook task that triggers ``child``."""
    return TRIGGER.format(child=child)


EXTRACT, MERGE, CHECK, AGGREGATE = map(dataset_task, DATASET_STEPS)
WORKFLOW = task_id(WORKFLOW_STAGE, WORKFLOW_STEP)
# the tasks whose return values are a run's results (the REST API's run-wait endpoint returns them)
RESULT_TASKS = (EXTRACT, MERGE, CHECK, AGGREGATE, WORKFLOW, VERIFY)
