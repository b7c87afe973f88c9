"""Build, save, load and search a FAISS index of normalised passage vectors, and its passage store.

An index folder (format 2) holds `index.faiss` (read memory-mapped), `vectors.npy` (the frozen document
vectors, float16 or float32, memory-mapped), `ids.npy` and `id_order.npy` (rag_jobs.index.store) and
`index_meta.json`. Row r of each is FAISS id r. The passages' texts stay in the corpus' Arrow files: the
committed corpus step's (referenced, not copied) or, for an index built from a list in process, files
written into the index folder itself. `index_meta.json` records every file's size and sha256.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from rag_jobs.artifacts.digests import file_sha256
from rag_jobs.core.retrieval import l2_normalize
from rag_jobs.corpus.shards import CORPUS_META, CorpusShards, ShardWriter
from rag_jobs.data.records import Passage
from rag_jobs.errors import ConfigError, DataError, IntegrityError
from rag_jobs.index.protocol import SearchResult
from rag_jobs.index.store import ID_ORDER_FILE, IDS_FILE, MappedPassages, MemoryPassages, write_ids

INDEX_FORMAT = 2
INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
META_FILE = "index_meta.json"
OWN_FILES = (INDEX_FILE, VECTORS_FILE, IDS_FILE, ID_ORDER_FILE)
VECTOR_DTYPES = ("float32", "float16")
ADD_CHUNK = 1 << 16  # vectors handed to FAISS at a time: memory is bounded by the codes, not the floats
CHECKPOINT_ROWS = 1 << 20  # a build reports (for a checkpoint) after each this many rows added

ProgressFn = Callable[[int, int], None]


def embedding_dim(model) -> int:
    """The width of a sentence-transformers model's vectors (the method was renamed in v5)."""
    if hasattr(model, "get_embedding_dimension"):
        return int(model.get_embedding_dimension())
    return int(model.get_sentence_embedding_dimension())


def encode_texts(
    model, texts: Sequence[str], *, batch_size: int = 64, progress: ProgressFn | None = None
) -> np.ndarray:
    """Encode texts in length-sorted batches into unit float32 vectors, in input order."""
    import torch

    n = len(texts)
    dim = embedding_dim(model)
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


def new_index(factory: str, dim: int):
    import faiss

    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"index_factory={factory!r} is not a valid FAISS factory string: {exc}") from exc


def train_index(index, vectors: np.ndarray, factory: str, seed: int) -> None:
    """Train an untrained index (IVF, PQ) on a seeded sample of `vectors` (read as float32 where sampled)."""
    if index.is_trained:
        return
    rng = np.random.default_rng(seed)
    n_train = training_sample_size(index, len(vectors))
    sample = np.ascontiguousarray(vectors[rng.choice(len(vectors), size=n_train, replace=False)], dtype=np.float32)
    try:
        index.train(sample)
    except RuntimeError as exc:
        raise ConfigError(f"index_factory={factory!r} cannot be trained on {n_train} vectors: {exc}") from exc


def add_rows(index, vectors: np.ndarray, lo: int = 0, hi: int | None = None) -> None:
    """Add rows [lo, hi) of `vectors` in order, ADD_CHUNK at a time (each converted to float32 on its own)."""
    hi = len(vectors) if hi is None else hi
    for start in range(lo, hi, ADD_CHUNK):
        index.add(np.ascontiguousarray(vectors[start : min(start + ADD_CHUNK, hi)], dtype=np.float32))


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


def check_vectors_dtype(dtype: str) -> str:
    if dtype not in VECTOR_DTYPES:
        raise ConfigError(f"vectors={dtype!r} must be one of {', '.join(VECTOR_DTYPES)}")
    return dtype


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
    vectors_dtype: str = "float32",
) -> dict:
    """Encode a list of passages and write an index folder that holds their texts too."""
    check_corpus(passages)
    t0 = time.perf_counter()
    vecs = encode_texts(model, [p.content for p in passages], batch_size=batch_size, progress=progress)
    return write_index(passages, vecs, out_dir, embedder_name=embedder_name, factory=factory, seed=seed,
                       encode_s=time.perf_counter() - t0, search_params=search_params, vectors_dtype=vectors_dtype)


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
                factory: str = "Flat", seed: int = 0, encode_s: float = 0.0, search_params: str = "",
                vectors_dtype: str = "float32") -> dict:
    """Write an index folder from a list of passages and their unit vectors (one row each, in order); the
    passages' texts are written into the folder as Arrow files."""
    check_corpus(passages)
    if vectors.ndim != 2 or vectors.shape[0] != len(passages):
        raise DataError(f"{vectors.shape[0] if vectors.ndim else 0} vectors for {len(passages)} passages")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(out_dir, shard_rows=max(len(passages), 1))
    for p in passages:
        writer.add(p)
    writer.close()
    corpus = CorpusShards(out_dir)
    return write_store(corpus, out_dir, lambda: iter([vectors]), int(vectors.shape[1]), embedder_name=embedder_name,
                       factory=factory, seed=seed, encode_s=encode_s, search_params=search_params,
                       vectors_dtype=vectors_dtype, passages_in="index")


def write_vectors(out_dir: Path, chunks: Callable[[], Iterator[np.ndarray]], n: int, dim: int,
                  dtype: str) -> np.ndarray:
    """vectors.npy (n, dim) in `dtype`, filled chunk by chunk; returned memory-mapped read-only."""
    check_vectors_dtype(dtype)
    out = np.lib.format.open_memmap(out_dir / VECTORS_FILE, mode="w+", dtype=dtype, shape=(n, dim))
    at = 0
    for chunk in chunks():
        if chunk.ndim != 2 or chunk.shape[1] != dim or at + len(chunk) > n:
            raise DataError(f"vectors of shape {chunk.shape} do not fit rows {at}.. of ({n}, {dim})")
        out[at : at + len(chunk)] = chunk
        at += len(chunk)
    if at != n:
        raise DataError(f"{at} vectors for {n} passages")
    out.flush()
    del out
    return np.load(out_dir / VECTORS_FILE, mmap_mode="r")


def write_store(corpus: CorpusShards, out_dir: Path, chunks: Callable[[], Iterator[np.ndarray]], dim: int, *,
                embedder_name: str, factory: str = "Flat", seed: int = 0,
                encode_s: float | Callable[[], float] = 0.0, search_params: str = "",
                vectors_dtype: str = "float32", passages_in: str = "corpus",
                index=None, added: int = 0, on_added: Callable[[object, int], None] | None = None,
                corpus_ref: dict | None = None) -> dict:
    """Write vectors.npy, the id column and index.faiss for the rows of `corpus`, and index_meta.json.

    `chunks()` yields the rows' unit float32 vectors in corpus order. FAISS is trained on a sample and fed
    ADD_CHUNK rows at a time; `index` with `added` rows resumes a partly built one (a checkpoint), and
    `on_added(index, rows)` is called after training and each million rows (to checkpoint it).
    `corpus_ref` (run_id, step, attempt of the committed corpus) lets a reader find the corpus beside the index
    in a store or cache, which both lay folders out as <run>/<step>/<attempt>.
    """
    import faiss

    if len(corpus) == 0:
        raise DataError("cannot build an index from an empty corpus")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n, width = write_ids(corpus, out_dir)
    vecs = write_vectors(out_dir, chunks, n, dim, vectors_dtype)
    if index is None:
        index = new_index(factory, dim)
        trained = index.is_trained
        train_index(index, vecs, factory, seed)
        added = 0
        if on_added is not None and not trained:
            on_added(index, 0)  # k-means over millions of vectors is the long part: keep it
    apply_search_params(index, search_params)  # fails here, at build time, on a parameter the index lacks
    step = CHECKPOINT_ROWS
    for lo in range(added, n, step):
        add_rows(index, vecs, lo, min(lo + step, n))
        if on_added is not None and min(lo + step, n) < n:
            on_added(index, min(lo + step, n))
    faiss.write_index(index, str(out_dir / INDEX_FILE))
    encode_s = encode_s() if callable(encode_s) else encode_s
    own = {name: out_dir / name for name in OWN_FILES}
    corpus_files = [CORPUS_META] + [f["file"] for f in corpus.files]
    if passages_in == "index":
        own.update({name: out_dir / name for name in corpus_files})
    meta = {
        "format": INDEX_FORMAT,
        "embedder": embedder_name,
        "dim": int(dim),
        "size": n,
        "factory": factory,
        "search_params": search_params,
        "metric": "inner_product",
        "normalized": True,
        "vectors": vectors_dtype,
        "id_bytes": width,
        "passages_in": passages_in,
        "encode_s": encode_s,
        "passages_per_s": n / max(encode_s, 1e-9),
        "sha256": {name: file_sha256(path) for name, path in own.items()},
        "bytes": {name: path.stat().st_size for name, path in own.items()},
    }
    if passages_in == "corpus":
        meta["corpus_ref"] = corpus_ref
        meta["corpus"] = {name: {"sha256": file_sha256(corpus.folder / name),
                                 "bytes": (corpus.folder / name).stat().st_size} for name in corpus_files}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    return meta


class FaissRetriever:
    """A loaded index: FAISS for search, the frozen vectors and the passages by row (row = FAISS id)."""

    def __init__(self, index, vectors: np.ndarray, passages, meta: dict):
        self.index = index
        self.vectors = vectors
        self.store = passages if isinstance(passages, (MappedPassages, MemoryPassages)) else MemoryPassages(passages)
        self.meta = meta
        self.dim = int(meta["dim"])

    def __len__(self) -> int:
        return len(self.store)

    def __contains__(self, passage_id: object) -> bool:
        return isinstance(passage_id, str) and bool(self.store.contains([passage_id])[0])

    def contains(self, ids: list[str]) -> list[bool]:
        """Which of these ids the index holds (one lookup for many ids)."""
        return [bool(x) for x in self.store.contains(list(ids))]

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
        flat = self.store.ids_at(rows.reshape(-1))
        ids = [flat[i * k : (i + 1) * k] for i in range(len(rows))]
        vecs = None
        if with_vectors:
            vecs = np.asarray(self.vectors[rows], dtype=np.float32)  # (n_q, k, dim)
        return SearchResult(ids=ids, scores=scores, vectors=vecs)

    def passages(self, ids: list[str]) -> list[Passage]:
        """The passages of these ids, in order; KeyError for an unknown id."""
        return self.store.at(self.store.rows_of(list(ids))) if len(ids) else []

    def vectors_for(self, ids: list[str]) -> np.ndarray:
        """Frozen document vectors of the given passage ids, (len(ids), dim), float32."""
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self.vectors[self.store.rows_of(list(ids))], dtype=np.float32)


def _read_meta(index_dir: Path) -> dict:
    meta_path = index_dir / META_FILE
    if not meta_path.exists():
        raise DataError(f"{index_dir} is not an index folder (no {META_FILE})")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{meta_path} is corrupt: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("dim"), int):
        raise IntegrityError(f"{meta_path} is corrupt: not an index description with an integer 'dim'")
    if meta.get("format") != INDEX_FORMAT:
        raise IntegrityError(f"index in {index_dir} is format {meta.get('format', 1)!r}, this rag-jobs reads format "
                             f"{INDEX_FORMAT}: rebuild it (a new run's build-index step does)")
    return meta


def _check_files(folder: Path, recorded: dict, *, verify: bool, what: str) -> None:
    """Every file has its recorded size (a truncated file is refused before it is mapped) and, with
    `verify`, its sha256 (hashed once; unchanged files that were verified before are trusted)."""
    for name, entry in recorded.items():
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"{what} file {path} is missing")
        if path.stat().st_size != entry["bytes"]:
            raise IntegrityError(f"{what} file {path} has {path.stat().st_size} bytes, {entry['bytes']} recorded "
                                 f"(truncated or replaced)")
        if verify and file_sha256(path) != entry["sha256"]:
            raise IntegrityError(f"{what} file {path} does not match its recorded sha256")


def load_index(index_dir: Path, corpus_dir: Path | None = None, *, verify: bool = True) -> FaissRetriever:
    """Open an index folder memory-mapped: sizes always checked, sha256 once per file (artifacts.digests)
    before FAISS reads a byte. `corpus_dir` is the committed corpus the index references (when its
    passages are not in the index folder itself)."""

    index_dir = Path(index_dir)
    meta = _read_meta(index_dir)
    try:
        digests, sizes = meta["sha256"], meta["bytes"]
        own = {name: {"sha256": digests[name], "bytes": sizes[name]} for name in digests}
    except (KeyError, TypeError) as exc:
        raise IntegrityError(f"{index_dir / META_FILE} records no size or sha256 for {exc}") from exc
    missing = set(OWN_FILES) - set(own)
    if missing:
        raise IntegrityError(f"{index_dir / META_FILE} records no sha256 for {', '.join(sorted(missing))}")
    _check_files(index_dir, own, verify=verify, what="index")
    if meta.get("passages_in") == "corpus":
        corpus_dir = corpus_dir if corpus_dir is not None else _corpus_beside(index_dir, meta.get("corpus_ref"))
        if corpus_dir is None:
            raise DataError(f"index in {index_dir} keeps its passages in the corpus step it was built from: "
                            f"give that corpus folder too")
        corpus_dir = Path(corpus_dir)
        _check_files(corpus_dir, meta.get("corpus") or {}, verify=verify, what="corpus")
    else:
        corpus_dir = index_dir
    try:
        index = _read_faiss(index_dir / INDEX_FILE)
        vectors = np.load(index_dir / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        ids = np.load(index_dir / IDS_FILE, mmap_mode="r", allow_pickle=False)
        order = np.load(index_dir / ID_ORDER_FILE, mmap_mode="r", allow_pickle=False)
        corpus = CorpusShards(corpus_dir)
        corpus.open_all()
    except (RuntimeError, OSError, ValueError, KeyError, TypeError) as exc:  # FAISS, numpy, the corpus meta
        detail = " ".join(str(exc).split())[:300]
        raise IntegrityError(f"index in {index_dir} is unreadable: {type(exc).__name__}: {detail}") from exc
    apply_search_params(index, meta.get("search_params", ""))
    n = int(meta["size"])
    if (index.ntotal, vectors.shape, ids.shape, order.shape, len(corpus)) != (n, (n, meta["dim"]), (n,), (n,), n):
        raise IntegrityError(f"index in {index_dir} is inconsistent: {index.ntotal} vectors in FAISS, "
                             f"{vectors.shape[0]} stored, {len(ids)} ids, {len(corpus)} passages for size {n}")
    return FaissRetriever(index, vectors, MappedPassages(corpus, ids, order), meta)


def _corpus_beside(index_dir: Path, ref) -> Path | None:
    """The committed corpus next to the index: in a local store (at its key, runs/<run>/<step>/<attempt>, from
    the store's root) or in a fetch cache (<run>/<step>/<attempt> beside the index's own)."""
    try:
        here = index_dir.resolve()
        candidates = [here.parents[2] / ref["run_id"] / ref["step"] / ref["attempt"]]
        if ref.get("key_prefix"):
            candidates.append(here.parents[3] / ref["key_prefix"])
    except (IndexError, KeyError, TypeError, AttributeError):
        return None
    return next((c for c in candidates if (c / CORPUS_META).is_file()), None)


def _read_faiss(path: Path):
    """FAISS index memory-mapped where its type allows (Flat, IVF-PQ: the codes stay in the page cache,
    shared by every process of the node), else read into memory (e.g. HNSW)."""
    import faiss

    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", None)  # FAISS >= 1.9
    if flag is not None:
        try:
            return faiss.read_index(str(path), flag)
        except RuntimeError:
            pass
    return faiss.read_index(str(path))
