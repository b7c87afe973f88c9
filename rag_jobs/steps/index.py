"""The build-index step's work: the corpus, and for a sharded build each shard's vectors and their merge.

Sharded (`shards` > 1): step `index-shard.<i>` encodes slice i of the corpus and commits its vectors; `build-index`
then merges the slices in corpus order into one index, so many GPUs (an Indexed Job) encode a large corpus.
"""

from __future__ import annotations

import json
import time

import numpy as np

from rag_jobs.corpus.shards import CorpusShards
from rag_jobs.data.records import Passage
from rag_jobs.errors import IntegrityError
from rag_jobs.index import encode_texts
from rag_jobs.index.faiss_index import write_index
from rag_jobs.jobs.common import StepContext
from rag_jobs.models import load_embedder
from rag_jobs.progress import Progress

SHARD_VECTORS = "shard_vectors.npy"
SHARD_IDS = "shard_ids.json"


def shard_bounds(n: int, shards: int, i: int) -> tuple[int, int]:
    """Rows [lo, hi) of slice i when n rows are cut into `shards` contiguous slices of near-equal size."""
    return n * i // shards, n * (i + 1) // shards


def open_corpus(ctx: StepContext) -> CorpusShards:
    """The committed corpus this index is built from (rows are read only where asked)."""
    return CorpusShards(ctx.input_dir("corpus"))


def encode_shard(ctx: StepContext, corpus: CorpusShards) -> dict:
    cfg = ctx.cfg
    lo, hi = shard_bounds(len(corpus), cfg.shards, cfg.shard)
    part = corpus.passages(lo, hi)
    ctx.log(f"shard {cfg.shard + 1}/{cfg.shards}: passages {lo}..{hi - 1} of {len(corpus)}")
    model = load_embedder(cfg.embedder, device=ctx.device)
    t0 = time.perf_counter()
    vectors = encode_texts(model, [p.content for p in part], batch_size=cfg.batch_size,
                           progress=Progress(ctx.label, "encoded", len(part), unit="passages"))
    encode_s = time.perf_counter() - t0
    np.save(ctx.out_dir / SHARD_VECTORS, vectors)
    (ctx.out_dir / SHARD_IDS).write_text(json.dumps([p.id for p in part]), encoding="utf-8")
    return {"passages": len(part), "shard": cfg.shard, "shards": cfg.shards, "encode_s": encode_s,
            "passages_per_s": len(part) / max(encode_s, 1e-9)}


def merge_shards(ctx: StepContext, corpus: list[Passage]) -> dict:
    """Concatenate the committed slices in corpus order, checking each holds exactly the passages it should."""
    cfg = ctx.cfg
    parts, encode_s = [], 0.0
    for i in range(cfg.shards):
        role = f"shard-{i:03d}"
        folder = ctx.input_dir(role)
        lo, hi = shard_bounds(len(corpus), cfg.shards, i)
        ids = json.loads((folder / SHARD_IDS).read_text(encoding="utf-8"))
        if ids != [p.id for p in corpus[lo:hi]]:
            raise IntegrityError(f"index shard {i} does not hold passages {lo}..{hi - 1} of this corpus")
        vectors = np.load(folder / SHARD_VECTORS, allow_pickle=False)
        if vectors.shape[0] != hi - lo:
            raise IntegrityError(f"index shard {i} has {vectors.shape[0]} vectors for {hi - lo} passages")
        parts.append(vectors)
        encode_s += float(ctx.input_manifest(role).metrics.get("encode_s", 0.0))
    ctx.log(f"merging {cfg.shards} shards: {len(corpus)} passages")
    return write_index(corpus, np.concatenate(parts), ctx.out_dir, embedder_name=cfg.embedder,
                       factory=cfg.index_factory, seed=cfg.seed, encode_s=encode_s,
                       search_params=cfg.search_params)
