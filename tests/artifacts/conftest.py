"""Fixtures for the artifact tests: a moto S3 server per session, a fresh bucket per test, and a
`store` fixture that runs a test against both the local store and the S3 store."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag_jobs.artifacts.store import LocalStore, S3Store, open_store

_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "RAG_JOBS_S3_ADDRESSING_STYLE",
    "RAG_JOBS_IMAGE",
)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real AWS settings leak in: no profile, no config files, no instance metadata."""
    for name in _AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture
def s3_env(moto_endpoint: str, aws_isolated: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Dummy credentials and AWS_ENDPOINT_URL pointing at the moto server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return moto_endpoint


@pytest.fixture
def s3_client(s3_env: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1")


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A fresh, empty bucket per test (tests stay isolated on the shared server)."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalStore | S3Store:
    """The same test against a local folder store and an S3 store under a prefix."""
    if request.param == "local":
        return open_store((tmp_path / "store").as_uri())
    name = request.getfixturevalue("bucket")
    return open_store(f"s3://{name}/team/artifacts")


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """Wraps a store, records every call as (method, first argument), optionally intercepts some."""

    def __init__(self, inner: Any, hooks: dict[str, Callable[..., Any]] | None = None) -> None:
        self.inner = inner
        self.calls: list[tuple[str, Any]] = []
        self.hooks = hooks or {}

    @property
    def uri(self) -> str:
        return str(self.inner.uri)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args[0] if args else None))
            if name in self.hooks:
                return self.hooks[name](method, *args, **kwargs)
            return method(*args, **kwargs)

        return call

    def names(self, method: str) -> list[Any]:
        return [arg for name, arg in self.calls if name == method]


@pytest.fixture
def recorder() -> type[Recorder]:
    return Recorder
