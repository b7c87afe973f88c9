"""The index service app: same answers as the local index, auth, limits, readiness, metrics, schema."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_helpers import DIM, TOKEN, wait_ready

from rag_jobs.artifacts import StepRef, commit_dir, open_store
from rag_jobs.errors import ConfigError, DataError, IntegrityError
from rag_jobs.index.service import IndexSource, content_id, create_app, main, read_token

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(index_dir):
    with TestClient(create_app(index_dir, token=TOKEN, max_batch=16, max_k=50, max_body_bytes=20_000)) as c:
        wait_ready(c)
        yield c


class GatedSource(IndexSource):
    """An index folder whose load waits for the test (or fails, when told to)."""

    def __init__(self, index_dir, fail: bool = False):
        super().__init__(index_dir)
        self.gate = threading.Event()
        self.fail = fail

    def load(self):
        assert self.gate.wait(20)
        if self.fail:
            raise IntegrityError("index file index.faiss does not match its recorded sha256")
        return super().load()


def test_search_returns_exactly_what_the_local_index_returns(client, local, queries):
    res = client.post("/v1/search", headers=AUTH,
                      json={"queries": queries[:16].tolist(), "k": 7, "with_vectors": True, "with_passages": True})
    assert res.status_code == 200, res.text
    body = res.json()
    want = local.search(queries[:16], 7, with_vectors=True)
    assert body["ids"] == want.ids and body["k"] == 7
    np.testing.assert_array_equal(np.asarray(body["scores"], dtype=np.float32), want.scores)
    np.testing.assert_array_equal(np.asarray(body["vectors"], dtype=np.float32), want.vectors)
    assert [p["id"] for p in body["passages"][0]] == want.ids[0]
    assert body["passages"][0][0]["text"] == local.passages([want.ids[0][0]])[0].text
    assert body["index_id"] == content_id(local.meta)
    # k over the index size is capped, as FaissRetriever does.
    big = client.post("/v1/search", headers=AUTH, json={"queries": queries[:1].tolist(), "k": 50}).json()
    assert big["k"] == 50 and len(big["ids"][0]) == 50


def test_passages_vectors_and_info(client, local):
    res = client.post("/v1/passages", headers=AUTH, json={"ids": ["p3", "p0"]}).json()
    assert [p["id"] for p in res["passages"]] == ["p3", "p0"]
    vecs = client.post("/v1/vectors", headers=AUTH, json={"ids": ["p3", "p0"]}).json()["vectors"]
    np.testing.assert_array_equal(np.asarray(vecs, dtype=np.float32), local.vectors_for(["p3", "p0"]))
    missing = client.post("/v1/passages", headers=AUTH, json={"ids": ["nope"]})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    info = client.get("/v1/info", headers=AUTH).json()
    assert info["dim"] == DIM and info["size"] == 200 and info["embedder"] == "length8" and info["ready"]
    assert info["auth"] and info["limits"]["max_batch"] == 16


def test_auth_is_required_and_compared_exactly(client, queries):
    body = {"queries": queries[:1].tolist(), "k": 3}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": f"Basic {TOKEN}"}):
        res = client.post("/v1/search", json=body, headers=headers)
        assert res.status_code == 401, headers
        assert res.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/info").status_code == 401
    # Probes and metrics stay open (the NetworkPolicy limits who reaches them).
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_auth_off_when_no_token(index_dir, queries):
    with TestClient(create_app(index_dir)) as c:
        wait_ready(c)
        assert c.post("/v1/search", json={"queries": queries[:1].tolist(), "k": 3}).status_code == 200
        assert "securitySchemes" not in c.get("/openapi.json").json().get("components", {})


def test_limits_answer_413_and_422(client, queries):
    too_big = client.post("/v1/search", headers={**AUTH, "Content-Type": "application/json"},
                          content=b'{"queries": [' + b"0.1," * 10_000 + b"0.1]}")
    assert too_big.status_code == 413

    def chunks():  # no Content-Length: the limit still holds
        yield b'{"queries": [['
        for _ in range(200):
            yield b"0.1," * 50
        yield b"0.1]]}"

    assert client.post("/v1/search", headers=AUTH, content=chunks()).status_code == 413
    cases = {
        "k over max_k": {"queries": queries[:1].tolist(), "k": 51},
        "k zero": {"queries": queries[:1].tolist(), "k": 0},
        "batch over max_batch": {"queries": queries[:17].tolist(), "k": 3},
        "empty batch": {"queries": [], "k": 3},
        "wrong dimension": {"queries": [[0.5] * (DIM + 1)], "k": 3},
        "value beyond float32": {"queries": [[1e39] * DIM], "k": 3},
        "unknown field": {"queries": queries[:1].tolist(), "k": 3, "kk": 1},
    }
    for name, body in cases.items():
        res = client.post("/v1/search", headers=AUTH, json=body)
        assert res.status_code == 422, name
    res = client.post("/v1/search", headers={**AUTH, "Content-Type": "application/json"},
                      content=b'{"queries": [[NaN, 0, 0, 0, 0, 0, 0, 0]], "k": 3}')
    assert res.status_code == 422
    wrong_dim = client.post("/v1/search", headers=AUTH, json=cases["wrong dimension"]).json()
    assert any(f"at most {DIM}" in e["msg"] for e in wrong_dim["detail"])


def test_zero_query_does_not_break_the_service(client):
    res = client.post("/v1/search", headers=AUTH, json={"queries": [[0.0] * DIM], "k": 3})
    assert res.status_code == 200 and res.json()["scores"] == [[0.0, 0.0, 0.0]]


def test_too_many_in_flight_answers_503_with_retry_after(index_dir, queries):
    app = create_app(index_dir, max_in_flight=1)
    with TestClient(app) as c:
        wait_ready(c)
        retriever = app.state.index.retriever
        started, release = threading.Event(), threading.Event()
        real_search = retriever.search

        def slow_search(*args, **kwargs):
            started.set()
            assert release.wait(20)
            return real_search(*args, **kwargs)

        retriever.search = slow_search
        try:
            body = {"queries": queries[:1].tolist(), "k": 3}
            first: dict = {}
            t = threading.Thread(target=lambda: first.update(res=c.post("/v1/search", json=body)))
            t.start()
            assert started.wait(20)
            second = c.post("/v1/search", json=body)
            assert second.status_code == 503 and second.headers["retry-after"] == "1"
            assert c.get("/healthz").status_code == 200  # probes are never refused
            release.set()
            t.join(20)
            assert first["res"].status_code == 200
        finally:
            release.set()
            retriever.search = real_search
        assert c.post("/v1/search", json=body).status_code == 200


def test_ready_only_once_loaded(index_dir, queries):
    source = GatedSource(index_dir)
    with TestClient(create_app(source)) as c:
        assert c.get("/readyz").status_code == 503 and c.get("/readyz").json()["status"] == "loading"
        assert c.get("/healthz").status_code == 200
        res = c.post("/v1/search", json={"queries": queries[:1].tolist(), "k": 3})
        assert res.status_code == 503 and res.headers["retry-after"]
        assert c.get("/v1/info").json()["ready"] is False
        source.gate.set()
        wait_ready(c)
        assert c.get("/v1/info").json()["ready"] is True
        assert "rag_index_ready 1.0" in c.get("/metrics").text


def test_failed_load_fails_readiness_and_liveness(index_dir):
    source = GatedSource(index_dir, fail=True)
    source.gate.set()
    with TestClient(create_app(source)) as c:
        deadline = time.monotonic() + 20
        while c.get("/healthz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        health = c.get("/healthz")
        assert health.status_code == 503 and "IntegrityError" in health.json()["detail"]
        assert c.get("/readyz").json()["status"] == "failed"


def test_metrics_count_requests_batches_and_errors(client, queries):
    client.post("/v1/search", headers=AUTH, json={"queries": queries[:4].tolist(), "k": 3})
    client.post("/v1/search", headers=AUTH, json={"queries": queries[:1].tolist(), "k": 0})
    client.post("/v1/search", json={"queries": queries[:1].tolist(), "k": 3})
    text = client.get("/metrics").text
    assert 'rag_index_requests_total{endpoint="/v1/search",method="POST",status="200"} 1.0' in text
    assert 'rag_index_errors_total{endpoint="/v1/search",status="422"} 1.0' in text
    assert 'rag_index_errors_total{endpoint="/v1/search",status="401"} 1.0' in text
    assert 'rag_index_request_duration_seconds_bucket{endpoint="/v1/search",le="+Inf"} 3.0' in text
    assert "rag_index_search_batch_size_count 1.0" in text and "rag_index_search_batch_size_sum 4.0" in text
    assert "rag_index_size 200.0" in text


def test_openapi_schema_describes_the_api(client):
    schema = client.get("/openapi.json").json()
    search = schema["paths"]["/v1/search"]["post"]
    assert set(search["responses"]) >= {"200", "401", "413", "422", "503"}
    assert search["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SearchResponse")
    req = schema["components"]["schemas"]["SearchRequest"]["properties"]
    assert req["k"]["maximum"] == 50 and req["queries"]["maxItems"] == 16
    assert req["queries"]["items"]["minItems"] == DIM == req["queries"]["items"]["maxItems"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"/v1/info", "/v1/passages", "/v1/vectors", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    # What the endpoint returns validates against the model the schema was made from.
    models = client.app.state.models
    body = client.post("/v1/search", headers=AUTH, json={"queries": [[1.0] * DIM], "k": 2, "with_vectors": True,
                                                         "with_passages": True}).json()
    models["SearchResponse"].model_validate(body)
    models["InfoResponse"].model_validate(client.get("/v1/info", headers=AUTH).json())


def test_serves_a_committed_build_index_step(index_dir, tmp_path, local, queries):
    store = open_store(f"file://{tmp_path}/store")
    manifest = commit_dir(store, StepRef("run1", "build-index"), index_dir)
    uri = f"file://{tmp_path}/store/runs/run1/build-index"
    source = IndexSource(uri, cache_dir=tmp_path / "cache")
    with TestClient(create_app(source)) as c:
        wait_ready(c)
        info = c.get("/v1/info").json()
        assert info["index_id"] == f"run1/build-index@{manifest.attempt}" and info["source"] == uri
        res = c.post("/v1/search", json={"queries": queries[:3].tolist(), "k": 4}).json()
        assert res["ids"] == local.search(queries[:3], 4).ids
    # A file changed in the store after the commit is refused; the service reports it and never serves it.
    key = manifest.files["index.faiss"].key
    path = tmp_path / "store" / key
    path.write_bytes(path.read_bytes()[:-5])
    source = IndexSource(uri, cache_dir=tmp_path / "cache2")
    with TestClient(create_app(source)) as c:
        deadline = time.monotonic() + 20
        while c.get("/readyz").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        ready = c.get("/readyz").json()
        assert ready["status"] == "failed" and "IntegrityError" in ready["detail"]


def test_bad_sources_and_settings(tmp_path, index_dir):
    with pytest.raises(DataError):
        create_app(tmp_path)  # not an index folder
    with pytest.raises(ConfigError):
        create_app("s3://bucket/prefix/not-a-step")
    with pytest.raises(ConfigError):
        create_app(index_dir, max_k=0)
    with pytest.raises(ConfigError):
        create_app(index_dir, token="  ")


def test_token_sources(tmp_path):
    f = tmp_path / "token"
    f.write_text("abc\n")
    assert read_token(f, env={}) == "abc"
    assert read_token(None, env={"RAG_JOBS_INDEX_TOKEN": "xyz"}) == "xyz"
    assert read_token(None, env={"RAG_JOBS_INDEX_TOKEN_FILE": str(f)}) == "abc"
    assert read_token(None, env={}) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError):
        read_token(tmp_path / "empty", env={})
    with pytest.raises(ConfigError):
        read_token(tmp_path / "missing", env={})


def test_entrypoint_refuses_to_listen_openly_without_a_token(index_dir, monkeypatch, capsys):
    monkeypatch.delenv("RAG_JOBS_INDEX_TOKEN", raising=False)
    monkeypatch.delenv("RAG_JOBS_INDEX_TOKEN_FILE", raising=False)
    assert main(["--index", str(index_dir), "--host", "0.0.0.0"]) == 2
    assert "no token" in capsys.readouterr().err


def test_cli_serve_command(index_dir, monkeypatch):
    from typer.testing import CliRunner

    from rag_jobs.cli import app

    monkeypatch.delenv("RAG_JOBS_INDEX_TOKEN", raising=False)
    monkeypatch.delenv("RAG_JOBS_INDEX_TOKEN_FILE", raising=False)
    runner = CliRunner()
    assert "--token-file" in runner.invoke(app, ["serve", "--help"]).output
    res = runner.invoke(app, ["serve", "--index", str(index_dir), "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "no token" in res.output
    calls = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.update(app=app, **kw))
    res = runner.invoke(app, ["serve", "--index", str(index_dir), "--port", "8123"])
    assert res.exit_code == 0, res.output
    assert calls["port"] == 8123 and calls["host"] == "127.0.0.1"
