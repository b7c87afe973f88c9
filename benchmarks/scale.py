"""The index at scale: store bytes, time to ready and memory of 1 and 8 loaders, search latency; at two sizes,
extrapolated to the paper's 29.9M passages.

For each size N: a synthetic corpus of N passages (~700 characters of pseudo-words, seeded) is written as
JSONL and indexed through the real CLI (`rag-jobs run index --corpus jsonl:... --index-shards 4`) with a
fast embedder (a sentence-transformers StaticEmbedding built from MiniLM's token embeddings: 384 dimensions,
like MiniLM), float16 vectors, once as Flat and once as IVF-PQ (the paper's IVF65536,PQ64 at a reduced size,
IVF1024,PQ16; the second run reuses the corpus and the shards). Then loader processes open the IVF-PQ store
as a training step does (`load_index`, memory-mapped) and use it: 20 searches of 32 queries with vectors,
vectors of 10,000 ids, texts of 1,000 ids, and a read of every frozen vector (the most a step touches).
Memory is read from /proc/<pid>/smaps_rollup after the imports and after the work, in 1 process and in 8 at
once (all measured while all 8 hold the store). The per-passage slope between the two sizes is extrapolated
to 29,913,202 passages.

    python benchmarks/scale.py                          # 250,000 and 1,000,000 passages (~25 min here)
    python benchmarks/scale.py --sizes 20000,80000      # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

PAPER_N = 29_913_202
GIB = 1024**3
GOALS = {"store_gib": 60.0, "private_gib": 1.5, "ready_s": 60.0, "pss_ratio_8": 1.5}


def make_corpus(path: Path, n: int, seed: int = 0) -> None:
    """N passages of ~700 characters of pseudo-words (Zipf-distributed, so some words are common)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkqjxz"))
    vocab = ["".join(rng.choice(letters, size=rng.integers(2, 10))) for _ in range(30_000)]
    words_per = 100
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, 10_000):
            m = min(10_000, n - start)
            picks = np.minimum(rng.zipf(1.2, size=(m, words_per)), len(vocab)) - 1
            for j in range(m):
                text = " ".join(vocab[w] for w in picks[j])[:700]
                f.write(json.dumps({"id": f"syn{start + j}_0", "title": f"Article {start + j}", "text": text}) + "\n")


def static_embedder(folder: Path) -> Path:
    """A StaticEmbedding over MiniLM's token embeddings (mean of token vectors): MiniLM's width, ~100x faster."""
    if (folder / "modules.json").exists():
        return folder
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding

    from rag_jobs.models import load_embedder

    minilm = load_embedder("minilm", device="cpu")
    transformer = minilm[0]
    weights = transformer.auto_model.embeddings.word_embeddings.weight.detach().cpu().numpy()
    static = StaticEmbedding(transformer.tokenizer.backend_tokenizer, embedding_weights=weights)
    SentenceTransformer(modules=[static]).save(str(folder))
    return folder


def run_index(store: Path, corpus: Path, embedder: Path, factory: str, params: str, shards: int) -> dict:
    cmd = [sys.executable, "-m", "rag_jobs.cli", "run", "index", "--store", str(store), "--corpus",
           f"jsonl:{corpus}", "--embedder", str(embedder), "--index-shards", str(shards), "--parallel", "2",
           "--device", "cpu", "--set", f"index_factory={factory}", "--set", "index_vectors=float16",
           "--set", "data.corpus_shard_rows=250000"]
    if params:
        cmd += ["--set", f"index_search_params={params}"]
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    manifests = {}
    for m in store.glob("runs/*/*/_MANIFEST.json"):
        data = json.loads(m.read_text())
        if data["extra"].get("kind") == "build-index" and data["extra"]["config"].get("shard") is None \
                and data["extra"]["config"].get("index_factory", "Flat") == factory:
            manifests["index"] = (m.parent / data["attempt"], data)
    index_dir, manifest = manifests["index"]
    corpus_ref = manifest["inputs"]["corpus"]
    corpus_manifest = json.loads((store / "runs" / index_dir.parts[-3] / corpus_ref["step"] / "_MANIFEST.json")
                                 .read_text())
    corpus_dir = store / corpus_manifest["files"]["corpus.json"]["key"].rsplit("/", 1)[0]  # a reused step's files
    shard_s = [json.loads(m.read_text())["wall_s"] for m in (store / "runs" / index_dir.parts[-3]).glob(
        "index-shard.*/_MANIFEST.json")]
    return {"wall_s": wall, "index_dir": str(index_dir), "corpus_dir": str(corpus_dir), "shard_encode_s": shard_s,
            "merge_s": manifest["wall_s"],
            "index_bytes": sum(e["size"] for e in manifest["files"].values()),
            "corpus_bytes": sum(e["size"] for e in corpus_manifest["files"].values()),
            "files": {name: e["size"] for name, e in manifest["files"].items()}}


LOADER = r"""
import json, os, sys, time
import numpy as np
def rollup():
    out = {}
    for line in open("/proc/self/smaps_rollup"):
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith(":") and parts[2] == "kB":
            out[parts[0][:-1]] = int(parts[1]) * 1024
    return {"rss": out["Rss"], "pss": out["Pss"], "uss": out["Private_Clean"] + out["Private_Dirty"],
            "anon": out.get("Anonymous", 0)}
import faiss, pyarrow
from rag_jobs.index import load_index
index_dir, corpus_dir, tag, barrier, count = sys.argv[1:6]
base = rollup()
t = time.perf_counter()
r = load_index(index_dir, corpus_dir)
ready_s = time.perf_counter() - t
after_load = rollup()
rng = np.random.default_rng(int(tag))
n = len(r)
lat = []
for i in range(21):
    q = rng.standard_normal((32, r.dim)).astype(np.float32)
    t = time.perf_counter(); r.search(q, 5, with_vectors=True); lat.append(time.perf_counter() - t)
ids = r.store.ids_at(rng.integers(0, n, 10_000))
t = time.perf_counter(); r.vectors_for(ids); by_id_s = time.perf_counter() - t
t = time.perf_counter(); r.passages(ids[:1000]); texts_s = time.perf_counter() - t
for lo in range(0, n, 8192):  # fixed-size chunks: the temporaries do not grow with n
    float(np.asarray(r.vectors[lo:lo + 8192], dtype=np.float32).sum())
open(os.path.join(barrier, f"{tag}.ready"), "w").close()
while len([f for f in os.listdir(barrier) if f.endswith(".ready")]) < int(count):
    time.sleep(0.05)
time.sleep(0.5)
mem = rollup()
print(json.dumps({"ready_s": ready_s, "base": base, "after_load": after_load, "after_work": mem,
                  "search_ms_p50": 1000 * float(np.median(lat[1:])), "vectors_10k_ids_s": by_id_s,
                  "texts_1k_ids_s": texts_s}))
open(os.path.join(barrier, f"{tag}.done"), "w").close()
while len([f for f in os.listdir(barrier) if f.endswith(".done")]) < int(count):
    time.sleep(0.05)
"""


def loaders(index_dir: str, corpus_dir: str, count: int, work: Path) -> list[dict]:
    import shutil

    barrier = work / f"barrier-{count}"
    shutil.rmtree(barrier, ignore_errors=True)
    barrier.mkdir(parents=True)
    procs = [subprocess.Popen([sys.executable, "-c", LOADER, index_dir, corpus_dir, str(i), str(barrier), str(count)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(count)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise SystemExit(f"loader failed: {stderr[-2000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def search_latency(index_dir: str, corpus_dir: str) -> float:
    code = ("import sys, time, numpy as np\nfrom rag_jobs.index import load_index\n"
            "r = load_index(sys.argv[1], sys.argv[2]); rng = np.random.default_rng(0); lat = []\n"
            "for i in range(11):\n    q = rng.standard_normal((32, r.dim)).astype(np.float32)\n"
            "    t = time.perf_counter(); r.search(q, 5); lat.append(time.perf_counter() - t)\n"
            "print(1000 * float(np.median(lat[1:])))")
    res = subprocess.run([sys.executable, "-c", code, index_dir, corpus_dir], capture_output=True, text=True,
                         check=True)
    return float(res.stdout.strip().splitlines()[-1])


def first_load_s(index_dir: str, corpus_dir: str, cache: Path) -> float:
    """load_index with no digest remembered (a fresh cache): what verifying the files once costs (on a pod
    this happens while they are downloaded)."""
    code = ("import sys, time\nfrom rag_jobs.index import load_index\nt = time.perf_counter()\n"
            "load_index(sys.argv[1], sys.argv[2])\nprint(time.perf_counter() - t)")
    env = {**os.environ, "RAG_JOBS_CACHE": str(cache)}
    res = subprocess.run([sys.executable, "-c", code, index_dir, corpus_dir], capture_output=True, text=True,
                         check=True, env=env)
    return float(res.stdout.strip().splitlines()[-1])


def measure(n: int, work: Path, embedder: Path, shards: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"corpus-{n}.jsonl"
    if not corpus.exists():
        t = time.perf_counter()
        make_corpus(corpus, n)
        print(f"[{n}] corpus written in {time.perf_counter() - t:.0f}s", flush=True)
    store = work / f"store-{n}"
    flat = run_index(store, corpus, embedder, "Flat", "", shards)
    print(f"[{n}] Flat index in {flat['wall_s']:.0f}s", flush=True)
    ivf = run_index(store, corpus, embedder, "IVF1024,PQ16", "nprobe=16", shards)
    print(f"[{n}] IVF-PQ index in {ivf['wall_s']:.0f}s (corpus and shards reused)", flush=True)
    import shutil

    shutil.rmtree(work / "fresh-cache", ignore_errors=True)
    verify_s = first_load_s(ivf["index_dir"], ivf["corpus_dir"], work / "fresh-cache")
    search_latency(ivf["index_dir"], ivf["corpus_dir"])  # digests remembered in this run's cache
    one = loaders(ivf["index_dir"], ivf["corpus_dir"], 1, work)[0]
    eight = loaders(ivf["index_dir"], ivf["corpus_dir"], 8, work)

    def delta(m: dict, key: str) -> int:
        return m["after_work"][key] - m["base"][key]

    result = {
        "n": n,
        "flat": {k: flat[k] for k in ("wall_s", "merge_s", "index_bytes", "files")},
        "ivfpq": {k: ivf[k] for k in ("wall_s", "merge_s", "index_bytes", "files")},
        "corpus_bytes": ivf["corpus_bytes"],
        "first_load_s": verify_s,
        "shard_encode_s": ivf["shard_encode_s"],
        "store_bytes_ivfpq": ivf["index_bytes"] + ivf["corpus_bytes"],
        "search_ms_batch32": {"Flat": search_latency(flat["index_dir"], flat["corpus_dir"]),
                              "IVF1024,PQ16 nprobe=16": one["search_ms_p50"]},
        "one": {"ready_s": one["ready_s"], "uss_delta": delta(one, "uss"), "pss_delta": delta(one, "pss"),
                "anon_delta": delta(one, "anon"), "rss_delta": delta(one, "rss"), "base_pss": one["base"]["pss"],
                "load_uss_delta": one["after_load"]["uss"] - one["base"]["uss"],
                "load_anon_delta": one["after_load"]["anon"] - one["base"]["anon"],
                "vectors_10k_ids_s": one["vectors_10k_ids_s"], "texts_1k_ids_s": one["texts_1k_ids_s"]},
        "eight": {"ready_s_max": max(m["ready_s"] for m in eight),
                  "uss_delta_max": max(delta(m, "uss") for m in eight),
                  "anon_delta_max": max(delta(m, "anon") for m in eight),
                  "pss_delta_sum": sum(delta(m, "pss") for m in eight)},
    }
    result["pss_ratio_8"] = result["eight"]["pss_delta_sum"] / max(result["one"]["pss_delta"], 1)
    print(f"[{n}] {json.dumps(result['one'])}", flush=True)
    return result


def extrapolate(a: dict, b: dict, get, n: int = PAPER_N) -> float:
    slope = (get(b) - get(a)) / (b["n"] - a["n"])
    return get(b) + slope * (n - b["n"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250000,1000000", help="two corpus sizes (passages)")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--work", default="/tmp/rag-jobs-scale")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    if len(sizes) != 2:
        raise SystemExit("--sizes takes two sizes")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAG_JOBS_CACHE", str(work / "cache"))
    embedder = static_embedder(work / "static-minilm")
    a, b = (measure(n, work / str(n), embedder, args.shards) for n in sizes)
    at = {
        "store_gib": extrapolate(a, b, lambda r: r["store_bytes_ivfpq"]) / GIB,
        "index_gib": extrapolate(a, b, lambda r: r["ivfpq"]["index_bytes"]) / GIB,
        "corpus_gib": extrapolate(a, b, lambda r: r["corpus_bytes"]) / GIB,
        "private_gib": extrapolate(a, b, lambda r: r["eight"]["uss_delta_max"]) / GIB,
        "private_gib_one_loader": extrapolate(a, b, lambda r: r["one"]["uss_delta"]) / GIB,
        "anon_gib_one_loader": extrapolate(a, b, lambda r: r["one"]["anon_delta"]) / GIB,
        "ready_s": extrapolate(a, b, lambda r: r["eight"]["ready_s_max"]),
        "pss_one_gib": extrapolate(a, b, lambda r: r["one"]["pss_delta"]) / GIB,
        "pss_eight_gib": extrapolate(a, b, lambda r: r["eight"]["pss_delta_sum"]) / GIB,
        "flat_search_ms": extrapolate(a, b, lambda r: r["search_ms_batch32"]["Flat"]),
        "merge_s_ivfpq": extrapolate(a, b, lambda r: r["ivfpq"]["merge_s"]),
        "first_load_s": extrapolate(a, b, lambda r: r["first_load_s"]),
    }
    at["pss_ratio_8"] = at["pss_eight_gib"] / at["pss_one_gib"]
    goals = {k: {"goal": v, "extrapolated": at[k], "met": at[k] <= v} for k, v in GOALS.items()}
    vec_bytes = lambda r: r["ivfpq"]["files"]["vectors.npy"]  # noqa: E731
    mpnet_store = at["store_gib"] + extrapolate(a, b, vec_bytes) / GIB  # 768 dimensions: the vectors twice over
    result = {
        "sizes": [a, b],
        "at_29.9M": at,
        "goals": goals,
        "mpnet_768d_store_gib": mpnet_store,
        "notes": ("private = USS (Private_Clean + Private_Dirty) of a loader beyond its imports while 8 loaders "
                  "map the store (file pages shared, so not private); with one loader the pages it alone maps "
                  "count as Private_Clean (reclaimable page cache): see private_gib_one_loader and anon. "
                  "ready = load_index with digests remembered at fetch. store = index step + corpus step."),
        "today_before_format_2": {"store_gib": 107, "private_gib": 75, "ready_s": 540, "pss_ratio_8": 8},
    }
    path = write_result("scale", result, args.out)
    print(json.dumps(goals, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
