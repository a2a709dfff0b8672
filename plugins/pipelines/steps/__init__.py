"""The steps of a run as plain functions of (dataset, interval, lake), no Airflow: a dataset's
extract, merge, check_keys and aggregate (:mod:`.dataset` runs them in-process), a workflow's
run, and what they share (sources, schema drift, a workflow's output)."""

# A dataset's steps in the order they run: each is its function's name here, its task's id in a
# dataset DAG (inside its stage, see pipelines.wiring.task_ids) and its key in run_steps' results
DATASET_STEPS = ("extract", "merge", "check_keys", "aggregate")
