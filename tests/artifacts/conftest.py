"""Fixtures for the artifact tests: a fresh bucket per test on the session's moto S3 server (tests/conftest.py),
and a `store` fixture that runs a test against both the local store and the S3 store."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag_jobs.artifacts.store import LocalStore, S3Store, open_store


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
