"""What keeps a credential out of every message (pipelines.runtime.secrets): the one list of
credential-bearing query keys, :func:`redact` over URIs as written and URL-encoded, and
:func:`redact_known` over a server's answer."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from pipelines.runtime.secrets import (
    has_user_info,
    is_secret_key,
    redact,
    redact_known,
    secret_query_keys,
)

S = "Kx7Qz9tok"


@pytest.mark.parametrize(
    "key",
    [
        "aws_session_token",
        "AWS_SESSION_TOKEN",
        "X-Amz-Signature",
        "x-amz-security-token",
        "X-Amz-Credential",
        "X%2DAmz%2DSignature",
        "sig",
        "Signature",
        "access_token",
        "refresh_token",
        "api_key",
        "apiKey",
        "password",
        "client_secret",
        "AccountKey",
        "AWSAccessKeyId",
        "X-Goog-Credential",
    ],
)
def test_credential_bearing_keys_are_known_in_any_case_and_encoding(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["versionId", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "format", "sv"]
)
def test_other_keys_are_not(key):
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"s3://b/x.csv?aws_session_token={S}", "s3://b/x.csv?aws_session_token=***"),
        (
            f"s3://b/x.csv?X-Amz-Date=2024&X-Amz-Signature={S}&X-Amz-Security-Token={S}/+= next",
            "s3://b/x.csv?X-Amz-Date=2024&X-Amz-Signature=***&X-Amz-Security-Token=*** next",
        ),
        (f"'s3://b/x.csv?X-Amz-Credential={S}'", "'s3://b/x.csv?X-Amz-Credential=***'"),
        (f"s3://b/x.csv?AWS_SESSION_TOKEN={S}", "s3://b/x.csv?AWS_SESSION_TOKEN=***"),
        (f"s3://b/x.csv?X%2DAmz%2DSignature={S}", "s3://b/x.csv?X%2DAmz%2DSignature=***"),
        (  # the whole query URL-encoded (an S3 key as a client quotes it)
            f"b/x.csv%3Faws_session_token%3D{S}%26X-Amz-Signature%3D{S} (404)",
            "b/x.csv%3Faws_session_token%3D***%26X-Amz-Signature%3D*** (404)",
        ),
        (f"b/x.csv%253FX-Amz-Signature%253D{S}", "b/x.csv%253FX-Amz-Signature%253D***"),
        (  # a URL inside a URL's query
            f"?next=https%3A%2F%2Fh%2Fx%3Fsig%3D{S}%26a%3D1",
            "?next=https%3A%2F%2Fh%2Fx%3Fsig%3D***%26a%3D1",
        ),
        (f"http://user:{S}@host:8080/x", "http://***@host:8080/x"),
        (f"http://user:p@{S}@host:8080/x", "http://***@host:8080/x"),  # "@" in the password
        (f"http://admin:{S}/+=@127.0.0.1:9 refused", "http://***@127.0.0.1:9 refused"),
        (f"http%3A%2F%2Fuser%3A{S}%40host%2Fx", "http%3A%2F%2F***%40host%2Fx"),
        (f"http://host:8080/?token={S}", "http://host:8080/?token=***"),
        (f'{{"username": "u", "password": "{S}\\"x"}}', '{"username": "u", "password": "***"}'),
        (f"{{'secret': '{S}', 'n': 1}}", "{'secret': '***', 'n': 1}"),
        # a fragment is read as a query: keys after "#", as written or URL-encoded
        (f"file:///d/ev.jsonl#X-Amz-Signature={S}", "file:///d/ev.jsonl#X-Amz-Signature=***"),
        (f"s3://b/x.csv?a=1#token={S}&b=2", "s3://b/x.csv?a=1#token=***&b=2"),
        (f"b/x.csv%23sig%3D{S} (404)", "b/x.csv%23sig%3D*** (404)"),
        (f"b/x.csv%2523sig%253D{S}", "b/x.csv%2523sig%253D***"),
    ],
)
def test_redact_hides_credentials_as_written_and_url_encoded(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "s3://bucket/lake/ns/cleaned/orders (Airflow connection 'pipelines_lake')",
        "s3://bucket/x?versionId=3&a=b",
        "http://127.0.0.1:8080/dags/local__x/runs/manual__2024",
        "s3://bucket/user@example.com/o.csv",
        "data/it $(touch pwned) `id`;x_{ds}.csv",
        "registry.csv:2: options: 'delimiter=;' is not one of",
    ],
)
def test_redact_leaves_text_without_credentials_alone(text):
    assert redact(text) == text


def test_the_registry_and_redact_share_one_list():
    text = f"s3://b/x.csv?a=1&X-Amz-Signature={S}&sig={S}&versionId=2"
    assert secret_query_keys(text) == ["X-Amz-Signature", "sig"]
    assert secret_query_keys(f"b/x.csv%3FX%2DAmz%2DCredential%3D{S}") == ["X-Amz-Credential"]
    assert secret_query_keys(f"file:///d/ev.jsonl#X-Amz-Signature={S}") == ["X-Amz-Signature"]
    assert secret_query_keys(f"s3://b/x.csv%23sig%3D{S}") == ["sig"]
    assert secret_query_keys("file:///d/ev.jsonl#part-2") == []
    assert S not in redact(text) and "versionId=2" in redact(text)
    assert has_user_info(f"s3://k:{S}@b/x") and has_user_info(f"s3%3A%2F%2Fk%3A{S}%40b")
    assert not has_user_info("s3://b/user@x/o.csv") and not has_user_info("http://h:80/a@b")


PASSWORD = f"p@ss\"wo'rd/+ {S} &%"


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"username": "ops", "password": PASSWORD}),
        repr({"username": "ops", "password": PASSWORD}),
        f"username=ops&password={quote_plus(PASSWORD)}",
        f"password={quote(PASSWORD, safe='')}",
        f"password={quote(PASSWORD, safe='/@')}",  # an encoding the client never used
        f"<pre>\n{PASSWORD}\n</pre>",
    ],
)
def test_redact_known_hides_what_the_client_sent_in_any_encoding(body):
    shown = redact_known(body, "ops", PASSWORD)
    assert S not in shown and "\n" not in shown


def test_redact_known_makes_one_bounded_line():
    body = "<html>\n<h1>Error</h1>\r\n\x1b[2J" + "x" * 5000 + f"\nBearer {S}"
    shown = redact_known(body, S, limit=120)
    assert len(shown) == 120 and shown.endswith("...") and shown.isprintable()
    assert shown.startswith("<html> <h1>Error</h1> ")
    assert redact_known(f"refused {S}", None, "", S) == "refused ***"


@pytest.mark.parametrize(
    ("body", "shown"),
    [  # a user name "u" (no secret) and a password "pw", both shorter than SHORT_SECRET
        (
            '{"detail": "Invalid username or password", "username": "u", "password": "pw"}',
            '{"detail": "Invalid username or password", "username": "***", "password": "***"}',
        ),
        ("username=u&password=pw (unauthorized)", "username=***&password=*** (unauthorized)"),
        (
            "{'username': 'u', 'password': 'pw', 'n': 1}",
            "{'username': '***', 'password': '***', 'n': 1}",
        ),
        ("user=u, pass=pw; source=upw", "user=***, pass=***; source=upw"),
        ("Unauthorized: user not found, pwd unknown", "Unauthorized: user not found, pwd unknown"),
    ],
)
def test_redact_known_hides_a_short_credential_only_as_a_value(body, shown):
    """A user name of one letter is not eaten out of every word of the answer (it garbled
    "Unauthorized" into "Un***thorized"); where it stands as a value it is still hidden."""
    assert redact_known(body, "u", "pw") == shown


def test_redact_known_still_hides_a_long_credential_anywhere():
    assert redact_known("no user ops1 with password Kx7Q", "ops1", "Kx7Q") == (
        "no user *** with password ***"
    )
    assert redact_known("ops1 in %6Fps1", "ops1").startswith("(not shown")
