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


def test_delta_rs_errors_are_retried_when_transient_and_named_without_colour_codes():
    """delta-rs reports the object store's failures as OSError or as a DeltaError naming them,
    its arrows in terminal colours; a lost commit race is never retried here (the caller
    recomputes)."""
    from deltalake.exceptions import CommitFailedError, DeltaError

    from pipelines.exceptions import CommitConflict
    from pipelines.lake import delta
    from pipelines.lake.storage import Storage

    storage = Storage("s3://bkt/lake", conn_id="pipelines_lake")
    slow = DeltaError(
        "Failed to parse parquet: Generic S3 error: \x1b[31m↳\x1b[0m 503 Service Unavailable: "
        "<Code>SlowDown</Code>"
    )
    outcomes = [slow, slow, "done"]

    def flaky():
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("pipelines.lake.storage.time.sleep", lambda _: None)
        assert delta.reaching(storage, "s3://bkt/lake/t", flaky) == "done"
        denied = OSError("Kernel error -> \x1b[31m↳\x1b[0m 403 Forbidden <Code>AccessDenied</Code>")
        with pytest.raises(LakeError) as caught:
            delta.reaching(storage, "s3://bkt/lake/t", failing(denied)[0])
        assert "access refused" in str(caught.value) and "\x1b" not in str(caught.value)
        race, calls = failing(CommitFailedError("version 500 already exists (500 commits)"))
        with pytest.raises(CommitConflict):
            delta.reaching(storage, "s3://bkt/lake/t", race)
        assert len(calls) == 1


def test_a_request_that_timed_out_is_retried():
    """object_store (delta-rs) reports a request that got no answer within its timeout as
    "operation timed out": transient, like botocore's RequestTimeout."""
    timed_out = OSError(
        "Generic S3 error: Error performing GET x - error sending request ↳ operation timed out"
    )
    outcomes = [timed_out, "done"]

    def call():
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert retry(call, base_delay=0, where=WHERE) == "done"
