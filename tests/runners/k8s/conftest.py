"""Fixtures of the Kubernetes tests (helpers live in k8s_helpers)."""

from __future__ import annotations

import pytest
from k8s_helpers import HERE, FakeApi

from rag_jobs.runners.k8s.config import ClusterConfig, load_cluster_config


@pytest.fixture(scope="session")
def cluster() -> ClusterConfig:
    return load_cluster_config(HERE / "cluster.yaml")


@pytest.fixture
def fake_api() -> FakeApi:
    return FakeApi()
