"""The peer: an Airflow DAG file handing ``dags.yaml`` beside it to dag-factory."""

from pathlib import Path

from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), config_filepath=str(Path(__file__).with_name("dags.yaml")))
