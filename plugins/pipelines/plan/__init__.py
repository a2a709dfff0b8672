"""``pipelines plan``: what deploying the project to a namespace would do, from the config each
table recorded (no Airflow)."""
