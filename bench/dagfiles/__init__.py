"""DAG files of the floor and the peer; copied into a temporary DAGs folder, never imported here."""
