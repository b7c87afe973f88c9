"""Artifact stores: a local folder or an S3 bucket behind one small protocol.

Keys are '/'-separated strings relative to the store root. Only `rag_jobs.artifacts.layout` builds
them; `rag_jobs.artifacts.keys` only validates them. Every store error is a `StoreError` (bad
settings, missing object) or a `TransientError` (throttling, 5xx, dropped connection after retries)
with a one-line message naming the store URI.

This module holds the protocol and `open_store`; the two stores live in `local_store` and `s3_store`
and are re-exported here.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from rag_jobs.artifacts.keys import TMP_PREFIX, ArtifactNotFound, validate_key, validate_prefix
from rag_jobs.artifacts.local_store import LocalStore
from rag_jobs.artifacts.s3_store import DEFAULT_MULTIPART_CHUNKSIZE, DEFAULT_MULTIPART_THRESHOLD, S3Store
from rag_jobs.errors import StoreError

__all__ = [
    "DEFAULT_MULTIPART_CHUNKSIZE",
    "DEFAULT_MULTIPART_THRESHOLD",
    "TMP_PREFIX",
    "ArtifactNotFound",
    "ArtifactStore",
    "LocalStore",
    "S3Store",
    "open_store",
    "validate_key",
    "validate_prefix",
]


@runtime_checkable
class ArtifactStore(Protocol):
    """What steps need from a store; keys are validated by every method."""

    @property
    def uri(self) -> str:
        """The store's URI (`file:///...` or `s3://bucket[/prefix]`)."""
        ...

    def put_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        """Upload a local file; readers see the old object or the whole new one, never a part."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write `data` at `key`, replacing any existing object atomically."""
        ...

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        """Create `key` only if it does not exist: True when written, False when it existed."""
        ...

    def get_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        """Download to `local_path` via a temporary file (no partial file on failure)."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Read a whole object; ArtifactNotFound if missing."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object exists at `key`."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """All keys under the folder `prefix` (recursive, sorted); '' lists the whole store."""
        ...

    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under the folder `prefix`; return how many were deleted."""
        ...


def open_store(uri: str, **options: Any) -> LocalStore | S3Store:
    """Open `file:///abs/path`, a plain path, or `s3://bucket[/prefix]` (options go to S3Store)."""
    if not isinstance(uri, str) or not uri.strip():
        raise StoreError(f"invalid store URI {uri!r}: empty")
    if "://" not in uri:
        if options:
            raise StoreError(f"store options {sorted(options)} apply to s3:// stores only, not {uri!r}")
        return LocalStore(uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise StoreError(f"invalid store URI {uri!r}: query strings and fragments are not allowed")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"invalid store URI {uri!r}: file URIs must be local (file:///abs/path)")
        if options:
            raise StoreError(f"store options {sorted(options)} apply to s3:// stores only, not {uri!r}")
        return LocalStore(unquote(parts.path) or "/")
    if scheme == "s3":
        return S3Store(parts.netloc, unquote(parts.path), **options)
    raise StoreError(f"invalid store URI {uri!r}: unsupported scheme {scheme!r} (use file:// or s3://)")

