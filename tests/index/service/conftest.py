"""Fixtures of the index-service tests: a tiny index (dimension 8) and the service in a thread."""

from __future__ import annotations

import numpy as np
import pytest
from service_helpers import DIM, TOKEN, LengthEmbedder, ServerThread, random_text

from rag_jobs.data.records import Passage
from rag_jobs.index import build_index, load_index


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    passages = [Passage(f"p{i}", f"T{i}", random_text(rng)) for i in range(200)]
    out = tmp_path_factory.mktemp("index")
    build_index(passages, LengthEmbedder(), out, embedder_name="length8")
    return out


@pytest.fixture(scope="session")
def local(index_dir):
    return load_index(index_dir)


@pytest.fixture
def queries():
    return np.random.default_rng(1).normal(size=(40, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def served(index_dir):
    from rag_jobs.index.service import create_app

    with ServerThread(create_app(index_dir, token=TOKEN, max_batch=16)) as server:
        yield server
