"""Credentials come from Airflow connections only; nothing here reads a secret from a config file.

Also what keeps secrets out of messages: :func:`redact` strips userinfo and secret-looking
query parameters from any URI before it is shown or logged.
"""

from __future__ import annotations

import re
from functools import lru_cache

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
_SECRET_QUERY = re.compile(
    r"(?i)(?P<key>[?&](?:password|passwd|pwd|secret|token|key|access_key|secret_key|sig"
    r"|signature|aws_secret_access_key|aws_access_key_id)=)[^&\s]*"
)


def redact(text: str) -> str:
    """``text`` with URI credentials and secret query values replaced by ``***``."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _SECRET_QUERY.sub(r"\g<key>***", text)


@lru_cache(maxsize=8)
def s3_filesystem(conn_id: str):
    """An s3fs filesystem authenticated through the Airflow connection ``conn_id``.

    The connection is an ``aws`` connection (``AIRFLOW_CONN_<ID>`` or the metadata database);
    its ``extra`` may hold ``endpoint_url`` and ``region_name``.
    """
    from airflow.providers.amazon.aws.fs.s3 import get_fs

    return get_fs(conn_id)
