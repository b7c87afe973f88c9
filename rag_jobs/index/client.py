"""A Retriever that asks the index service over HTTP: the same answers as the local FaissRetriever.

    retriever = ServiceRetriever("http://index.rag-jobs:8080", token=os.environ["RAG_JOBS_INDEX_TOKEN"])
    result = retriever.search(query_vectors, k=5)          # SearchResult, as FaissRetriever returns it

Float32 values go over JSON as the shortest decimal that round-trips, so ids, scores and vectors
are bit-for-bit those of the in-process index. Each request has a timeout; 429/502/503/504 answers
and connection errors are retried a bounded number of times with exponential backoff and jitter
(Retry-After is honoured, capped). Bad requests raise ConfigError (exit code 2), a refused token
ConfigError, and giving up TransientError (exit code 1: the Job is retried).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag_jobs.data.records import Passage
from rag_jobs.errors import ConfigError, DataError, TransientError
from rag_jobs.index.protocol import SearchResult

TOKEN_ENV = "RAG_JOBS_INDEX_TOKEN"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0
_JSON_BYTES_PER_FLOAT = 26  # worst case of a float32 as JSON, with its separator


class ServiceRetriever:
    """The Retriever protocol (search, passages, vectors_for, contains, __len__, dim) over the index service."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff_s: float = 0.25,
        max_backoff_s: float = 8.0,
        transport: Any = None,
        seed: int | None = None,
    ):
        import httpx

        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"index service url must start with http:// or https://, got {url!r}")
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be a non-negative integer, got {retries!r}")
        self.url = url.rstrip("/")
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self._rng = random.Random(seed)
        token = token if token is not None else (os.environ.get(TOKEN_ENV) or "").strip() or _token_file()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.info: dict = self._request("GET", "/v1/info")
        self.dim = int(self.info["dim"])
        self._size = int(self.info["size"])
        limits = self.info["limits"]
        self.max_k, self.max_ids = int(limits["max_k"]), int(limits["max_ids"])
        # Queries per request: the service's batch limit, and few enough that the JSON fits its body limit.
        by_body = int(limits["max_body_bytes"]) * 9 // 10 // (self.dim * _JSON_BYTES_PER_FLOAT + 8)
        self.max_batch = max(1, min(int(limits["max_batch"]), by_body))
        self.meta = {key: self.info[key] for key in ("embedder", "dim", "size", "factory", "metric", "normalized")}
        self.meta["index_id"] = self.info["index_id"]
        self.content_id = self.info.get("content_id")

    # ---- the protocol ----

    def __len__(self) -> int:
        return self._size

    def search(self, queries: np.ndarray, k: int, *, with_vectors: bool = False) -> SearchResult:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ConfigError(f"k={k} must be a positive integer")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ConfigError(f"query vectors have shape {queries.shape}, the index has dimension {self.dim}")
        k = min(int(k), self._size)
        if k > self.max_k:
            raise ConfigError(f"k={k} is over the index service's limit max_k={self.max_k}")
        ids: list[list[str]] = []
        scores: list[list[float]] = []
        vectors: list[np.ndarray] = []
        for start in range(0, len(queries), self.max_batch):
            chunk = queries[start : start + self.max_batch]
            data = self._request("POST", "/v1/search",
                                 {"queries": chunk.tolist(), "k": k, "with_vectors": with_vectors})
            ids.extend(data["ids"])
            scores.extend([[np.nan if v is None else v for v in row] for row in data["scores"]])
            if with_vectors:
                vectors.append(np.asarray(data["vectors"], dtype=np.float32).reshape(len(chunk), -1, self.dim))
        score_arr = np.asarray(scores, dtype=np.float32).reshape(len(queries), k)  # (n_q, k)
        vec_arr = None
        if with_vectors:
            vec_arr = np.concatenate(vectors) if vectors else np.zeros((0, k, self.dim), np.float32)  # (n_q, k, dim)
        return SearchResult(ids=ids, scores=score_arr, vectors=vec_arr)

    def passages(self, ids: list[str]) -> list[Passage]:
        out: list[Passage] = []
        for start in range(0, len(ids), self.max_ids):
            data = self._request("POST", "/v1/passages", {"ids": list(ids[start : start + self.max_ids])})
            out.extend(Passage(id=p["id"], title=p["title"], text=p["text"]) for p in data["passages"])
        return out

    def contains(self, ids: list[str]) -> list[bool]:
        """Which of these ids the index holds, max_ids per request."""
        out: list[bool] = []
        for start in range(0, len(ids), self.max_ids):
            out.extend(self._request("POST", "/v1/contains", {"ids": list(ids[start : start + self.max_ids])})["found"])
        return out

    def __contains__(self, passage_id: object) -> bool:
        return isinstance(passage_id, str) and self.contains([passage_id])[0]

    def vectors_for(self, ids: list[str]) -> np.ndarray:
        """Frozen document vectors of the given passage ids, (len(ids), dim)."""
        parts = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(ids), self.max_ids):
            data = self._request("POST", "/v1/vectors", {"ids": list(ids[start : start + self.max_ids])})
            parts.append(np.asarray(data["vectors"], dtype=np.float32).reshape(-1, self.dim))
        return np.concatenate(parts)

    # ---- plumbing ----

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ServiceRetriever({self.url!r})"

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + self._rng.random() / 2)
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S))
            except ValueError:  # an HTTP date: keep the backoff
                pass
        return delay

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                resp = self._http.request(method, path, json=body)
            except httpx.TransportError as exc:  # refused, reset, timed out: worth another try
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return resp.json()
                if resp.status_code not in RETRY_STATUSES:
                    raise self._error(resp, path, body)
                last = f"HTTP {resp.status_code}: {_detail(resp)}"
                retry_after = resp.headers.get("retry-after")
            if attempt < self.retries:
                time.sleep(self._delay(attempt, retry_after))
        raise TransientError(f"index service {self.url}{path}: gave up after {self.retries + 1} attempts ({last})")

    def _error(self, resp: Any, path: str, body: dict | None) -> Exception:
        detail = _detail(resp)
        where = f"index service {self.url}{path}"
        if resp.status_code in (401, 403):
            return ConfigError(f"{where} refused the token (HTTP {resp.status_code}): set the token or {TOKEN_ENV}")
        if resp.status_code == 404 and body is not None and "ids" in body:
            return KeyError(detail)  # as FaissRetriever.passages / vectors_for raise for an unknown id
        if 400 <= resp.status_code < 500:
            return ConfigError(f"{where} rejected the request (HTTP {resp.status_code}): {detail}")
        return TransientError(f"{where} failed (HTTP {resp.status_code}): {detail}")


def _token_file() -> str | None:
    """The token in the file $RAG_JOBS_INDEX_TOKEN_FILE (a mounted Secret), if set."""
    path = os.environ.get("RAG_JOBS_INDEX_TOKEN_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as exc:
        raise ConfigError(f"RAG_JOBS_INDEX_TOKEN_FILE={path}: {exc.strerror or exc}") from exc


def _detail(resp: Any) -> str:
    try:
        detail = resp.json().get("detail", "")
    except (ValueError, AttributeError):
        return resp.text[:300]
    return detail if isinstance(detail, str) else str(detail)[:300]


def open_retriever(spec: str | os.PathLike[str], *, token: str | None = None, **options: Any):
    """A ServiceRetriever for an http(s):// URL, else the local index folder loaded in process."""
    text = str(spec)
    if text.startswith(("http://", "https://")):
        return ServiceRetriever(text, token, **options)
    from rag_jobs.index.faiss_index import load_index

    if not Path(text).is_dir():
        raise DataError(f"{text} is neither an index service URL nor an index folder")
    return load_index(Path(text))
