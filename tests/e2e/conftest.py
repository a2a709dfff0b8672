"""The e2e tests' PostgreSQL server (tests/e2e/postgres.py): started by the first AirflowStack,
stopped once the session's tests are done."""

from __future__ import annotations

import pytest

from tests.e2e import postgres


@pytest.fixture(scope="session", autouse=True)
def _postgres_server():
    yield
    postgres.stop_server()
