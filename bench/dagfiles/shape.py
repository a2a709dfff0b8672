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
WORKFLOW_STEP = ("workflow", "run")  # a workflow DAG's one group and task


def table_uri(lake: str, namespace: str, layer: str, table: str) -> str:
    """The lake URI a table is published as (the product's asset name and URI)."""
    return f"file://{lake.rstrip('/')}/{namespace}/{layer}/{table}"


def workflow_assets(lake: str, namespace: str, workflow: dict) -> tuple[list[dict], list[dict]]:
    """The assets a workflow DAG is scheduled on, as ``Asset`` keyword arguments: its inputs'
    tables (all must land a day), and the signals that one of them was rewritten."""
    tables = {
        (spec.get("layer", "cleaned"), spec["table"]): None for spec in workflow["inputs"].values()
    }
    own = table_uri(lake, namespace, "workflows", workflow["name"])
    landed = [
        {
            "name": table_uri(lake, namespace, layer, table),
            "uri": table_uri(lake, namespace, layer, table),
            "group": "pipelines",
            "extra": {"table": f"{namespace}.{layer}.{table}"},
        }
        for layer, table in tables
    ]
    rewritten = [
        {
            "name": f"{own}/_rewritten/{layer}.{table}",
            "uri": f"{own}/_rewritten/{layer}.{table}",
            "group": "pipelines",
            "extra": {
                "rewritten": f"{namespace}.{layer}.{table}",
                "rewrite_of": workflow["name"],
            },
        }
        for layer, table in tables
    ]
    return landed, rewritten


def noop() -> None:
    """The task body: nothing."""
