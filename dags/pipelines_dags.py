"""Every Airflow DAG of this deployment's namespace, built from include/registry.csv.

Parsed from a DAG bundle (one per branch), the DAGs are that bundle's namespace's, built from the
bundle's own include/ (``dag_file`` tells the factory where it is parsed from).

(Airflow's safe-mode parser only opens files that mention both "airflow" and "dag".)
"""

from pipelines.wiring.factory import build_dags

globals().update(build_dags(dag_file=__file__))
