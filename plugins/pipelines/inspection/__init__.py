"""Read-only questions about the lake: ``pipelines.read``, ``status`` and its page, the diff of two
namespaces, source headers against the config, what a cookbook checks (no Airflow, no writes)."""
