"""The exception that ends a failed task (:func:`pipelines.wiring.operators.fail_clearly`): Airflow
logs it, so it says no credential, retried or not."""

from __future__ import annotations

import logging

import pytest
from airflow.sdk.exceptions import AirflowFailException

from pipelines.exceptions import LakeError, QualityCheckFailed, SourceError
from pipelines.wiring import operators
from pipelines.wiring.operators import fail_clearly

SECRET = "Kx7Qz9sig"
URL = f"https://bucket.s3.amazonaws.com/orders.csv?X-Amz-Signature={SECRET}&x=1"


class Task:
    dag_id, task_id, log = "serving__orders", "extract", logging.getLogger("test_task_errors")


class TwoPart(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(f"{code}: {text}")


@pytest.fixture(autouse=True)
def _no_failures_left():
    yield
    operators.FAILURES.clear()


@pytest.mark.parametrize(
    "exc", [OSError(f"GET {URL} failed"), LakeError(f"cannot read {URL}")], ids=repr
)
def test_a_retried_error_ends_the_task_as_its_kind_saying_only_the_redacted_message(exc):
    ended = fail_clearly(Task(), {}, exc)
    assert type(ended) is type(exc) and not isinstance(ended, AirflowFailException)  # retried
    assert SECRET not in str(ended) and "X-Amz-Signature=***" in str(ended)
    assert ended.__traceback__ is exc.__traceback__
    assert SECRET not in operators.FAILURES["serving__orders.extract"]


def test_a_kind_not_built_from_a_message_ends_as_a_source_error():
    ended = fail_clearly(Task(), {}, TwoPart(403, f"denied {URL}"))
    assert isinstance(ended, SourceError) and SECRET not in str(ended)


def test_a_final_error_is_not_retried_and_a_plain_one_is_the_same_exception():
    final = fail_clearly(Task(), {}, QualityCheckFailed(f"bad rows in {URL}"))
    assert isinstance(final, AirflowFailException) and SECRET not in str(final)
    plain = OSError("No space left on device")
    assert fail_clearly(Task(), {}, plain) is plain
