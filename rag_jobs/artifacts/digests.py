"""sha256 of local files, remembered by (path, size, mtime, inode): a large artifact is hashed once per fetch.

A step's inputs are verified when they are downloaded (the digest is computed while the file is written to
the pod's cache and compared with the manifest's); the digest is then remembered here, so the next step in
the pod, the next torchrun rank or the index loader trusts the verified file without reading its 100 GiB
again. A file whose size, mtime or inode has changed since is hashed again, so a truncated or rewritten
file is still refused. One small JSON file (RAG_JOBS_CACHE, else ~/.cache/rag-jobs) holds the newest
entries; a broken or unwritable one only costs a re-hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

CACHE_ENTRIES = 16_384
_BUFFER = 1 << 20


def cache_file() -> Path:
    root = os.environ.get("RAG_JOBS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rag-jobs")
    return Path(root) / "file-digests.json"


def _key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


_lock = threading.Lock()  # fetch verifies files from several threads: one read-modify-write at a time
_memo: dict = {"key": None, "cache": {}}  # the cache file as last parsed, while it is unchanged on disk


def _read() -> dict:
    """The cache, parsed again only when the file changed (a load checks dozens of files against it)."""
    path = cache_file()
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        if _memo["key"] != key:
            cache = json.loads(path.read_text())
            _memo.update(key=key, cache=cache if isinstance(cache, dict) else {})
    except (OSError, ValueError):
        return {}
    return dict(_memo["cache"])


def _write(cache: dict) -> None:
    path = cache_file()
    cache = dict(list(cache.items())[-CACHE_ENTRIES:])  # the newest entries: the file stays small
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: the digest is recomputed next time


def hash_file(path: Path) -> str:
    """sha256 of a file's bytes, always read (no cache)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BUFFER):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The file's sha256: remembered when the file is unchanged since it was last hashed or verified."""
    path = Path(path)
    key = _key(path)
    known = _read().get(key)
    if known is not None:
        return known
    digest = hash_file(path)
    with _lock:
        cache = _read()  # another thread or process may have written meanwhile
        cache[key] = digest
        _write(cache)
    return digest


def remember_sha256(path: str | os.PathLike[str], digest: str) -> None:
    """Record a digest just verified (e.g. while downloading) for the file as it is now."""
    path = Path(path)
    with _lock:
        cache = _read()
        cache.pop(_key(path), None)
        cache[_key(path)] = digest
        _write(cache)
