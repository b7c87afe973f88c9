"""Passages/s of `build-index` against plain SentenceTransformer.encode + faiss.IndexFlatIP.add.

Both run in this process on the same passages, alternating, best of `--repeats`. Goal: ratio >= 1.0.

    python benchmarks/index_build.py --dataset demo --n 2000
    python benchmarks/index_build.py --dataset hotpotqa:../shared/data/hotpotqa_dev_sample.jsonl --n 1000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="demo")
    ap.add_argument("--n", type=int, default=2000, help="passages")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import faiss
    import numpy as np

    from rag_jobs.data import load_dataset
    from rag_jobs.index import build_index
    from rag_jobs.models import load_embedder

    passages = load_dataset(args.dataset).corpus[: args.n]
    texts = [p.content for p in passages]
    model = load_embedder(args.embedder, device="cpu")
    model.encode(texts[:64])  # warm-up

    def ours() -> float:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            build_index(passages, model, Path(d), embedder_name=args.embedder, batch_size=args.batch_size)
            return time.perf_counter() - t

    def plain() -> float:
        t = time.perf_counter()
        vecs = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(np.ascontiguousarray(vecs, dtype=np.float32))
        return time.perf_counter() - t

    ours_s, plain_s = [], []
    for _ in range(args.repeats):
        plain_s.append(plain())
        ours_s.append(ours())
    ours_rate = len(passages) / min(ours_s)
    plain_rate = len(passages) / min(plain_s)
    write_result("index_build", {
        "dataset": args.dataset, "passages": len(passages), "embedder": args.embedder,
        "build_index_passages_per_s": ours_rate, "plain_passages_per_s": plain_rate,
        "ratio": ours_rate / plain_rate, "goal": ">= 1.0", "met": ours_rate / plain_rate >= 1.0,
        "build_index_s": ours_s, "plain_s": plain_s,
        "note": "build-index also writes index.faiss, vectors.npy, passages.jsonl and their sha256",
    }, args.out)


if __name__ == "__main__":
    main()
