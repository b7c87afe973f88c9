"""Store keys: the validation every store applies, the reserved temp-file prefix, and ArtifactNotFound.

Keys are '/'-separated strings relative to the store root. Only `rag_jobs.artifacts.layout` builds
them; this module only validates them.
"""

from __future__ import annotations

from rag_jobs.errors import StoreError

TMP_PREFIX = ".tmp-"
"""Name prefix of in-flight temporary files; never a valid key segment, skipped by `list()`."""


class ArtifactNotFound(StoreError):
    """The key (or committed step) does not exist in the store."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def validate_key(key: str, *, what: str = "key") -> str:
    """Return `key` if it is a safe relative '/'-separated key, else raise StoreError."""
    problem = _key_problem(key)
    if problem:
        raise StoreError(f"invalid {what} {key!r}: {problem}")
    return key


def validate_prefix(prefix: str) -> str:
    """Validate a folder prefix ('' = the whole store) and return it with one trailing '/'."""
    if prefix == "":
        return ""
    stripped = prefix[:-1] if prefix.endswith("/") else prefix
    validate_key(stripped, what="prefix")
    return stripped + "/"


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str):
        return f"must be a string, not {type(key).__name__}"
    if key == "":
        return "empty"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return "contains a NUL or control character"
    if "\\" in key:
        return "contains a backslash"
    if key.startswith("/"):
        return "absolute (starts with '/')"
    for segment in key.split("/"):
        if segment == "":
            return "has an empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"has a {segment!r} segment"
        if segment.startswith(TMP_PREFIX):
            return f"has a segment starting with the reserved {TMP_PREFIX!r}"
    return None


def _visible(key: str) -> bool:
    return not key.endswith("/") and not any(seg.startswith(TMP_PREFIX) for seg in key.split("/"))

