"""S3-only behaviour: multipart transfers, orphan uploads, endpoints and error mapping (moto)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from rag_jobs.artifacts.store import ArtifactNotFound, S3Store, open_store
from rag_jobs.errors import StoreError, TransientError

MiB = 1024 * 1024


def _small_parts(bucket: str, **kwargs: Any) -> S3Store:
    return S3Store(bucket, "p", multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, **kwargs)


def test_large_file_goes_up_in_parts(bucket: str, s3_client: Any, tmp_path: Path) -> None:
    store = _small_parts(bucket)
    src = tmp_path / "weights.safetensors"
    src.write_bytes(os.urandom(11 * MiB))
    store.put_file("w/weights.safetensors", src)
    etag = s3_client.head_object(Bucket=bucket, Key="p/w/weights.safetensors")["ETag"]
    assert etag.strip('"').endswith("-3")  # a multipart ETag: 5 + 5 + 1 MiB
    dest = tmp_path / "back.safetensors"
    store.get_file("w/weights.safetensors", dest)
    assert dest.read_bytes() == src.read_bytes()


def test_failed_multipart_upload_leaves_nothing(bucket: str, s3_client: Any, tmp_path: Path) -> None:
    store = _small_parts(bucket, max_concurrency=1)
    events = store.client.meta.events
    aborts: list[str] = []

    def fail_part_two(params: dict[str, Any], **_: Any) -> None:
        if params.get("PartNumber") == 2:
            raise ConnectionResetError("simulated network failure")

    def fail_first_abort(params: dict[str, Any], **_: Any) -> None:
        aborts.append(params["UploadId"])
        if len(aborts) == 1:  # boto3's own cleanup fails: our fallback must abort it
            raise ConnectionResetError("simulated failure while aborting")

    events.register("before-parameter-build.s3.UploadPart", fail_part_two)
    events.register("before-parameter-build.s3.AbortMultipartUpload", fail_first_abort)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(11 * MiB))
    with pytest.raises(ConnectionResetError):
        store.put_file("w/big.bin", src)
    events.unregister("before-parameter-build.s3.UploadPart", fail_part_two)
    events.unregister("before-parameter-build.s3.AbortMultipartUpload", fail_first_abort)
    assert store.list() == []
    assert not store.exists("w/big.bin")
    assert len(aborts) == 2
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_abort_orphan_uploads(bucket: str, s3_client: Any) -> None:
    store = S3Store(bucket, "p")
    mine = s3_client.create_multipart_upload(Bucket=bucket, Key="p/runs/r/s/abc/model.bin")["UploadId"]
    s3_client.upload_part(
        Bucket=bucket, Key="p/runs/r/s/abc/model.bin", UploadId=mine, PartNumber=1, Body=b"x"
    )
    other = s3_client.create_multipart_upload(Bucket=bucket, Key="elsewhere/model.bin")["UploadId"]
    # (moto reports a fixed 2010 'Initiated' time, so older_than_s cannot be exercised here)
    assert store.abort_orphan_uploads() == 1
    remaining = s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in remaining] == [other]  # outside the store's prefix: untouched
    assert store.abort_orphan_uploads() == 0
    assert store.list() == []


def test_missing_bucket_is_a_one_line_store_error(s3_env: str) -> None:
    store = open_store("s3://no-such-bucket-here/prefix")
    for call in (
        lambda: store.get_bytes("k"),
        lambda: store.put_bytes("k", b"x"),
        lambda: store.exists("k"),
        lambda: store.list(),
        lambda: store.put_bytes_if_absent("k", b"x"),
    ):
        with pytest.raises(StoreError) as info:
            call()
        message = str(info.value)
        assert not isinstance(info.value, ArtifactNotFound)
        assert "does not exist" in message and "no-such-bucket-here" in message and "\n" not in message


def test_bad_endpoint_is_a_one_line_store_error(
    aws_isolated: None, monkeypatch: Any, closed_port: int
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = open_store("s3://some-bucket/x")
    with pytest.raises(StoreError, match="cannot connect") as info:
        store.get_bytes("k")
    assert f"127.0.0.1:{closed_port}" in str(info.value) and "\n" not in str(info.value)


def test_endpoint_url_s3_wins_over_generic(
    s3_env: str, bucket: str, monkeypatch: Any, closed_port: int
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_env)
    store = open_store(f"s3://{bucket}")
    store.put_bytes("k", b"v")
    assert store.get_bytes("k") == b"v"


def test_no_credentials_is_a_store_error(aws_isolated: None, monkeypatch: Any, moto_endpoint: str) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    with pytest.raises(StoreError, match="credentials"):
        open_store("s3://some-bucket/x").put_bytes("k", b"v")


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("AccessDenied", 403, StoreError),
        ("InvalidAccessKeyId", 403, StoreError),
        ("SignatureDoesNotMatch", 403, StoreError),
        ("NoSuchKey", 404, ArtifactNotFound),
        ("SlowDown", 503, TransientError),
        ("InternalError", 500, TransientError),
        ("ServiceUnavailable", 503, TransientError),
        ("NotImplemented", 501, StoreError),
    ],
)
def test_client_errors_are_mapped(s3_env: str, code: str, status: int, error: type[Exception]) -> None:
    store = S3Store("some-bucket", "pre")
    with Stubber(store.client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        with pytest.raises(error) as info:
            store.get_bytes("k")
    message = str(info.value)
    assert "s3://some-bucket/pre/k" in message and "\n" not in message
    if error is StoreError:
        assert not isinstance(info.value, TransientError | ArtifactNotFound)
        assert code in message


def test_conditional_write_retries_a_conflict(s3_env: str) -> None:
    store = S3Store("some-bucket")
    with Stubber(store.client) as stub:
        stub.add_client_error(
            "put_object", service_error_code="ConditionalRequestConflict", http_status_code=409
        )
        stub.add_client_error("put_object", service_error_code="PreconditionFailed", http_status_code=412)
        assert store.put_bytes_if_absent("k", b"x") is False
        stub.assert_no_pending_responses()
