"""What an object-store failure a user can fix looks like: one LakeError line, never a traceback;
what the lake itself handles (a missing key) stays what it was."""

from __future__ import annotations

import pytest

from pipelines.exceptions import LakeError
from pipelines.lake.storage import retry

WHERE = "s3://bkt/lake/local/raw/orders/_log (Airflow connection 'pipelines_lake')"


def failing(error: BaseException, cause: BaseException | None = None):
    calls = []

    def call():
        calls.append(1)
        raise error from cause

    return call, calls


def test_refused_credentials_say_which_connection_to_check():
    cause = OSError("An error occurred (InvalidAccessKeyId) when calling ListObjectsV2")
    call, calls = failing(
        PermissionError("The AWS Access Key Id you provided does not exist"), cause
    )
    with pytest.raises(LakeError) as caught:
        retry(call, base_delay=0, where=WHERE)
    assert str(caught.value) == (
        f"{WHERE}: access refused (The AWS Access Key Id you provided does not exist); check the "
        "login (access key) and password (secret key) of that Airflow connection"
    )
    assert len(calls) == 1  # not worth retrying


def test_a_missing_bucket_is_named():
    cause = OSError("An error occurred (NoSuchBucket) when calling the ListObjectsV2 operation")
    call, _ = failing(FileNotFoundError("The specified bucket does not exist"), cause)
    with pytest.raises(LakeError, match=r": the bucket 'bkt' does not exist$"):
        retry(call, base_delay=0, where=WHERE)


def test_an_endpoint_that_never_answers_is_retried_then_named():
    call, calls = failing(ConnectionError("EndpointConnectionError: Could not connect"))
    with pytest.raises(LakeError, match=r": the S3 endpoint does not answer \(EndpointConnection"):
        retry(call, attempts=3, base_delay=0, where=WHERE)
    assert len(calls) == 3


def test_a_missing_key_stays_a_file_not_found_for_the_lake_to_handle():
    call, _ = failing(FileNotFoundError("bkt/lake/x"))
    with pytest.raises(FileNotFoundError):
        retry(call, base_delay=0, where=WHERE)
