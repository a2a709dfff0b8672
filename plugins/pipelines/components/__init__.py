"""Shared ingredients of every DAG: environment, lake access, connections and operators."""
