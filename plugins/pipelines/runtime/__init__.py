"""Where this process stands: the PIPELINES_* environment and the namespace it resolves to, the
git branch, the Airflow DAG bundle a DAG file is parsed from, connections and redaction.

Only :mod:`.bundles` and :mod:`.secrets` touch Airflow, and only inside functions (connections and
bundles are Airflow's).
"""
