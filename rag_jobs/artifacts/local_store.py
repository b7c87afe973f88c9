"""The local-folder artifact store: atomic writes via a synced temp file and os.replace."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from rag_jobs.artifacts.keys import TMP_PREFIX, ArtifactNotFound, _one_line, validate_key, validate_prefix
from rag_jobs.errors import RagJobsError, StoreError

_COPY_BUFFER = 4 * 1024 * 1024

# --------------------------------------------------------------------------------------------
# Local folder
# --------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_temp(directory: Path) -> tuple[int, Path]:
    """Create a fresh `.tmp-*` file in `directory` with O_EXCL (retries if a delete races us)."""
    for _ in range(5):
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        except (FileNotFoundError, FileExistsError):
            continue  # parent removed by a concurrent delete, or a (very) unlikely name clash
        return fd, tmp
    raise OSError(errno.ENOENT, "could not create a temporary file", str(directory))


def _write_atomic(final: Path, write: Callable[[BinaryIO], None], *, exclusive: bool = False) -> bool:
    """Write via a synced temp file, then os.replace (or link, when `exclusive`). False = existed."""
    fd, tmp = _open_temp(final.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if not exclusive:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)  # atomic create-if-absent: never replaces an existing file
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                if not _create_exclusive(final, tmp):  # file system without hard links
                    return False
        _fsync_dir(final.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _create_exclusive(final: Path, source: Path) -> bool:
    try:
        fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, _COPY_BUFFER)
        out.flush()
        os.fsync(out.fileno())
    return True


def _open_local(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a local source file for reading; StoreError naming it if that fails."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise StoreError(f"cannot read local file {os.fspath(path)!r}: {exc.strerror or exc}") from exc


class LocalStore:
    """A store in a local folder; writes are atomic (temp file + fsync + os.replace)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root).expanduser()
        try:
            self._root = path.resolve()
        except OSError as exc:
            raise StoreError(f"invalid local store path {str(root)!r}: {exc.strerror}") from exc
        if self._root.exists() and not self._root.is_dir():
            raise StoreError(f"local store path {str(self._root)!r} exists and is not a folder")

    @property
    def root(self) -> Path:
        """The absolute folder holding the store."""
        return self._root

    @property
    def uri(self) -> str:
        return self._root.as_uri()

    def __repr__(self) -> str:
        return f"LocalStore({self.uri!r})"

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    def remove_stale_temp_files(self, prefix: str, older_than_s: float) -> int:
        """Delete `.tmp-*` files under prefix older than older_than_s (a writer killed mid-write leaves one)."""
        key = prefix.rstrip("/")
        root = self._root.joinpath(*validate_key(key).split("/")) if key else self._root
        if not root.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in root.rglob(f"{TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except RagJobsError:
            raise
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            if action in ("read", "download"):
                raise ArtifactNotFound(f"{self.uri}/{key} not found") from exc
            raise StoreError(f"cannot {action} {self.uri}/{key}: {_one_line(exc)}") from exc
        except OSError as exc:
            raise StoreError(f"cannot {action} {self.uri}/{key}: {_one_line(exc.strerror or exc)}") from exc

    def put_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        final = self._path(key)
        with _open_local(local_path) as src, self._errors("write", key):
            _write_atomic(final, lambda fh: shutil.copyfileobj(src, fh, _COPY_BUFFER))

    def put_bytes(self, key: str, data: bytes) -> None:
        final = self._path(key)
        with self._errors("write", key):
            _write_atomic(final, lambda fh: fh.write(data))

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        final = self._path(key)
        with self._errors("write", key):
            return _write_atomic(final, lambda fh: fh.write(data), exclusive=True)

    def get_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        source = self._path(key)
        dest = Path(local_path)
        with self._errors("download", key), open(source, "rb") as src:
            try:
                _write_atomic(dest, lambda fh: shutil.copyfileobj(src, fh, _COPY_BUFFER))
            except OSError as exc:
                raise StoreError(f"cannot write local file {str(dest)!r}: {exc.strerror or exc}") from exc

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        with self._errors("read", key):
            return path.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        folder = validate_prefix(prefix)
        base = self._root.joinpath(*folder.rstrip("/").split("/")) if folder else self._root
        if not base.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(TMP_PREFIX)]
            rel = Path(dirpath).relative_to(self._root).as_posix()
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if os.path.isfile(os.path.join(dirpath, name)):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._errors("delete", key):
            try:
                path.unlink()
            except FileNotFoundError:
                return
            self._prune_empty_dirs(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        folder = validate_prefix(prefix)
        if not folder:
            raise StoreError(f"refusing to delete the whole store {self.uri} (empty prefix)")
        keys = self.list(folder)
        base = self._root.joinpath(*folder.rstrip("/").split("/"))
        with self._errors("delete", folder):
            for _ in range(3):  # a concurrent writer may add files while we remove the tree
                try:
                    shutil.rmtree(base)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
            self._prune_empty_dirs(base.parent)
        return len(keys)

    def _prune_empty_dirs(self, folder: Path) -> None:
        while folder != self._root and self._root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

