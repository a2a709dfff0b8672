"""The project's config files turned into validated specs: registry.csv (datasets),
aggregates.yaml, workflows.yaml, cookbooks.yaml, namespaces.yaml; the config a table records; which
logical dates a run may be for. No Airflow, no data read."""
