"""The DAG shape the floor and the peer copy from the product, and their task body.

Imported by the floor's DAG file and by the bench when it writes dag-factory's YAML, so both
describe the same DAGs; it imports nothing from Airflow.
"""

CRON = {"@daily": "0 0 * * *"}
STEPS = (
    ("ingest", "extract"),
    ("clean", "merge"),
    ("check", "check_keys"),
    ("aggregate", "aggregate"),
)


def noop() -> None:
    """The task body: nothing."""
