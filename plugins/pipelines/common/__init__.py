"""The ground: intervals and partition keys, windows, pure frame functions (no I/O, no Airflow).

Every other layer may import it; it imports nothing of the package but ``pipelines.exceptions``.
"""
