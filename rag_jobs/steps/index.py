"""The build-index step's work: encode the corpus and write the index over it, whole or as shards and a merge.

Sharded (`shards` > 1): step `index-shard.<i>` encodes slice i of the corpus (reading only the Arrow files of
its rows) and commits its vectors; `build-index` then streams the slices in corpus order into one index:
vectors copied chunk by chunk into vectors.npy, FAISS trained on a sample and fed 65,536 rows at a time, so
memory is bounded by the index's codes, not the corpus' floats. The merge checkpoints the trained index and
every million rows added into the store, so a killed merge resumes where it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from rag_jobs.corpus.shards import CORPUS_META, CorpusShards
from rag_jobs.errors import IntegrityError
from rag_jobs.index import encode_texts
from rag_jobs.index.faiss_index import embedding_dim, write_store
from rag_jobs.index.store import ids_digest
from rag_jobs.jobs.common import StepContext
from rag_jobs.models import load_embedder
from rag_jobs.progress import Progress

SHARD_VECTORS = "shard_vectors.npy"
ENCODE_ROWS = 200_000  # passages read and encoded at a time by an unsharded build
INDEX_CHECKPOINT = "index.faiss"


def shard_bounds(n: int, shards: int, i: int) -> tuple[int, int]:
    """Rows [lo, hi) of slice i when n rows are cut into `shards` contiguous slices of near-equal size."""
    return n * i // shards, n * (i + 1) // shards


def open_corpus(ctx: StepContext) -> CorpusShards:
    """The committed corpus this index is built from (rows are read only where asked)."""
    return CorpusShards(ctx.input_dir("corpus"))


def _encode(model, corpus: CorpusShards, lo: int, hi: int, batch_size: int, progress: Progress,
            timing: dict) -> Iterator[np.ndarray]:
    """Unit vectors of rows [lo, hi), ENCODE_ROWS passages at a time."""
    for start in range(lo, hi, ENCODE_ROWS):
        part = corpus.passages(start, min(start + ENCODE_ROWS, hi))
        t0 = time.perf_counter()
        yield encode_texts(model, [p.content for p in part], batch_size=batch_size,
                           progress=lambda done, _total, at=start - lo: progress(at + done, hi - lo))
        timing["encode_s"] = timing.get("encode_s", 0.0) + time.perf_counter() - t0


def encode_shard(ctx: StepContext, corpus: CorpusShards) -> dict:
    cfg = ctx.cfg
    lo, hi = shard_bounds(len(corpus), cfg.shards, cfg.shard)
    ctx.log(f"shard {cfg.shard + 1}/{cfg.shards}: passages {lo}..{hi - 1} of {len(corpus)}")
    model = load_embedder(cfg.embedder, device=ctx.device)
    dim = embedding_dim(model)
    out = np.lib.format.open_memmap(ctx.out_dir / SHARD_VECTORS, mode="w+", dtype=np.float32, shape=(hi - lo, dim))
    timing: dict = {}
    at = 0
    for vecs in _encode(model, corpus, lo, hi, cfg.batch_size,
                        Progress(ctx.label, "encoded", hi - lo, unit="passages"), timing):
        out[at : at + len(vecs)] = vecs
        at += len(vecs)
    out.flush()
    del out
    encode_s = timing.get("encode_s", 0.0)
    return {"passages": hi - lo, "shard": cfg.shard, "shards": cfg.shards, "encode_s": encode_s,
            "passages_per_s": (hi - lo) / max(encode_s, 1e-9), "ids_sha256": ids_digest(corpus.id_batches(lo, hi))}


def _corpus_ref(ctx: StepContext) -> dict:
    m = ctx.input_manifest("corpus")
    key = m.files[CORPUS_META].key  # where the files are in the store (a reused step's are in an older run)
    return {"run_id": m.run_id, "step": m.step, "attempt": m.attempt, "key_prefix": key.rsplit("/", 1)[0]}


def build_whole(ctx: StepContext, corpus: CorpusShards) -> dict:
    """Encode the whole corpus in this step and write the index over it."""
    cfg = ctx.cfg
    model = load_embedder(cfg.embedder, device=ctx.device)
    dim = embedding_dim(model)
    progress = Progress(ctx.label, "encoded", len(corpus), unit="passages")
    timing: dict = {}
    meta = write_store(corpus, ctx.out_dir, lambda: _encode(model, corpus, 0, len(corpus), cfg.batch_size, progress,
                                                            timing),
                       int(dim), embedder_name=cfg.embedder, factory=cfg.index_factory, seed=cfg.seed,
                       encode_s=lambda: timing.get("encode_s", 0.0), search_params=cfg.search_params,
                       vectors_dtype=cfg.vectors, corpus_ref=_corpus_ref(ctx))
    return meta


def merge_shards(ctx: StepContext, corpus: CorpusShards) -> dict:
    """Stream the committed slices, in corpus order, into one index; each must hold exactly its rows."""
    from rag_jobs.steps.training import StoreCheckpoints

    cfg = ctx.cfg
    n = len(corpus)
    folders, encode_s, dim = [], 0.0, None
    for i in range(cfg.shards):
        role = f"shard-{i:03d}"
        lo, hi = shard_bounds(n, cfg.shards, i)
        metrics = ctx.input_manifest(role).metrics
        if metrics.get("ids_sha256") != ids_digest(corpus.id_batches(lo, hi)):
            raise IntegrityError(f"index shard {i} does not hold passages {lo}..{hi - 1} of this corpus")
        folder = ctx.input_dir(role)
        vectors = np.load(folder / SHARD_VECTORS, mmap_mode="r", allow_pickle=False)
        if vectors.shape[0] != hi - lo or (dim is not None and vectors.shape[1] != dim):
            raise IntegrityError(f"index shard {i} has vectors of shape {vectors.shape} for {hi - lo} passages")
        dim = int(vectors.shape[1])
        folders.append(folder)
        encode_s += float(metrics.get("encode_s", 0.0))

    def chunks() -> Iterator[np.ndarray]:
        for folder in folders:
            vectors = np.load(folder / SHARD_VECTORS, mmap_mode="r", allow_pickle=False)
            for start in range(0, len(vectors), 1 << 16):
                yield np.asarray(vectors[start : start + (1 << 16)])

    checkpoints = StoreCheckpoints(ctx, keep=1)
    index, added = _resume(ctx, checkpoints)

    def save(idx, rows: int) -> None:
        import faiss

        folder = ctx.work_dir / f"merge-{rows}"
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(idx, str(folder / INDEX_CHECKPOINT))
        checkpoints.save(rows, folder)

    ctx.log(f"merging {cfg.shards} shards: {n} passages" + (f", resuming after {added} added" if index else ""))
    return write_store(corpus, ctx.out_dir, chunks, dim, embedder_name=cfg.embedder, factory=cfg.index_factory,
                       seed=cfg.seed, encode_s=encode_s, search_params=cfg.search_params, vectors_dtype=cfg.vectors,
                       index=index, added=added, on_added=save, corpus_ref=_corpus_ref(ctx))


def _resume(ctx: StepContext, checkpoints) -> tuple[object | None, int]:
    """The index of the latest merge checkpoint (trained, with its first rows added), if any."""
    import faiss

    dest = ctx.work_dir / "resume"
    rows = checkpoints.latest(dest)
    if rows is None:
        return None, 0
    index = faiss.read_index(str(dest / INDEX_CHECKPOINT))
    if index.ntotal != rows:
        raise IntegrityError(f"merge checkpoint {rows} holds {index.ntotal} vectors")
    return index, rows
