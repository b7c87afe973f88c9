"""Answers through POST /v1/answer of `rag-jobs serve --pipeline` against the run's own evaluation.

Exports one strategy of a finished run (default: the newest run in .rag-jobs/store, e.g. `make demo`'s
baseline), serves the bundle with `python -m rag_jobs.index.service --pipeline BUNDLE` in a subprocess (bearer
auth on, as deployed) and asks every question of the strategy's evaluate step, one request at a time, then
from several concurrent clients. Reported: EM/F1 of the endpoint's answers next to the run's, how many answers
and source lists equal the evaluate step's predictions, latency p50/p95, answers/s, the time from start
to ready (index and models loaded) and the server's peak resident memory.

    python benchmarks/answer_service.py [--run .rag-jobs/store/runs/<id>] [--strategy NAME] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), MB: what the chart's pipeline.resources must hold."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _percentiles(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"p50_s": round(float(np.percentile(a, 50)), 3), "p95_s": round(float(np.percentile(a, 95)), 3)}


async def _ask_all(url: str, token: str, questions: list[str], clients: int) -> tuple[list[dict], list[float], float]:
    import httpx

    out: list[dict | None] = [None] * len(questions)
    latencies: list[float] = []
    queue = list(enumerate(questions))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            i, q = queue.pop(0)
            t0 = time.perf_counter()
            res = await client.post(url + "/v1/answer", json={"question": q}, timeout=600)
            latencies.append(time.perf_counter() - t0)
            res.raise_for_status()
            out[i] = res.json()

    t0 = time.perf_counter()
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return out, latencies, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="<store>/runs/<run-id> (default: the newest in .rag-jobs/store)")
    ap.add_argument("--strategy", default=None)
    ap.add_argument("--limit", type=int, default=None, help="ask at most this many questions")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients of the second pass")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import httpx

    from rag_jobs.artifacts import StepRef, read_manifest
    from rag_jobs.bundle import export
    from rag_jobs.cli.common import open_run_graph
    from rag_jobs.core.metrics import exact_match, f1, mean

    run = args.run
    if run is None:
        runs = sorted((REPO / ".rag-jobs" / "store" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
        run = str(runs[-1])
    store, _ref, graph = open_run_graph(run)
    work = Path(tempfile.mkdtemp(prefix="answer-bench-"))
    t0 = time.perf_counter()
    desc = export(store, graph, work / "bundle", strategy=args.strategy)
    export_s = time.perf_counter() - t0
    ev = read_manifest(store, StepRef(graph.run_id, desc["run"]["evaluate"]))
    preds = [json.loads(x) for x in store.get_bytes(ev.files["predictions.jsonl"].key).decode().splitlines()]
    preds = preds[: args.limit] if args.limit else preds

    token, port = secrets.token_hex(16), _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RAG_JOBS_INDEX_TOKEN": token}
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "rag_jobs.index.service", "--pipeline", str(work / "bundle"),
                               "--port", str(port), "--pipeline-device", "cpu", "--log-level", "warning"], env=env)
    try:
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.perf_counter() - t0 > 900:
                raise SystemExit("the pipeline service did not become ready")
            time.sleep(0.2)
        ready_s = time.perf_counter() - t0
        questions = [p["question"] for p in preds]
        serial, serial_lat, serial_wall = asyncio.run(_ask_all(url, token, questions, 1))
        _, conc_lat, conc_wall = asyncio.run(_ask_all(url, token, questions, args.clients))
        metrics_text = httpx.get(url + "/metrics").text
        peak_rss = _peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)

    same_answer = sum(r["answer"] == p["prediction"] for r, p in zip(serial, preds))
    same_sources = sum([s["id"] for s in r["sources"]] == p["retrieved"] for r, p in zip(serial, preds))
    em_endpoint = mean(exact_match(r["answer"], p["answers"]) for r, p in zip(serial, preds))
    f1_endpoint = mean(f1(r["answer"], p["answers"]) for r, p in zip(serial, preds))
    em_run = mean(exact_match(p["prediction"], p["answers"]) for p in preds)
    f1_run = mean(f1(p["prediction"], p["answers"]) for p in preds)
    errors = [line for line in metrics_text.splitlines()  # /readyz answers 503 while loading, as it should
              if line.startswith('rag_index_errors_total{endpoint="/v1/answer"')]
    result = {
        "run": graph.run_id, "strategy": desc["strategy"], "questions": len(preds),
        "bundle_mb": round(desc["bytes"] / 1e6, 1), "export_s": round(export_s, 1),
        "ready_s": round(ready_s, 1), "server_peak_rss_mb": peak_rss,
        "em": {"endpoint": round(100 * em_endpoint, 2), "run": round(100 * em_run, 2)},
        "f1": {"endpoint": round(100 * f1_endpoint, 2), "run": round(100 * f1_run, 2)},
        "same_answer_as_run": same_answer, "same_sources_as_run": same_sources,
        "serial": {"answers_per_s": round(len(preds) / serial_wall, 3), **_percentiles(serial_lat)},
        f"concurrent_{args.clients}": {"answers_per_s": round(len(preds) / conc_wall, 3), **_percentiles(conc_lat)},
        "answer_errors": errors,
        "note": "one generation at a time (the service queues answers); the run's evaluate step generates in "
                "batches of 8, so an answer may differ from its prediction where padding changes a greedy tie",
    }
    write_result("answer_service", result, args.out)


if __name__ == "__main__":
    main()
