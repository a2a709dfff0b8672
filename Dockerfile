# The Airflow image of a deployment: the pinned Airflow plus this package, same pins as CI.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.lock setup.cfg pyproject.toml README.md /opt/pipelines/
COPY --chown=airflow:root plugins /opt/pipelines/plugins
RUN pip install --no-cache-dir -r /opt/pipelines/requirements.lock \
 && pip install --no-cache-dir --no-deps -e /opt/pipelines
