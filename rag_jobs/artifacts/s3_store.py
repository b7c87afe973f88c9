"""The S3 artifact store (and S3-compatible: MinIO, Ceph RGW); boto3 is imported only when used."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag_jobs.artifacts.keys import TMP_PREFIX, ArtifactNotFound, _one_line, _visible, validate_key, validate_prefix
from rag_jobs.errors import RagJobsError, StoreError, TransientError

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
