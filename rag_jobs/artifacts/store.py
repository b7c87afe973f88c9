"""Artifact stores: a local folder or an S3 bucket behind one small protocol.

Keys are '/'-separated strings relative to the store root. Only `rag_jobs.artifacts.layout` builds
them; this module only validates them. Every store error is a `StoreError` (bad settings, missing
object) or a `TransientError` (throttling, 5xx, dropped connection after retries) with a one-line
message naming the store URI.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from rag_jobs.errors import RagJobsError, StoreError, TransientError

TMP_PREFIX = ".tmp-"
"""Name prefix of in-flight temporary files; never a valid key segment, skipped by `list()`."""

_COPY_BUFFER = 4 * 1024 * 1024


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


# --------------------------------------------------------------------------------------------
# S3 (and S3-compatible: MinIO, Ceph RGW)
# --------------------------------------------------------------------------------------------

_MiB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 64 * _MiB
DEFAULT_MULTIPART_CHUNKSIZE = 64 * _MiB

_CREDENTIAL_CODES = {
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access denied",
    "InvalidAccessKeyId": "the access key id is not valid",
    "SignatureDoesNotMatch": "the secret key does not match (signature mismatch)",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is not valid",
    "InvalidClientTokenId": "the access key id is not valid",
    "AuthorizationHeaderMalformed": "the authorization header is malformed (wrong region?)",
    "Forbidden": "access denied",
    "403": "access denied",
}
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
}


def _client_error_of(exc: BaseException) -> Any:
    """The botocore exception behind `exc` (boto3's transfer layer wraps them), if any."""
    from boto3.exceptions import RetriesExceededError
    from botocore.exceptions import BotoCoreError, ClientError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError | BotoCoreError):
            return current
        if isinstance(current, RetriesExceededError) and isinstance(current.last_exception, BaseException):
            current = current.last_exception
            continue
        current = current.__cause__ or current.__context__
    return None


class S3Store:
    """A store under `s3://bucket/prefix`; honours AWS_ENDPOINT_URL(_S3) for MinIO/Ceph/moto."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any | None = None,
        endpoint_url: str | None = None,
        max_attempts: int | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        multipart_chunksize: int = DEFAULT_MULTIPART_CHUNKSIZE,
        max_concurrency: int = 8,
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        prefix = prefix.strip("/")
        if not bucket:
            raise StoreError(f"invalid store URI s3://{bucket}/{prefix}: missing bucket name")
        if prefix:
            validate_key(prefix, what="S3 prefix")
        self.bucket = bucket
        self.prefix = prefix
        self._uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.endpoint_url = (
            endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        self._client = client if client is not None else self._make_client(max_attempts)
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
        )
        self._bucket_checked = False
        self._uploads_lock = threading.Lock()
        self._uploads: dict[str, set[str]] = {}  # key -> multipart upload ids started by put_file
        self._client.meta.events.register("after-call.s3.CreateMultipartUpload", self._record_upload)

    def _record_upload(self, parsed: Any = None, **_: Any) -> None:
        """Remember which multipart uploads boto3 starts, so a failed put_file can abort its own."""
        if isinstance(parsed, dict) and parsed.get("Key") and parsed.get("UploadId"):
            with self._uploads_lock:
                if parsed["Key"] in self._uploads:
                    self._uploads[parsed["Key"]].add(str(parsed["UploadId"]))

    def _make_client(self, max_attempts: int | None) -> Any:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        if max_attempts is None:
            try:
                max_attempts = int(os.environ.get("AWS_MAX_ATTEMPTS", "5"))
            except ValueError as exc:
                raise StoreError(f"AWS_MAX_ATTEMPTS must be an integer, not {exc}") from exc
        s3_options: dict[str, str] = {}
        if self.endpoint_url:
            # S3-compatible servers (MinIO, Ceph) usually serve buckets as paths, not host names.
            s3_options["addressing_style"] = os.environ.get("RAG_JOBS_S3_ADDRESSING_STYLE", "path")
        config = Config(
            # total_max_attempts counts the first try (botocore reads "max_attempts" as retries after it)
            retries={"mode": "standard", "total_max_attempts": max(1, max_attempts)},
            connect_timeout=10,
            read_timeout=120,
            s3=s3_options or None,
        )
        try:
            return boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=config)
        except (ValueError, BotoCoreError) as exc:
            raise StoreError(f"cannot open {self._uri}: {_one_line(exc)}") from exc

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def client(self) -> Any:
        """The underlying boto3 S3 client."""
        return self._client

    def __repr__(self) -> str:
        return f"S3Store({self._uri!r}, endpoint={self.endpoint_url!r})"

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _full_prefix(self, prefix: str) -> str:
        folder = validate_prefix(prefix)
        if self.prefix:
            return f"{self.prefix}/{folder}"
        return folder

    def _map(self, exc: BaseException, action: str, key: str | None) -> RagJobsError | None:
        """Translate a boto error into StoreError/TransientError (None: not a boto error)."""
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            IncompleteReadError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        inner = _client_error_of(exc)
        if inner is None:
            return None
        where = f"{self._uri}/{key}" if key else self._uri
        head = f"cannot {action} {where}"
        if isinstance(inner, ClientError):
            error = inner.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(inner.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            detail = _one_line(error.get("Message") or code or status)
            if code == "NoSuchBucket":
                return StoreError(f"{head}: bucket {self.bucket!r} does not exist")
            if code == "NoSuchUpload":  # aborted under us (a sweep, a lifecycle rule): a retry starts afresh
                return TransientError(f"{head}: the multipart upload was aborted while in flight ({code})")
            if code in ("NoSuchKey", "NotFound", "404"):
                return ArtifactNotFound(f"{where} not found")
            if code in _CREDENTIAL_CODES:
                return StoreError(f"{head}: {_CREDENTIAL_CODES[code]} ({code})")
            if code == "NotImplemented" or status == 501:
                return StoreError(
                    f"{head}: the server does not support this request ({code or status}: {detail})"
                )
            if code in _TRANSIENT_CODES or status == 429 or status >= 500:
                return TransientError(f"{head}: {code or status} after retries: {detail}")
            return StoreError(f"{head}: {code or status}: {detail}")
        if isinstance(inner, NoCredentialsError | PartialCredentialsError):
            return StoreError(f"{head}: no usable AWS credentials ({_one_line(inner)})")
        if isinstance(inner, EndpointConnectionError):
            endpoint = self.endpoint_url or "the AWS endpoint"
            return StoreError(f"{head}: cannot connect to {endpoint} after retries ({_one_line(inner)})")
        if isinstance(
            inner, ReadTimeoutError | ConnectionClosedError | ResponseStreamingError | IncompleteReadError
        ):
            return TransientError(f"{head}: connection dropped after retries ({_one_line(inner)})")
        return StoreError(f"{head}: {type(inner).__name__}: {_one_line(inner)}")

    @contextlib.contextmanager
    def _errors(self, action: str, key: str | None) -> Iterator[None]:
        try:
            yield
        except RagJobsError:
            raise
        except Exception as exc:
            mapped = self._map(exc, action, key)
            if mapped is None:
                raise
            raise mapped from exc

    def _not_found(self, key: str) -> ArtifactNotFound:
        """A HEAD 404 can mean a missing bucket: check the bucket once, then report the key."""
        if not self._bucket_checked:
            try:
                with self._errors("access", None):
                    self._client.head_bucket(Bucket=self.bucket)
            except ArtifactNotFound as exc:
                raise StoreError(f"cannot access {self._uri}: bucket {self.bucket!r} does not exist") from exc
            self._bucket_checked = True
        return ArtifactNotFound(f"{self._uri}/{key} not found")

    def _is_404(self, exc: BaseException) -> bool:
        from botocore.exceptions import ClientError

        inner = _client_error_of(exc)
        if not isinstance(inner, ClientError):
            return False
        code = str(inner.response.get("Error", {}).get("Code", ""))
        status = inner.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("404", "NoSuchKey", "NotFound") or (status == 404 and code != "NoSuchBucket")

    def put_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        full = self._full(key)
        path = os.fspath(local_path)
        if not os.path.isfile(path):
            raise StoreError(f"cannot read local file {path!r}: not a file")
        with self._uploads_lock:
            self._uploads.setdefault(full, set())
        try:
            with self._errors("upload", key):
                self._client.upload_file(path, self.bucket, full, Config=self._transfer)
        except BaseException:
            # boto3 aborts a failed multipart upload itself; make sure, so no parts linger
            # (if this abort fails too, abort_orphan_uploads() cleans up later).
            self._abort_uploads(full)
            raise
        finally:
            with self._uploads_lock:
                self._uploads.pop(full, None)

    def _abort_uploads(self, full_key: str) -> None:
        with self._uploads_lock:
            upload_ids = sorted(self._uploads.get(full_key, ()))
        for upload_id in upload_ids:
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self._full(key)
        with self._errors("write", key):
            self._client.put_object(Bucket=self.bucket, Key=full, Body=data)

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        full = self._full(key)
        for attempt in range(5):
            try:
                with self._errors("write", key):
                    self._client.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*")
                return True
            except (StoreError, TransientError) as exc:
                inner = exc.__cause__
                code = inner.response.get("Error", {}).get("Code") if isinstance(inner, ClientError) else None
                if code == "PreconditionFailed":
                    return False
                if code == "ConditionalRequestConflict" and attempt < 4:
                    time.sleep(0.05 * 2**attempt)  # a concurrent conditional write is in flight
                    continue
                raise
        return False  # pragma: no cover - the loop always returns or raises

    def get_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        full = self._full(key)
        dest = Path(local_path)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create local folder {str(dest.parent)!r}: {exc.strerror}") from exc
        tmp = dest.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            try:
                with self._errors("download", key):
                    self._client.download_file(self.bucket, full, str(tmp), Config=self._transfer)
            except (StoreError, TransientError) as exc:
                if self._is_404(exc):
                    raise self._not_found(key) from exc
                raise
            os.replace(tmp, dest)
        except OSError as exc:
            raise StoreError(f"cannot write local file {str(dest)!r}: {exc.strerror or exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def get_bytes(self, key: str) -> bytes:
        full = self._full(key)
        with self._errors("read", key):
            response = self._client.get_object(Bucket=self.bucket, Key=full)
            return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        full = self._full(key)
        try:
            with self._errors("read", key):
                self._client.head_object(Bucket=self.bucket, Key=full)
        except (StoreError, TransientError) as exc:
            if self._is_404(exc):
                self._not_found(key)  # raises if the bucket itself is missing
                return False
            raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        full_prefix = self._full_prefix(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        with self._errors("list", prefix or None):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][strip:]
                    if _visible(key):
                        keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        full = self._full(key)
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def delete_prefix(self, prefix: str) -> int:
        folder = validate_prefix(prefix)
        if not folder:
            raise StoreError(f"refusing to delete the whole store {self._uri} (empty prefix)")
        full_prefix = self._full_prefix(folder)
        deleted = 0
        with self._errors("delete", folder):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if not objects:
                    continue
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
                errors = response.get("Errors", [])
                if errors:
                    first = errors[0]
                    detail = _one_line(first.get("Message", ""))
                    raise StoreError(
                        f"cannot delete {self._uri}/{folder}: {len(errors)} object(s) failed, "
                        f"first {first.get('Key')!r}: {first.get('Code')} {detail}"
                    )
                deleted += len(objects)
        return deleted

    def abort_orphan_uploads(self, older_than_s: float = 6 * 3600.0) -> int:
        """Abort incomplete multipart uploads under this store's prefix started > older_than_s ago.

        The default grace leaves uploads of running steps alone; 0 only when nothing can be uploading.
        """
        cutoff = datetime.now(timezone.utc).timestamp() - older_than_s
        aborted = 0
        with self._errors("list uploads of", None):
            paginator = self._client.get_paginator("list_multipart_uploads")
            prefix = f"{self.prefix}/" if self.prefix else ""
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    initiated = upload.get("Initiated")
                    if isinstance(initiated, datetime) and initiated.timestamp() > cutoff:
                        continue
                    try:
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    except Exception as exc:
                        if self._code(exc) != "NoSuchUpload":  # already aborted or completed
                            raise
                        continue
                    aborted += 1
        return aborted

    @staticmethod
    def _code(exc: BaseException) -> str | None:
        from botocore.exceptions import ClientError

        inner = _client_error_of(exc)
        if isinstance(inner, ClientError):
            return str(inner.response.get("Error", {}).get("Code", ""))
        return None
