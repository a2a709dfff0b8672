"""Connection arguments of the e2e stack's SQLite metadata database, named by Airflow's
``[database] sql_alchemy_connect_args``: a process waits up to 60 s for a lock the scheduler or
the DAG processor holds, instead of failing after SQLite's default 5 s ("database is locked",
seen in ``airflow backfill create`` while the scheduler was busy)."""

CONNECT_ARGS = {"timeout": 60}
