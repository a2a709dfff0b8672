"""Credentials come from Airflow connections only; nothing here reads a secret from a config file.

Also what keeps secrets out of messages, and the one list of credential-bearing query keys
(:func:`is_secret_key`): :func:`redact` hides user info and those keys' values (as written or
URL-encoded, in the query or after ``#``) in any text before it is shown or logged, and the
registry refuses a source that carries one (:func:`secret_query_keys`); :func:`redact_known`
makes a server's answer fit to print.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from pipelines.exceptions import LakeError

# user info in a URI, as written or URL-encoded ("%3A%2F%2F" ... "%40"): "user:password@" up to
# the last "@" of the URI (a password written unencoded may hold "@", "/", "?" or "#"; a port is
# digits only), else the netloc up to its last "@"
_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)"
    r"(?:[^/?#\s:@]*:(?!\d*(?:[/?#\s]|$))\S*@|[^/?#\s]*@)"
)
_USERINFO_ENCODED = re.compile(r"(?i)(?P<scheme>%3A%2F%2F)(?:(?!%2F|%3F|%23)[^/?#\s])*?%40")
# a query pair: a separator ("?", "&", ";", "#" - a fragment is read as a query, since a signed
# URL's keys may follow it - or one of them URL-encoded, once or twice), a key (as written or
# URL-encoded), "=" (or "%3D"), and the value up to the next pair. An encoded pair's
# value ends at an encoded "&"; a plain pair's value runs to "&", a quote or white space.
_PAIR = re.compile(
    r"(?i)(?:(?P<plain>[?&;#])|(?P<encoded>%(?:25)?(?:3F|26|3B|23)))"
    r"(?P<key>[\w.~%+-]{1,64}?)(?:=|%(?:25)?3D)"
    r"(?P<value>(?(encoded)(?:(?!%(?:25)?26)[^&\s'\"<>])*|[^&\s'\"<>]*))"
)
# a secret field of a JSON document or a Python dict as text: "password": "..."
_FIELD = re.compile(
    r"(?P<key>(?P<q>[\"'])(?P<name>[\w.-]{1,64})(?P=q)\s*:\s*)"
    r"(?P<value>\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*')"
)
# the one list of credential-bearing query keys, compared without case, "-" or "_": a key that
# is one of these, or holds one of the words
SECRET_KEYS = frozenset(
    {
        "pwd",
        "pass",
        "key",
        "sig",
        "sas",
        "auth",
        "authorization",
        "awsaccesskeyid",
        "googleaccessid",
    }
)
SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "signature",
    "credential",
    "apikey",
    "accesskey",
    "accountkey",
    "privatekey",
    "signingkey",
)


def is_secret_key(key: str) -> bool:
    """Whether a query key (as written, URL-encoded or not) names a credential:
    ``aws_session_token``, ``X-Amz-Signature``, ``X-Amz-Security-Token``, ``X-Amz-Credential``,
    ``sig``, ``access_token``, ``password``, ... in any case."""
    name = unquote(unquote(key)).lower().replace("-", "").replace("_", "")
    return name in SECRET_KEYS or any(word in name for word in SECRET_WORDS)


def has_user_info(text: str) -> bool:
    """Whether ``text`` holds a URI with user info (``scheme://user:password@``), as written or
    URL-encoded: what :func:`redact` hides before ``@``."""
    return bool(_USERINFO.search(text) or _USERINFO_ENCODED.search(text))


def secret_query_keys(text: str) -> list[str]:
    """The credential-bearing query keys in ``text`` (decoded, in order, each once): what
    :func:`redact` hides, and what a registry source must not carry."""
    keys = (unquote(unquote(m["key"])) for m in _pairs(text) if is_secret_key(m["key"]))
    return list(dict.fromkeys(keys))


def _pairs(text: str) -> Iterator[re.Match]:
    """The query pairs of ``text``, those inside the value of another included (a URL inside a
    URL's query); a secret's value is not looked into."""
    pos = 0
    while match := _PAIR.search(text, pos):
        yield match
        pos = match.end("value") if is_secret_key(match["key"]) else match.start("value")


def redact(text: str) -> str:
    """``text`` with URI credentials (user info) and the values of credential-bearing query
    parameters and JSON fields replaced by ``***``, as written or URL-encoded."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    text = _USERINFO_ENCODED.sub(r"\g<scheme>***%40", text)
    text = _FIELD.sub(
        lambda m: f"{m['key']}{m['q']}***{m['q']}" if is_secret_key(m["name"]) else m[0], text
    )
    out, pos = [], 0
    for match in _pairs(text):
        if is_secret_key(match["key"]):
            out.append(text[pos : match.start("value")] + "***")
            pos = match.end("value")
    out.append(text[pos:])
    return "".join(out)


SHORT_SECRET = 4  # a credential shorter than this is hidden only where it stands as a value


def redact_known(text: str, *secrets: str | None, limit: int = 300) -> str:
    """``text`` (a server's answer) made fit to print: every one of ``secrets`` the caller sent
    (as written, JSON-, repr- or URL-encoded) and whatever :func:`redact` finds replaced by
    ``***``, control characters and line breaks turned into spaces, cut to ``limit`` characters.
    An answer that still holds a secret in some other encoding is not shown at all.

    A secret shorter than :data:`SHORT_SECRET` characters (a user name such as ``u``) is hidden
    only where it stands as a whole value (``"username": "u"``, ``username=u``): as a bare
    substring it would eat the letters of every other word."""
    known = sorted(filter(None, secrets), key=len, reverse=True)
    for secret in known:
        forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], quote(secret, safe="")}
        for form in sorted(forms | {quote_plus(secret)}, key=len, reverse=True):
            if len(secret) >= SHORT_SECRET:
                text = text.replace(form, "***")
            else:
                text = _as_value(form).sub(r"\g<before>***", text)
    long = [secret for secret in known if len(secret) >= SHORT_SECRET]
    decoded = (unquote(text), unquote_plus(text), text.replace("\\", ""))
    if any(secret in form for secret in long for form in decoded):
        return "(not shown: the answer repeats a credential this client sent)"
    line = " ".join("".join(c if c.isprintable() else " " for c in redact(text)).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _as_value(form: str) -> re.Pattern:
    """``form`` where it stands as a whole value: after ``=`` or ``:``, either quoted whole or
    running to white space, ``&``, ``,``, ``;``, a closing bracket or the end."""
    value = re.escape(form)
    return re.compile(
        rf"(?P<before>(?:=|:\s*)(?:(?P<q>[\"'])(?={value}(?P=q)))?){value}"
        r"(?(q)|(?=[\s&,;)\]}]|$))"
    )


# botocore's defaults wait 60 s to connect and retry on top of our own retries: a wrong endpoint
# would take minutes to say so. A connection's own extra "config_kwargs" win over these. delta-rs
# gets the same limits in object_store's terms (:func:`delta_storage_options`).
S3_CLIENT = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}


@lru_cache(maxsize=8)
def s3_filesystem(conn_id: str):
    """An s3fs filesystem authenticated through the Airflow connection ``conn_id``.

    The connection is an ``aws`` connection (login = access key, password = secret key, extra
    ``endpoint_url`` and ``region_name``), found the way Airflow finds it: inside a task through
    the Task SDK, elsewhere (the CLI, the client) through the secrets backends and the metadata
    database as well.

    :raises LakeError: no such connection
    """
    from airflow.providers.amazon.aws.fs.s3 import get_fs
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    require_connection(conn_id)
    chosen = S3Hook(aws_conn_id=conn_id).conn_config.extra_config.get("config_kwargs", {})
    return get_fs(conn_id, {k: v for k, v in S3_CLIENT.items() if k not in chosen})


@lru_cache(maxsize=8)
def delta_storage_options(conn_id: str) -> dict[str, str]:
    """``storage_options`` for delta-rs (and its object_store) from the Airflow connection
    ``conn_id``, resolved as the amazon provider resolves it for S3.

    Keys: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` (only when the
    credentials have one; ``AWS_SKIP_SIGNATURE`` instead when there are none, as ``s3fs`` goes
    anonymous), ``AWS_REGION`` when known, ``AWS_ENDPOINT_URL`` and ``AWS_ALLOW_HTTP`` for a
    custom endpoint, ``AWS_VIRTUAL_HOSTED_STYLE_REQUEST``, and the client limits of
    :data:`S3_CLIENT` (``connect_timeout``, ``timeout``, ``max_retries``), the connection's own
    ``config_kwargs`` winning. The dict is cached per connection id: copy it before adding to it.
    Temporary credentials (an assumed role, an instance profile) are frozen here as they are now.

    delta-rs adds any ``AWS_*`` variable of the process environment that these keys leave unset.

    :raises LakeError: no such connection
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    require_connection(conn_id)
    hook = S3Hook(aws_conn_id=conn_id)
    config = hook.conn_config
    session = hook.get_session()
    options = _credential_options(session.get_credentials())
    region = config.region_name or session.region_name
    if region:
        options["AWS_REGION"] = region
    endpoint = config.get_service_endpoint_url(service_name="s3")
    chosen = config.extra_config.get("config_kwargs", {})
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        options["AWS_ALLOW_HTTP"] = str(endpoint.lower().startswith("http://")).lower()
    # object_store reads a custom endpoint path-style unless told the endpoint names the bucket
    # itself; on AWS, botocore's "virtual" addressing style carries over
    virtual = not endpoint and chosen.get("s3", {}).get("addressing_style") == "virtual"
    options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = str(virtual).lower()
    return options | _client_options({**S3_CLIENT, **chosen})


def _credential_options(credentials) -> dict[str, str]:
    """The keys of botocore ``credentials`` (None: anonymous), frozen now; the secret and the
    token are masked in task logs, as ``S3Hook.get_credentials`` does."""
    from airflow.sdk.log import mask_secret

    if credentials is None:
        return {"AWS_SKIP_SIGNATURE": "true"}
    frozen = credentials.get_frozen_credentials()
    mask_secret(frozen.secret_key)
    options = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    if frozen.token:
        mask_secret(frozen.token)
        options["AWS_SESSION_TOKEN"] = frozen.token
    return options


def _client_options(config_kwargs: dict) -> dict[str, str]:
    """botocore's client limits in object_store's terms. object_store's ``timeout`` bounds a
    whole request where botocore's ``read_timeout`` bounds one read; its ``max_retries`` counts
    retries where botocore's ``max_attempts`` counts the first attempt too."""
    options = {}
    for botocore_key, key in (("connect_timeout", "connect_timeout"), ("read_timeout", "timeout")):
        if config_kwargs.get(botocore_key) is not None:
            options[key] = f"{round(float(config_kwargs[botocore_key]) * 1000)}ms"  # humantime
    attempts = (config_kwargs.get("retries") or {}).get("max_attempts")
    if attempts is not None:
        options["max_retries"] = str(max(int(attempts) - 1, 0))
    return options


def require_connection(conn_id: str, missing: Callable[[str], Exception] | None = None) -> None:
    """Make sure the Task SDK can find ``conn_id`` in this process.

    Inside a task it asks the API server, which reads the secrets backends and the metadata
    database. Elsewhere it reads only the environment and a configured secrets backend: a
    connection made with ``airflow connections add`` is then looked up here the way Airflow's
    own components do, and handed over as ``AIRFLOW_CONN_<ID>`` to this process.

    :param missing: the error for a connection found nowhere, from why (default: the lake's
        :class:`LakeError`, saying how to add an ``aws`` connection)
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
        return
    except AirflowNotFoundException:
        pass
    found, why = connection_from_metadata(conn_id)
    if found is None and missing is not None:
        raise missing(why)
    if found is None:
        raise LakeError(
            f"no Airflow connection {conn_id!r} ({why}): add it with `airflow connections add "
            f"{conn_id} --conn-type aws --conn-login KEY --conn-password SECRET --conn-extra "
            '\'{"endpoint_url": ..., "region_name": ...}\'`, or name another one in '
            "PIPELINES_LAKE_CONN_ID"
        )
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = found.as_json()


def connection_from_metadata(conn_id: str):
    """(connection, None) from Airflow's secrets backends and metadata database, or (None, why).

    A SQLite database that does not exist is not asked: asking would create it, empty.
    """
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    missing = no_metadata_database()
    if missing:
        return None, missing
    try:
        return Connection.get_connection_from_secrets(conn_id), None
    except AirflowNotFoundException:
        return None, "not in the environment, a secrets backend or the metadata database"
    except Exception as exc:  # noqa: BLE001 - no database here (a worker, a bare shell)
        return None, f"the metadata database cannot be read: {type(exc).__name__}"


def no_metadata_database() -> str | None:
    """Why the metadata database is not to be asked (None: ask it). A SQLite file that does not
    exist is not asked: asking would create it, empty."""
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn", fallback="")
    if url.startswith("sqlite:") and not Path(url.split(":///", 1)[-1]).exists():
        return f"there is no metadata database yet at {url.split(':///', 1)[-1]}"
    return None
