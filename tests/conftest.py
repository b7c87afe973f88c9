"""Shared fixtures: tiny randomly initialised models with the real tokenizers, built once per session."""

from __future__ import annotations

import os
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
