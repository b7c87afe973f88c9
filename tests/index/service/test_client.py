"""ServiceRetriever: the same ids, scores and vectors as FaissRetriever, over real HTTP; bounded retries."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from service_helpers import DIM, TOKEN, LengthEmbedder, random_text

from rag_jobs.data.records import Example
from rag_jobs.errors import ConfigError, TransientError
from rag_jobs.index import Retriever
from rag_jobs.index.client import ServiceRetriever, open_retriever


def test_same_results_as_the_local_index(served, local, queries):
    with ServiceRetriever(served.url, TOKEN) as remote:
        assert isinstance(remote, Retriever)
        assert remote.dim == DIM and len(remote) == len(local) and remote.meta["embedder"] == "length8"
        for k, with_vectors in ((1, False), (5, True), (500, True)):  # 40 queries: 3 requests of <= 16
            got, want = remote.search(queries, k, with_vectors=with_vectors), local.search(queries, k,
                                                                                           with_vectors=with_vectors)
            assert got.ids == want.ids
            assert got.scores.dtype == np.float32
            np.testing.assert_array_equal(got.scores, want.scores)
            if with_vectors:
                np.testing.assert_array_equal(got.vectors, want.vectors)
        ids = [f"p{i}" for i in range(0, 200, 7)]
        assert remote.passages(ids) == local.passages(ids)
        np.testing.assert_array_equal(remote.vectors_for(ids), local.vectors_for(ids))
        with pytest.raises(KeyError):
            remote.passages(["missing"])
        with pytest.raises(ConfigError):
            remote.search(np.ones((1, DIM + 1), np.float32), 3)
        with pytest.raises(ConfigError):
            remote.search(queries, 0)


def test_evaluate_scores_the_same_through_the_service(served, local):
    from rag_jobs.steps.scoring import score_examples

    rng = np.random.default_rng(3)
    examples = [Example(f"q{i}", random_text(rng), ("x",), (f"p{i}",)) for i in range(30)]
    with ServiceRetriever(served.url, TOKEN) as remote:
        rows_remote, metrics_remote = score_examples(remote, examples, LengthEmbedder(), k=5, recall_k=10)
    rows_local, metrics_local = score_examples(local, examples, LengthEmbedder(), k=5, recall_k=10)
    assert rows_remote == rows_local and metrics_remote == metrics_local


def test_wrong_token_is_a_config_error(served):
    with pytest.raises(ConfigError, match="refused the token"):
        ServiceRetriever(served.url, "wrong", retries=0)


def _info(limits=None) -> dict:
    return {"index_id": "x", "source": "x", "dim": 2, "size": 3, "embedder": "e", "factory": "Flat",
            "metric": "inner_product", "normalized": True, "ready": True, "auth": False, "version": "0",
            "limits": limits or {"max_batch": 4, "max_k": 10, "max_ids": 5, "max_body_bytes": 10_000,
                                 "max_in_flight": 2}}


def test_retries_503_429_and_connection_errors_then_succeeds():
    calls: list[str] = []
    answers = iter(["refuse", 503, 429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        answer = next(answers)
        if answer == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        if answer != 200:
            return httpx.Response(answer, json={"detail": "busy"}, headers={"Retry-After": "0"})
        return httpx.Response(200, json=_info())

    remote = ServiceRetriever("http://svc", transport=httpx.MockTransport(handler), retries=3, backoff_s=0)
    assert len(calls) == 4 and remote.dim == 2


def test_gives_up_after_bounded_retries():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(503, json={"detail": "too many requests in flight"}, headers={"Retry-After": "0"})

    with pytest.raises(TransientError, match="gave up after 3 attempts"):
        ServiceRetriever("http://svc", transport=httpx.MockTransport(handler), retries=2, backoff_s=0)
    assert len(calls) == 3


def test_bad_requests_are_not_retried():
    calls = []

    def handler(request):
        calls.append(1)
        if request.url.path == "/v1/info":
            return httpx.Response(200, json=_info())
        return httpx.Response(422, json={"detail": [{"loc": ["body", "k"], "msg": "bad", "type": "x"}]})

    remote = ServiceRetriever("http://svc", transport=httpx.MockTransport(handler), retries=5, backoff_s=0)
    with pytest.raises(ConfigError, match="HTTP 422"):
        remote.search(np.ones((1, 2), np.float32), 2)
    assert len(calls) == 2


def test_batches_are_split_by_the_service_limits():
    seen = []

    def handler(request):
        if request.url.path == "/v1/info":
            return httpx.Response(200, json=_info())
        import json

        body = json.loads(request.content)
        seen.append(len(body["queries"]))
        n, k = len(body["queries"]), body["k"]
        return httpx.Response(200, json={"index_id": "x", "k": k, "ids": [["a"] * k] * n, "scores": [[0.5] * k] * n})

    remote = ServiceRetriever("http://svc", transport=httpx.MockTransport(handler), retries=0)
    res = remote.search(np.ones((10, 2), np.float32), 99)  # k capped at the index size, 3
    assert seen == [4, 4, 2] and res.scores.shape == (10, 3)


def test_timeouts_are_retried_then_reported(monkeypatch):
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(TransientError, match="ReadTimeout"):
        ServiceRetriever("http://svc", transport=httpx.MockTransport(handler), retries=1, backoff_s=0, timeout=0.1)


def test_open_retriever_picks_local_or_remote(index_dir, tmp_path):
    assert len(open_retriever(index_dir)) == 200
    with pytest.raises(ConfigError):
        ServiceRetriever("ftp://x")
    from rag_jobs.errors import DataError

    with pytest.raises(DataError):
        open_retriever(tmp_path / "nothing")
