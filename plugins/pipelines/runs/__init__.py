"""Running a DAG here (the local runner, or ``dag.test()``) or on a real Airflow (REST), and what
a run produced (its outputs by plain name)."""
