"""Queries/s and latency of the index service against in-process FAISS on the same queries.

An index of random unit vectors (default 100k x 384, IndexFlatIP via build_index) is served by
`python -m rag_jobs.index.service` in a subprocess (bearer auth on, as deployed); an asyncio httpx
client sends batches of 1 and 32 query vectors from 1, 8 and 32 concurrent clients. The baseline calls
FaissRetriever.search in this process on the same batches from as many threads. Reported per setting:
requests/s, queries/s, p50/p99 latency; the ratio service/in-process queries/s at batch 32; and an
overload run (4x the service's in-flight limit, no client retries) that checks every request is
answered, and only with 200, 429 or 503.

    python benchmarks/service_load.py                 # the full run (minutes)
    python benchmarks/service_load.py --quick         # a small version that checks the harness works
    python benchmarks/service_load.py --quick --max-in-flight 32   # overload = 128 clients
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

REPO = Path(__file__).resolve().parents[1]


class TableEmbedder:
    """Maps the text `row-<i>` to row i of a fixed matrix: build_index then writes exactly those vectors."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    def get_embedding_dimension(self) -> int:
        return self.vectors.shape[1]

    def encode(self, texts, **kw):
        return self.vectors[[int(t.rsplit("-", 1)[1]) for t in texts]]


def build_random_index(out: Path, n: int, dim: int, seed: int) -> None:
    from rag_jobs.data.records import Passage
    from rag_jobs.index import build_index

    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    passages = [Passage(f"p{i}", "", f"row-{i}") for i in range(n)]
    build_index(passages, TableEmbedder(vecs), out, embedder_name="random", batch_size=4096)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(index_dir: Path, token: str, max_in_flight: int, threads: int | None) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "rag_jobs.index.service", "--index", str(index_dir), "--port", str(port),
           "--max-in-flight", str(max_in_flight), "--log-level", "warning"]
    if threads:
        cmd += ["--search-threads", str(threads)]
    proc = subprocess.Popen(cmd, env={**os.environ, "RAG_JOBS_INDEX_TOKEN": token}, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited with code {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the service did not become ready")


def summarize(latencies: list[float], n_requests: int, batch: int, wall: float) -> dict:
    lat = np.asarray(latencies) * 1000.0
    return {
        "requests": n_requests,
        "requests_per_s": n_requests / wall,
        "queries_per_s": n_requests * batch / wall,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
    }


async def _load(url: str, token: str, bodies: list[bytes], concurrency: int, duration: float,
                retry_statuses: bool = False) -> dict:
    """`concurrency` clients send bodies round-robin for `duration` seconds; latency of each answer."""
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60.0) as client:
        stop = time.perf_counter() + duration

        async def worker(w: int) -> None:
            nonlocal sent
            i = w
            while time.perf_counter() < stop:
                body = bodies[i % len(bodies)]
                i += concurrency
                t0 = time.perf_counter()
                sent += 1
                try:
                    resp = await client.post("/v1/search", content=body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1
                if resp.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                elif not retry_statuses:
                    errors.append(f"HTTP {resp.status_code}: {resp.text[:200]}")

        t_start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - t_start
    return {"latencies": latencies, "statuses": statuses, "errors": errors, "sent": sent, "wall": wall}


def run_service_load(url: str, token: str, batches: list[np.ndarray], k: int, concurrency: int,
                     duration: float) -> dict:
    bodies = [json.dumps({"queries": b.tolist(), "k": k}).encode() for b in batches]
    asyncio.run(_load(url, token, bodies, concurrency, min(duration, 0.5)))  # warm-up: connections, caches
    out = asyncio.run(_load(url, token, bodies, concurrency, duration))
    if out["errors"]:
        raise SystemExit(f"service errors at concurrency {concurrency}: {out['errors'][:3]}")
    res = summarize(out["latencies"], len(out["latencies"]), len(batches[0]), out["wall"])
    return res


def run_in_process(retriever, batches: list[np.ndarray], k: int, concurrency: int, duration: float) -> dict:
    latencies: list[float] = []

    def worker(w: int) -> list[float]:
        mine, i = [], w
        stop = time.perf_counter() + duration
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            retriever.search(batches[i % len(batches)], k)
            mine.append(time.perf_counter() - t0)
            i += concurrency
        return mine

    retriever.search(batches[0], k)  # warm-up
    t_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for part in pool.map(worker, range(concurrency)):
            latencies.extend(part)
    wall = time.perf_counter() - t_start
    return summarize(latencies, len(latencies), len(batches[0]), wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="vectors in the index")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batches", default="1,32", help="query vectors per request")
    ap.add_argument("--concurrency", default="1,8,32", help="concurrent clients")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per setting")
    ap.add_argument("--max-in-flight", type=int, default=64, help="the service's limit (overload sends 4x)")
    ap.add_argument("--search-threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="5k vectors, 1 s per setting: checks the harness")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.n, args.duration = 5_000, 1.0

    from rag_jobs.index import load_index

    batch_sizes = [int(x) for x in args.batches.split(",")]
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    if args.max_in_flight < max(concurrencies):
        ap.error(f"--max-in-flight {args.max_in_flight} is under the {max(concurrencies)} clients of the runs")
    rng = np.random.default_rng(args.seed + 1)
    pool = rng.normal(size=(4096, args.dim)).astype(np.float32)
    token = secrets.token_hex(16)
    results: dict = {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        t0 = time.perf_counter()
        build_random_index(index_dir, args.n, args.dim, args.seed)
        results["build_s"] = time.perf_counter() - t0
        retriever = load_index(index_dir)
        proc, url = start_service(index_dir, token, args.max_in_flight, args.search_threads)
        try:
            for batch in batch_sizes:
                batches = [pool[(i * batch) % len(pool):][:batch] for i in range(64)]
                batches = [b if len(b) == batch else pool[:batch] for b in batches]
                for conc in concurrencies:
                    svc = run_service_load(url, token, batches, args.k, conc, args.duration)
                    local = run_in_process(retriever, batches, args.k, conc, args.duration)
                    row = {"batch": batch, "concurrency": conc, "service": svc, "in_process": local,
                           "ratio_qps": svc["queries_per_s"] / local["queries_per_s"]}
                    results["runs"].append(row)
                    print(f"batch {batch:3d} x {conc:2d} clients: service {svc['queries_per_s']:9.1f} q/s "
                          f"p50 {svc['p50_ms']:7.2f} ms p99 {svc['p99_ms']:7.2f} ms | in-process "
                          f"{local['queries_per_s']:9.1f} q/s p50 {local['p50_ms']:7.2f} ms "
                          f"| ratio {row['ratio_qps']:.3f}",
                          flush=True)
            big = [r for r in results["runs"] if r["batch"] == max(batch_sizes)]
            results["ratio_batch32"] = {str(r["concurrency"]): r["ratio_qps"] for r in big}
            results["ratio_batch32_best"] = (max(r["service"]["queries_per_s"] for r in big)
                                             / max(r["in_process"]["queries_per_s"] for r in big))
            # Overload: 4x the in-flight limit, no retries; every request must get 200/429/503.
            conc = 4 * args.max_in_flight
            bodies = [json.dumps({"queries": pool[:max(batch_sizes)].tolist(), "k": args.k}).encode()]
            over = asyncio.run(_load(url, token, bodies, conc, args.duration, retry_statuses=True))
            answered = sum(over["statuses"].values())
            allowed = set(over["statuses"]) <= {"200", "429", "503"}
            results["overload"] = {"concurrency": conc, "sent": over["sent"], "answered": answered,
                                   "statuses": over["statuses"], "transport_errors": over["errors"][:5],
                                   "only_200_429_503": allowed,
                                   "every_request_answered": answered == over["sent"] and not over["errors"],
                                   **summarize(over["latencies"], over["statuses"].get("200", 0),
                                               max(batch_sizes), over["wall"])}
            print(f"overload x{conc}: {over['statuses']} sent {over['sent']} errors {len(over['errors'])}")
            metrics = __import__("httpx").get(url + "/metrics", timeout=10).text
            results["service_errors_total"] = sum(
                float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("rag_index_errors_total{"))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    results["ok"] = bool(results["overload"]["only_200_429_503"] and results["overload"]["every_request_answered"])
    write_result("service_load_quick" if args.quick else "service_load", results, args.out)
    if not results["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
