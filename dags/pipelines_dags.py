"""Every Airflow DAG of this deployment's namespace, built from include/registry.csv.

(Airflow's safe-mode parser only opens files that mention both "airflow" and "dag".)
"""

from pipelines.factory import build_dags

globals().update(build_dags())
