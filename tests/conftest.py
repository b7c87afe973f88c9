"""Shared fixtures: tiny randomly initialised models with the real tokenizers, built once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config):
    # Tests never reach a hub; everything they load is made here or ships in a package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data samples not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Each test session gets its own model / artifact cache, except for converted models (slow to redo)."""
    os.environ.setdefault("RAG_JOBS_CACHE", str(tmp_path_factory.mktemp("rag-jobs-cache")))


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT with MiniLM's real tokenizer, as a sentence-transformers folder."""
    return _tiny_embedder(tmp_path_factory, dropout=0.1)


@pytest.fixture(scope="session")
def tiny_embedder_no_dropout(tmp_path_factory) -> str:
    """The same without dropout: runs that split batches differently (torchrun) can be compared exactly."""
    return _tiny_embedder(tmp_path_factory, dropout=0.0)


def _tiny_embedder(tmp_path_factory, dropout: float) -> str:
    from tiny_models import make_tiny_embedder

    return make_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"), dropout=dropout)


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> str:
    """A 2-layer, 64-wide Llama with SmolLM2's real tokenizer and chat template."""
    from tiny_models import make_tiny_generator

    return make_tiny_generator(tmp_path_factory.mktemp("tiny-generator"))


# --- S3: one moto server for the whole session ------------------------------------------------------------

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
    """A moto S3 server on 127.0.0.1 (a free port) for the whole session (tests/moto_server.py)."""
    from moto_server import moto_server

    with moto_server() as endpoint:
        yield endpoint


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
