"""Build, save, load and search a FAISS index of normalised passage vectors."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag_jobs.core.retrieval import l2_normalize
from rag_jobs.data.records import Passage
from rag_jobs.errors import ConfigError, DataError, IntegrityError
from rag_jobs.index.protocol import SearchResult

INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
PASSAGES_FILE = "passages.jsonl"
META_FILE = "index_meta.json"

ProgressFn = Callable[[int, int], None]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def encode_texts(
    model, texts: Sequence[str], *, batch_size: int = 64, progress: ProgressFn | None = None
) -> np.ndarray:
    """Encode texts in length-sorted batches into unit float32 vectors, in input order."""
    import torch

    n = len(texts)
    dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else (
        model.get_sentence_embedding_dimension()
    )
    out = np.empty((n, dim), dtype=np.float32)
    # Longest first: similar lengths share a batch (little padding) and memory peaks early.
    order = sorted(range(n), key=lambda i: -len(texts[i]))
    done = 0
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            emb = model.encode(
                [texts[i] for i in idx],
                batch_size=len(idx),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            out[idx] = emb
            done += len(idx)
            if progress is not None:
                progress(done, n)
    return out


def _make_index(factory: str, vectors: np.ndarray, seed: int):
    import faiss

    dim = vectors.shape[1]
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"index_factory={factory!r} is not a valid FAISS factory string: {exc}") from exc
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        n_train = training_sample_size(index, len(vectors))
        sample = vectors[rng.choice(len(vectors), size=n_train, replace=False)]
        try:
            index.train(sample)
        except RuntimeError as exc:
            raise ConfigError(f"index_factory={factory!r} cannot be trained on {n_train} vectors: {exc}") from exc
    index.add(vectors)
    return index


# k-means wants at least 39 points per centroid (FAISS warns below that and refuses below one per centroid).
POINTS_PER_CENTROID = 39
MIN_TRAINING_SAMPLE = 50_000


def training_sample_size(index, n: int) -> int:
    """Vectors an untrained index is trained on: 39 per centroid of its coarse quantizer (IVF65536 -> 2,555,904)
    and of its product quantizer's codebooks (2^nbits each), at least 50,000, at most all n."""
    import faiss

    centroids = 256
    try:
        centroids = max(centroids, faiss.extract_index_ivf(index).nlist)
    except RuntimeError:  # not an IVF index (e.g. a plain PQ)
        pass
    return min(n, max(MIN_TRAINING_SAMPLE, POINTS_PER_CENTROID * centroids))


def check_corpus(passages: Sequence[Passage]) -> None:
    if not passages:
        raise DataError("cannot build an index from an empty corpus")
    ids = [p.id for p in passages]
    if len(set(ids)) != len(ids):
        raise DataError("corpus has duplicate passage ids")


def build_index(
    passages: Sequence[Passage],
    model,
    out_dir: Path,
    *,
    embedder_name: str,
    factory: str = "Flat",
    batch_size: int = 64,
    seed: int = 0,
    progress: ProgressFn | None = None,
    search_params: str = "",
) -> dict:
    """Encode the corpus and write index.faiss, vectors.npy, passages.jsonl and index_meta.json."""
    check_corpus(passages)
    t0 = time.perf_counter()
    vectors = encode_texts(model, [p.content for p in passages], batch_size=batch_size, progress=progress)
    return write_index(passages, vectors, out_dir, embedder_name=embedder_name, factory=factory, seed=seed,
                       encode_s=time.perf_counter() - t0, search_params=search_params)


def apply_search_params(index, params: str) -> None:
    """Set FAISS search-time parameters (`nprobe=64` for IVF, `efSearch=128` for HNSW); ConfigError if unknown."""
    if not params:
        return
    import faiss

    try:
        faiss.ParameterSpace().set_index_parameters(index, params)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown parameter"
        raise ConfigError(f"search_params={params!r} do not apply to this index: {first}") from exc


def write_index(passages: Sequence[Passage], vectors: np.ndarray, out_dir: Path, *, embedder_name: str,
                factory: str = "Flat", seed: int = 0, encode_s: float = 0.0, search_params: str = "") -> dict:
    """Write the index folder from already encoded unit vectors (one row per passage, in passage order)."""
    import faiss

    check_corpus(passages)
    if vectors.ndim != 2 or vectors.shape[0] != len(passages):
        raise DataError(f"{vectors.shape[0] if vectors.ndim else 0} vectors for {len(passages)} passages")
    out_dir.mkdir(parents=True, exist_ok=True)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = _make_index(factory, vectors, seed)
    apply_search_params(index, search_params)  # fails here, at build time, on a parameter the index lacks
    faiss.write_index(index, str(out_dir / INDEX_FILE))
    np.save(out_dir / VECTORS_FILE, vectors)
    with open(out_dir / PASSAGES_FILE, "w", encoding="utf-8") as f:
        for p in passages:
            f.write(json.dumps({"id": p.id, "title": p.title, "text": p.text}, ensure_ascii=False) + "\n")
    meta = {
        "embedder": embedder_name,
        "dim": int(vectors.shape[1]),
        "size": len(passages),
        "factory": factory,
        "search_params": search_params,
        "metric": "inner_product",
        "normalized": True,
        "encode_s": encode_s,
        "passages_per_s": len(passages) / max(encode_s, 1e-9),
        "sha256": {name: _sha256(out_dir / name) for name in (INDEX_FILE, VECTORS_FILE, PASSAGES_FILE)},
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    return meta


class FaissRetriever:
    """A loaded index: FAISS for search, the frozen vectors and passages by row."""

    def __init__(self, index, vectors: np.ndarray, passages: list[Passage], meta: dict):
        self.index = index
        self.vectors = vectors
        self._passages = passages
        self._row = {p.id: i for i, p in enumerate(passages)}
        self.meta = meta
        self.dim = int(meta["dim"])

    def __len__(self) -> int:
        return len(self._passages)

    def __contains__(self, passage_id: object) -> bool:
        return passage_id in self._row

    def search(self, queries: np.ndarray, k: int, *, with_vectors: bool = False) -> SearchResult:
        if k <= 0:
            raise ConfigError(f"k={k} must be a positive integer")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ConfigError(f"query vectors have shape {queries.shape}, the index has dimension {self.dim}")
        bad = np.flatnonzero(~np.isfinite(queries).all(axis=1))
        if bad.size:  # FAISS would rank NaN/inf vectors arbitrarily and answer as if nothing were wrong
            raise ConfigError(f"{bad.size} of {len(queries)} query vectors hold NaN or inf (first: row {int(bad[0])})")
        k = min(k, len(self))
        scores, rows = self.index.search(l2_normalize(queries), k)  # (n_q, k) each
        short = int((rows < 0).any(axis=1).sum())
        if short:  # an approximate index (IVF with a small nprobe) found fewer than k: ids and vectors would disagree
            raise ConfigError(f"the index found fewer than k={k} passages for {short} of {len(rows)} queries; "
                              f"search more of it (a larger nprobe in search_params) or lower k")
        ids = [[self._passages[r].id for r in row] for row in rows]
        vecs = None
        if with_vectors:
            vecs = self.vectors[rows]  # (n_q, k, dim)
        return SearchResult(ids=ids, scores=scores, vectors=vecs)

    def passages(self, ids: list[str]) -> list[Passage]:
        return [self._passages[self._row[i]] for i in ids]

    def vectors_for(self, ids: list[str]) -> np.ndarray:
        """Frozen document vectors of the given passage ids, (len(ids), dim)."""
        return self.vectors[[self._row[i] for i in ids]]


def load_index(index_dir: Path, *, verify: bool = True) -> FaissRetriever:
    """Load an index folder, checking each file's sha256 against index_meta.json before FAISS reads it."""
    import faiss

    index_dir = Path(index_dir)
    meta_path = index_dir / META_FILE
    if not meta_path.exists():
        raise DataError(f"{index_dir} is not an index folder (no {META_FILE})")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{meta_path} is corrupt: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("dim"), int):
        raise IntegrityError(f"{meta_path} is corrupt: not an index description with an integer 'dim'")
    if verify:
        digests = meta.get("sha256")
        missing = {INDEX_FILE, VECTORS_FILE, PASSAGES_FILE} - set(digests if isinstance(digests, dict) else ())
        if missing:
            raise IntegrityError(f"{meta_path} records no sha256 for {', '.join(sorted(missing))}")
        for name, digest in digests.items():
            path = index_dir / name
            if not path.exists():
                raise IntegrityError(f"index file {path} is missing")
            if _sha256(path) != digest:
                raise IntegrityError(f"index file {path} does not match its recorded sha256")
    try:
        index = faiss.read_index(str(index_dir / INDEX_FILE))
        vectors = np.load(index_dir / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        passages = []
        with open(index_dir / PASSAGES_FILE, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                passages.append(Passage(id=r["id"], title=r["title"], text=r["text"]))
    except (RuntimeError, OSError, ValueError, KeyError, TypeError) as exc:  # FAISS, numpy, json, a bad row
        detail = " ".join(str(exc).split())[:300]
        raise IntegrityError(f"index in {index_dir} is unreadable: {type(exc).__name__}: {detail}") from exc
    apply_search_params(index, meta.get("search_params", ""))
    if index.ntotal != len(passages) or vectors.shape != (len(passages), meta["dim"]):
        raise IntegrityError(f"index in {index_dir} is inconsistent: {index.ntotal} vectors, {len(passages)} passages")
    return FaissRetriever(index, vectors, passages, meta)
