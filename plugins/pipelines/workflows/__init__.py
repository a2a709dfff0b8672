"""Task groups: reusable, atomic pieces of work, each built by one function from its arguments.

``ingest``, ``clean``, ``check`` and ``aggregate`` take the dataset, namespace and lake and return
a TaskGroup whose tasks declare the layer tables they write as Airflow Assets.
"""
