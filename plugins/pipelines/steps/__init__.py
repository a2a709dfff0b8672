"""The steps of a run as plain functions of (entry, interval, lake), no Airflow: a dataset's
extract, merge, check_keys and aggregate (:mod:`.dataset` runs them in-process), a workflow's
run, and what they share (sources, schema drift, a workflow's output)."""
