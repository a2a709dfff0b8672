"""Byte-level access to the lake root: local disk or S3 (through an Airflow connection).

Writes are atomic for readers (a rename locally, one PUT on S3); ``create`` is an exclusive create
(a hard link locally, ``If-None-Match`` on S3), the primitive manifests are committed with.
Transient object-store errors are retried with backoff.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import time
import uuid
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

from pipelines.exceptions import LakeError, OutsideNamespace
from pipelines.runtime import environment
from pipelines.runtime.secrets import delta_storage_options, redact, s3_filesystem

log = logging.getLogger(__name__)
RETRIES = 5
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # delta-rs colours the arrows of its error chains


class Storage:
    """Byte-level access to the lake root: local disk or an fsspec S3 filesystem."""

    def __init__(
        self,
        root: str,
        conn_id: str | None = None,
        *,
        writable: str | None = None,
        before_write: Callable[[], None] | None = None,
    ):
        """
        :param writable: the one prefix (a namespace's) writes and deletes may touch; reads may
            go anywhere under the root (a research namespace reads serving's raw layer in place)
        :param before_write: called once, before the first write or delete (a namespace claims
            its prefix)
        """
        self.root = root.rstrip("/")
        self.remote = root.startswith("s3://")
        self.conn_id = conn_id or environment.lake_conn_id()
        self.writable = writable.rstrip("/") if writable else None
        self._before_write = before_write

    @cached_property
    def fs(self):
        if not self.remote:
            return None
        return s3_filesystem(self.conn_id)

    @cached_property
    def delta_options(self) -> dict[str, str] | None:
        """What delta-rs and DuckDB reach the lake with: None locally; on S3 the keys, region and
        endpoint of the lake's Airflow connection (never printed)."""
        return delta_storage_options(self.conn_id) if self.remote else None

    def _call(self, call: Callable[[], Any], path: str) -> Any:
        """An object-store call, retried; a user-fixable failure ends as one LakeError line."""
        return retry(call, where=reached(path, self.conn_id))

    def _key(self, path: str) -> str:
        return path.removeprefix("s3://") if self.remote else path

    def check_inside(self, path: str) -> str:
        """``path`` normalised; raises LakeError when it would leave the lake root."""
        norm = os.path.normpath(path) if not self.remote else _norm_remote(path)
        root = os.path.normpath(self.root) if not self.remote else _norm_remote(self.root)
        if norm != root and not norm.startswith(root + "/"):
            raise LakeError(f"path {redact(path)} is outside the lake root {redact(self.root)}")
        return norm if not self.remote else path

    def check_writable(self, path: str) -> None:
        """Refuse a write or delete outside :attr:`writable`, naming both prefixes, or through a
        symbolic link below the lake root (the lake's one guard between namespaces: every write
        and delete of the package comes here; a link can lead anywhere, so the guard follows
        none rather than trust a path as it reads)."""
        norm = self.check_inside(path)
        if self.writable is not None:
            prefix = self.check_inside(self.writable)
            if self.remote:
                norm, prefix = _norm_remote(norm), _norm_remote(prefix)
            if not norm.startswith(prefix + "/"):
                other = _namespace_of(norm, self.root)
                raise OutsideNamespace(
                    f"refused to write {redact(path)}: this namespace writes only under "
                    f"{redact(self.writable)}, and {redact(other)} belongs to another namespace "
                    "(read-only from here)"
                )
        if not self.remote:  # an object store has no links: a key is where it says
            _refuse_link(path, _first_link_on_the_way(self.root, norm))
        if self._before_write is not None:
            claim, self._before_write = self._before_write, None  # the claim writes through here
            try:
                claim()
            except BaseException:
                self._before_write = claim  # refused: every later write is refused too
                raise

    def check_writable_folders(self, *folders: str, deep: bool = False) -> None:
        """:meth:`check_writable` of every file a library writing under ``folders`` may touch (a
        Delta table, which delta-rs writes, lists and deletes in by itself): no link is on the
        way to a folder, nor among its entries (``deep``: its entries at any depth).

        :param deep: for a call that lists, and deletes, anywhere below (a vacuum)
        """
        for folder in folders:
            self.check_writable(folder.rstrip("/"))
            if not self.remote:
                _refuse_link(folder, _first_link_below(folder, deep))

    def read(self, path: str) -> bytes:
        if not self.remote:
            return Path(path).read_bytes()
        return self._call(lambda: self.fs.cat_file(self._key(path)), path)

    def write(self, path: str, data: bytes) -> None:
        """Write a whole object; atomic for readers (rename locally, one PUT on S3)."""
        self.check_writable(path)
        if self.remote:
            self._call(lambda: self.fs.pipe_file(self._key(path), data), path)
            return
        target = Path(path)
        os.replace(_durable_temp(target, data), target)

    def touch(self, path: str) -> None:
        """Create the empty object ``path`` (a probe: the storage stamps its time on it)."""
        self.check_writable(path)
        if self.remote:
            self._call(lambda: self.fs.pipe_file(self._key(path), b""), path)
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).touch(exist_ok=False)

    def create(self, path: str, data: bytes) -> bool:
        """Write an object only if it does not exist yet; False when it already did."""
        self.check_writable(path)
        if self.remote:
            try:
                self._call(lambda: self.fs.pipe_file(self._key(path), data, mode="create"), path)
            except FileExistsError:
                return False
            except OSError as exc:  # s3fs reports a failed precondition as a generic error
                if "PreconditionFailed" in str(exc) or "412" in str(exc):
                    return False
                raise
            return True
        target = Path(path)
        tmp = _durable_temp(target, data)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def list(self, path: str) -> list[str]:
        """Names (not paths) directly under ``path``; empty when it does not exist."""
        if not self.remote:
            try:
                return sorted(os.listdir(path))
            except FileNotFoundError:
                return []
        try:
            entries = self._call(
                lambda: self.fs.ls(self._key(path), detail=False, refresh=True), path
            )
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def exists(self, path: str) -> bool:
        """Whether the object (or folder) ``path`` is there now."""
        if not self.remote:
            return os.path.exists(path)
        key = self._key(path)
        self.fs.invalidate_cache(key)
        return bool(self._call(lambda: self.fs.exists(key), path))

    def delete(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.check_writable(path)
            if self.remote:
                with contextlib.suppress(FileNotFoundError):
                    self._call(lambda p=path: self.fs.rm_file(self._key(p)), path)
            else:
                Path(path).unlink(missing_ok=True)

    def files(self, prefix: str) -> list[tuple[str, int]]:
        """Every file under ``prefix`` with its size in bytes (paths in the lake's form)."""
        if not self.remote:
            found = []
            for folder, _, names in os.walk(prefix):
                for name in names:
                    path = os.path.join(folder, name)
                    with contextlib.suppress(FileNotFoundError):
                        found.append((path, os.stat(path).st_size))
            return sorted(found)
        try:
            entries = self._call(
                lambda: self.fs.find(self._key(prefix), detail=True, refresh=True), prefix
            )
        except FileNotFoundError:
            return []
        return sorted((f"s3://{key}", int(info.get("size") or 0)) for key, info in entries.items())

    def prune(self, prefix: str) -> None:
        """Remove the empty folders under ``prefix`` and ``prefix`` itself when empty (object
        stores have no folders)."""
        self.check_writable(f"{prefix.rstrip('/')}/x")
        if not self.remote:
            for folder, _, _ in sorted(os.walk(prefix), key=lambda e: -len(e[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)

    def mtime(self, path: str) -> float:
        if not self.remote:
            return Path(path).stat().st_mtime
        info = self._call(lambda: self.fs.info(self._key(path)), path)
        modified = info.get("LastModified")
        return modified.timestamp() if modified else time.time()


def _first_link_on_the_way(root: str, path: str) -> str | None:
    """The first symbolic link from below ``root`` down to ``path`` itself (None: there is
    none; the root itself may be a link, to the disk the lake is on)."""
    base = os.path.normpath(root)
    here = base
    for part in os.path.relpath(path, base).split(os.sep):
        if part in ("", "."):
            continue
        here = os.path.join(here, part)
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return here
        except FileNotFoundError:
            return None  # nothing further down exists yet: no link either
    return None


def _first_link_below(folder: str, deep: bool) -> str | None:
    """The first symbolic link among the entries of ``folder`` (``deep``: at any depth)."""
    pending = [folder]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                if entry.is_symlink():
                    return entry.path
                if deep and entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return None


def _refuse_link(path: str, link: str | None) -> None:
    """Refuse a write of ``path`` through ``link`` (nothing when it is None): a link below the
    lake root can lead into another namespace's tables, whatever its own path says."""
    if link is None:
        return
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    raise OutsideNamespace(
        f"refused to write {redact(path)}: {redact(link)} is a symbolic link (to "
        f"{redact(target)}), and the lake writes, creates and deletes through no link below its "
        "root (one can lead into another namespace): replace the link with a folder of its own"
    )


def _namespace_of(path: str, root: str) -> str:
    """The namespace folder ``{root}/{namespace}`` that ``path`` lies in."""
    rest = path[len(root.rstrip("/")) :].lstrip("/")
    return f"{root.rstrip('/')}/{rest.split('/', 1)[0]}"


def reached(path: str, conn_id: str) -> str:
    """What a storage error names: the object and the Airflow connection it is reached with."""
    return f"{redact(path)} (Airflow connection {conn_id!r})"


def _durable_temp(target: Path, data: bytes) -> Path:
    """``data`` fsynced to a hidden temp file beside ``target`` (readers ignore ``.tmp-*``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def _norm_remote(path: str) -> str:
    scheme, _, rest = path.partition("://")
    parts: list[str] = []
    for part in rest.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return f"{scheme}://" + "/".join(parts)


def _chain_text(exc: BaseException) -> str:
    """The error and its causes as text: s3fs turns botocore's ClientError into a bare OSError
    whose message is the server's text, with the S3 error code on the chained cause."""
    chain, cause = [exc], exc.__cause__
    while cause is not None and len(chain) < 5:
        chain.append(cause)
        cause = cause.__cause__
    return " ".join(f"{type(e).__name__} {plain(str(e))}" for e in chain)


def plain(text: str) -> str:
    """``text`` without terminal colour codes (delta-rs colours its error chains)."""
    return _COLOURS.sub("", text)


def _explain(exc: BaseException, where: str) -> LakeError | None:
    """The one line a user can act on, for the storage errors a user can fix (else None)."""
    text = _chain_text(exc)
    said = " ".join(plain(redact(str(exc))).replace("↳", "").split())[:300]  # one line
    if "NoSuchBucket" in text:
        bucket = where.removeprefix("s3://").split("/", 1)[0]
        return LakeError(f"{where}: the bucket {bucket!r} does not exist")
    if isinstance(exc, PermissionError) or "InvalidAccessKeyId" in text or "AccessDenied" in text:
        return LakeError(
            f"{where}: access refused ({said}); check the login (access key) and "
            "password (secret key) of that Airflow connection"
        )
    unreachable = ("EndpointConnectionError", "ConnectTimeout", "ConnectionError", "tcp connect")
    if any(m in text for m in unreachable):  # botocore's words, and delta-rs's
        return LakeError(f"{where}: the S3 endpoint does not answer ({said})")
    return None


def _is_transient(exc: BaseException) -> bool:
    """An error worth retrying (the S3 error code may be on a chained cause)."""
    text = _chain_text(exc)
    markers = (
        "SlowDown",
        "Throttl",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
        "RequestTimeout",
        "operation timed out",  # object_store's (delta-rs's) request timeout
        "Connection reset",
        "ConnectionError",
        "EndpointConnectionError",
    )
    return any(m in text for m in markers) and not isinstance(exc, FileNotFoundError)


def retry(
    call: Callable[[], Any],
    attempts: int = RETRIES,
    base_delay: float = 0.2,
    *,
    where: str | None = None,
    errors: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> Any:
    """Call, retrying transient object-store errors with exponential backoff (every S3 call of
    the package goes through here: lake and sources alike).

    :param where: what is being reached (``s3://... (connection 'x')``): a missing bucket,
        refused credentials or an endpoint that does not answer then end as one LakeError line
    :param errors: the exceptions to classify (others propagate at once: delta-rs reports the
        object store's failures as OSError, and a lost commit race as another DeltaError)
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except errors as exc:  # classified below, re-raised when not transient
            if attempt == attempts or not _is_transient(exc):
                explained = _explain(exc, where) if where else None
                if explained is None:
                    raise
                raise explained from None
            log.warning(
                "transient storage error (attempt %s/%s): %s",
                attempt,
                attempts,
                redact(plain(str(exc))),
            )
            time.sleep(base_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
