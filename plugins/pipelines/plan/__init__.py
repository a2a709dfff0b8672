"""``pipelines plan``: what deploying the project to a namespace would do, from the config each
table recorded and the code hash each workflow run recorded (no Airflow)."""
