"""`serve --pipeline`: POST /v1/answer over an exported bundle of a finished tiny run.

The answers are the bundle's (the same as `rag-jobs ask`), through the same auth, limits, metrics and OpenAPI
schema as the rest of the service; schemathesis finds no server error; a bundle in S3 is fetched and verified;
the app is ready only when the models are, and a bundle that cannot load fails the probes instead of answering.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from service_helpers import TOKEN, ServerThread

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_jobs.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, tiny_embedder, tiny_generator):
    """A finished tiny baseline run, exported (no training: the pipeline code is the same either way)."""
    from typer.testing import CliRunner

    from rag_jobs.cli import app

    work = tmp_path_factory.mktemp("answer")
    store = work / "store"
    runner = CliRunner()  # in this process: the models' imports are paid once
    res = runner.invoke(app, ["run", "baseline", "--in-process", "--store", str(store), "--dataset", "demo",
                              "--limit", "40", "--eval-limit", "4", "--embedder", tiny_embedder, "--generator",
                              tiny_generator, "--device", "cpu"])
    assert res.exit_code == 0, res.output[-3000:]
    (run,) = list((store / "runs").iterdir())
    res = runner.invoke(app, ["export", str(run), "--out", str(work / "bundle")])
    assert res.exit_code == 0, res.output[-3000:]
    ev = json.loads((run / "evaluate" / "_MANIFEST.json").read_text())
    preds = [json.loads(x) for x in (store / ev["files"]["predictions.jsonl"]["key"]).read_text().splitlines()]
    return {"folder": work / "bundle", "run": run, "predictions": preds}


def _wait_ready(url: str, timeout: float = 120) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = httpx.get(url + "/readyz", timeout=5)
        if res.status_code == 200 or res.json()["status"] == "failed":
            return res
        time.sleep(0.1)
    raise AssertionError("the pipeline did not become ready")


class _Server(ServerThread):
    """ServerThread that returns once uvicorn listens (readiness waits for the models: tested here)."""

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.02)
        raise AssertionError("uvicorn did not start")


@pytest.fixture(scope="module")
def answering(bundle):
    from rag_jobs.index.service import create_app

    app = create_app(pipeline=str(bundle["folder"]), pipeline_device="cpu", token=TOKEN, max_k=20,
                     max_question_chars=300, max_body_bytes=64_000)
    with _Server(app) as server:
        assert _wait_ready(server.url).status_code == 200
        yield server


def test_answer_is_the_bundles_answer_with_its_sources(bundle, answering):
    from rag_jobs.bundle import Pipeline

    questions = [p["question"] for p in bundle["predictions"][:2]]
    local = Pipeline(bundle["folder"], device="cpu")
    for q, pred in zip(questions, bundle["predictions"]):
        res = httpx.post(answering.url + "/v1/answer", json={"question": q}, headers=AUTH, timeout=60)
        assert res.status_code == 200, res.text
        body = res.json()
        (want,) = local.ask([q])
        assert body["answer"] == want["answer"] and body["question"] == q and body["strategy"] == "No Ft."
        assert [s["id"] for s in body["sources"]] == pred["retrieved"]  # the run's query encoder and index
        assert [s["score"] for s in body["sources"]] == pytest.approx([s["score"] for s in want["sources"]])
        assert all(s["text"] is None for s in body["sources"])
    res = httpx.post(answering.url + "/v1/answer", json={"question": questions[0], "k": 2, "with_passages": True},
                     headers=AUTH, timeout=60)
    assert res.status_code == 200 and len(res.json()["sources"]) == 2
    texts = {p.id: p.text for p in local.retriever.passages([s["id"] for s in res.json()["sources"]])}
    assert [s["text"] for s in res.json()["sources"]] == [texts[s["id"]] for s in res.json()["sources"]]

    info = httpx.get(answering.url + "/v1/info", headers=AUTH).json()
    assert info["pipeline"]["strategy"] == "No Ft." and info["pipeline"]["ready"] is True
    assert info["pipeline"]["run_id"] == bundle["run"].name
    metrics = httpx.get(answering.url + "/metrics").text
    assert "rag_pipeline_ready 1.0" in metrics and "rag_answer_seconds_count 3.0" in metrics
    assert 'rag_index_requests_total{endpoint="/v1/answer",method="POST",status="200"} 3.0' in metrics


@pytest.mark.parametrize(("body", "status"), [
    ({"question": "   "}, 422), ({"question": ""}, 422), ({"question": "x" * 301}, 422), ({"question": 5}, 422),
    ({"question": "q", "k": 0}, 422), ({"question": "q", "k": 21}, 422), ({"question": "q", "extra": 1}, 422),
    ({}, 422),
])
def test_bad_questions_are_refused(answering, body, status):
    res = httpx.post(answering.url + "/v1/answer", json=body, headers=AUTH, timeout=30)
    assert res.status_code == status, res.text


def test_answer_needs_the_token_and_refuses_a_lone_surrogate(answering):
    assert httpx.post(answering.url + "/v1/answer", json={"question": "q"}, timeout=30).status_code == 401
    raw = b'{"question": "who \\ud800?"}'  # valid JSON, not encodable text
    res = httpx.post(answering.url + "/v1/answer", content=raw, timeout=30,
                     headers={**AUTH, "Content-Type": "application/json"})
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["body", "question"]


def test_answers_beyond_the_queue_limit_get_503_with_retry_after(bundle):
    import threading

    from rag_jobs.index.service import create_app

    app = create_app(pipeline=str(bundle["folder"]), pipeline_device="cpu", token=TOKEN, max_answers_queued=1)
    with _Server(app) as server:
        assert _wait_ready(server.url).status_code == 200
        pipeline, release = app.state.pipeline.pipeline, threading.Event()
        real_ask = pipeline.ask
        pipeline.ask = lambda *a, **kw: (release.wait(30), real_ask(*a, **kw))[1]  # hold the generator
        first: list = []
        t = threading.Thread(target=lambda: first.append(httpx.post(
            server.url + "/v1/answer", json={"question": "who?"}, headers=AUTH, timeout=60)))
        t.start()
        deadline = time.monotonic() + 20
        while "rag_answers_queued 1.0" not in httpx.get(server.url + "/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = httpx.post(server.url + "/v1/answer", json={"question": "who?"}, headers=AUTH, timeout=30)
        assert second.status_code == 503 and "queued" in second.json()["detail"] and second.headers["Retry-After"]
        assert httpx.post(server.url + "/v1/search", json={"queries": [[0.0] * app.state.index.meta["dim"]]},
                          headers=AUTH, timeout=30).status_code == 200  # search is not held up by answers
        release.set()
        t.join(60)
        assert first[0].status_code == 200


def test_answer_conforms_to_its_schema(answering):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(answering.url + "/openapi.json")
    (op,) = [r.ok() for r in schema.get_all_operations() if r.ok().path == "/v1/answer"]
    for mode in ("positive", "negative"):
        @given(case=op.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            case.call_and_validate(headers=AUTH, timeout=60)

        check()
    assert 'status="500"' not in httpx.get(answering.url + "/metrics").text


def test_a_bundle_in_s3_is_fetched_verified_and_served(bundle, s3_env, tmp_path, monkeypatch):
    import boto3

    from rag_jobs.artifacts import open_store
    from rag_jobs.bundle import bundle_description, open_bundle, publish
    from rag_jobs.errors import DataError, IntegrityError
    from rag_jobs.index.service import create_app

    boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1").create_bucket(Bucket="bundles")
    uri = "s3://bundles/team/no-ft"
    with pytest.raises(DataError, match="holds no rag-jobs bundle"):
        bundle_description(uri)  # nothing there yet: bundle.json is the commit marker
    publish(bundle["folder"], open_store(uri))
    monkeypatch.setenv("RAG_JOBS_CACHE", str(tmp_path / "cache"))
    folder = open_bundle(uri)
    assert (folder / "bundle.json").read_text() == (bundle["folder"] / "bundle.json").read_text()
    app = create_app(pipeline=uri, pipeline_device="cpu", token=TOKEN)
    with _Server(app) as server:
        assert _wait_ready(server.url).status_code == 200
        q = bundle["predictions"][0]["question"]
        res = httpx.post(server.url + "/v1/answer", json={"question": q}, headers=AUTH, timeout=60)
        assert res.status_code == 200 and [s["id"] for s in res.json()["sources"]] == \
            bundle["predictions"][0]["retrieved"]

    weights = next(k for k in bundle_description(uri)["files"] if k.endswith(".safetensors"))
    store = open_store(uri)
    store.put_bytes(weights, b"not the weights")
    shutil.rmtree(folder)
    with pytest.raises(IntegrityError, match=r"does not match bundle\.json"):
        open_bundle(uri)


def test_a_bundle_that_cannot_load_fails_the_probes_and_answers_503(bundle, tmp_path):
    from rag_jobs.errors import ConfigError
    from rag_jobs.index.service import create_app

    broken = tmp_path / "broken"
    shutil.copytree(bundle["folder"], broken)
    for p in (broken / "generator").glob("*.safetensors"):
        p.write_bytes(b"truncated")
    with _Server(create_app(pipeline=str(broken), pipeline_device="cpu", token=TOKEN)) as server:
        res = _wait_ready(server.url)
        assert res.status_code == 503 and res.json()["status"] == "failed" and "pipeline" in res.json()["detail"]
        assert httpx.get(server.url + "/healthz").status_code == 503
        res = httpx.post(server.url + "/v1/answer", json={"question": "q"}, headers=AUTH, timeout=30)
        assert res.status_code == 503 and "failed to load" in res.json()["detail"]
        assert res.headers["Retry-After"]

    from service_helpers import LengthEmbedder

    from rag_jobs.data.records import Passage
    from rag_jobs.index import build_index

    other = tmp_path / "other-index"
    build_index([Passage("a", "A", "x y z")], LengthEmbedder(), other, embedder_name="length8")
    with pytest.raises(ConfigError, match="is not the index of pipeline"):
        create_app(other, pipeline=str(bundle["folder"]))


def test_serve_cli_without_index_or_pipeline_is_a_one_line_error(tmp_path):
    res = _cli("serve", cwd=tmp_path)
    assert res.returncode == 2 and "give --index or --pipeline" in res.stderr
    res = _cli("serve", "--pipeline", str(tmp_path / "nope"), cwd=tmp_path)
    assert res.returncode == 2 and "nope" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_the_slim_image_refuses_a_pipeline_with_the_image_to_use(monkeypatch, bundle):
    import importlib.util

    from rag_jobs.errors import ConfigError
    from rag_jobs.index.service import serve

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(ConfigError, match="rag-jobs-pipeline image"):
        serve(pipeline=str(bundle["folder"]), token=TOKEN)


def test_rag_jobs_serve_pipeline_as_a_user_runs_it(bundle, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "token").write_text(TOKEN)
    server = subprocess.Popen([sys.executable, "-m", "rag_jobs.cli", "serve", "--pipeline", str(bundle["folder"]),
                               "--port", str(port), "--token-file", str(tmp_path / "token"), "--device", "cpu",
                               "--max-question-chars", "50"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "rag-jobs serve exited or never got ready"
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pred = bundle["predictions"][0]
        res = httpx.post(url + "/v1/answer", json={"question": pred["question"]}, headers=AUTH, timeout=60)
        assert res.status_code == 200 and [s["id"] for s in res.json()["sources"]] == pred["retrieved"]
        res = httpx.post(url + "/v1/answer", json={"question": "x" * 51}, headers=AUTH, timeout=60)
        assert res.status_code == 422  # the flag's limit
    finally:
        server.terminate()
        out = server.communicate(timeout=30)[0]
    assert "pipeline" in out and "loaded" in out, out[-2000:]  # the load is logged with its time
