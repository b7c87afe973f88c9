"""The index service: a loaded FAISS index behind HTTP (FastAPI, served by uvicorn).

    python -m rag_jobs.index.service --index <store-uri>/runs/<run-id>/build-index --token-file /path/token
    rag-jobs serve --index ./index-folder            (the same, from the main CLI)

Endpoints (the OpenAPI schema at /openapi.json describes every body and status code):

    POST /v1/search     a batch of query vectors + k -> passage ids and scores (optionally texts, vectors)
    POST /v1/passages   passage ids -> id, title, text
    POST /v1/vectors    passage ids -> the frozen document vectors
    GET  /v1/info       index id, dimension, size, embedder, limits, readiness
    GET  /healthz       liveness (fails only when loading the index failed)
    GET  /readyz        readiness (ready once the index is loaded; loading runs in a background thread)
    GET  /metrics       Prometheus text format

The /v1 endpoints need `Authorization: Bearer <token>` when a token is configured (compared in
constant time). Limits answer with clear status codes: a body over `max_body_bytes` 413; k, batch
size, vector dimension or values out of range 422 (request validation); more than `max_in_flight`
requests at once, or the index still loading, 503 with Retry-After.

No `from __future__ import annotations` here: FastAPI reads the request models, which are built per
app (they carry the index dimension and the limits), from the endpoint signatures at run time.
"""

import argparse
import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from rag_jobs.errors import ConfigError, DataError, IntegrityError, RagJobsError
from rag_jobs.index.faiss_index import INDEX_FILE, META_FILE, PASSAGES_FILE, VECTORS_FILE, FaissRetriever, load_index

log = logging.getLogger("rag_jobs.index.service")

DEFAULT_MAX_BATCH = 256  # query vectors per request
DEFAULT_MAX_K = 1000  # results per query
DEFAULT_MAX_IDS = 10_000  # ids per /v1/passages or /v1/vectors request
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # 256 queries x 1024 dims as JSON is about 6 MB
DEFAULT_MAX_IN_FLIGHT = 64  # concurrent /v1 requests before answering 503
DEFAULT_PORT = 8080
TOKEN_ENV = "RAG_JOBS_INDEX_TOKEN"  # the bearer token itself
TOKEN_FILE_ENV = "RAG_JOBS_INDEX_TOKEN_FILE"  # or a file holding it (a mounted Secret)
RETRY_AFTER_OVERLOADED_S = 1
RETRY_AFTER_LOADING_S = 5
F32_MAX = float(np.finfo(np.float32).max)  # larger query values cannot be represented as float32

INDEX_FILES = (META_FILE, INDEX_FILE, VECTORS_FILE, PASSAGES_FILE)
_ENDPOINTS = ("/v1/search", "/v1/passages", "/v1/vectors", "/v1/info", "/healthz", "/readyz", "/metrics",
              "/openapi.json")

# ---------------------------------------------------------------------------------------------------
# Where the index comes from
# ---------------------------------------------------------------------------------------------------


def _cache_root() -> Path:
    """RAG_JOBS_CACHE, else ~/.cache/rag-jobs (the same folder the jobs use; no model imports here)."""
    root = os.environ.get("RAG_JOBS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rag-jobs")
    return Path(root)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[-80:]


def content_id(meta: dict) -> str:
    """A short id of the index's bytes: the same files give the same id wherever they are loaded from."""
    digests = json.dumps(meta.get("sha256", {}), sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(digests).hexdigest()[:16]


class IndexSource:
    """A local index folder, or a committed step of a run: `<store-uri>/runs/<run-id>/<step>`.

    `read_meta()` is cheap (index_meta.json only, verified against the step manifest for a run step);
    `load()` fetches the rest (sha256-verified by the store's manifest, then again by load_index
    against index_meta.json before FAISS reads a byte) and returns the retriever.
    """

    def __init__(self, spec: "str | os.PathLike[str]", *, cache_dir: "Path | None" = None):
        self.spec = str(spec)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _cache_root()
        self._store = None
        self._manifest = None
        self.local_dir: Path | None = None
        self.step_ref = None
        self.store_uri: str | None = None
        text = self.spec
        if not text.strip():
            raise ConfigError("index must be an index folder or <store-uri>/runs/<run-id>/<step>, got ''")
        path_text = text[len("file://"):] if text.startswith("file://") else text
        if "://" not in path_text and (Path(path_text) / META_FILE).is_file():
            self.local_dir = Path(path_text)
            return
        head, sep, step = text.rstrip("/").rpartition("/")
        if not sep or "/runs/" not in f"/{head}":
            if "://" in path_text:
                raise ConfigError(f"index {text!r} must look like <store-uri>/runs/<run-id>/<step>")
            raise DataError(f"{path_text} is not an index folder (no {META_FILE}) nor <store-uri>/runs/<id>/<step>")
        from rag_jobs.artifacts import StepRef, parse_run_uri

        self.store_uri, run = parse_run_uri(head)
        self.step_ref = StepRef(run.run_id, step)

    @property
    def description(self) -> str:
        if self.local_dir is not None:
            return str(self.local_dir)
        return f"{self.store_uri.rstrip('/')}/runs/{self.step_ref.run_id}/{self.step_ref.step}"

    def _committed(self):
        """(store, manifest) of the step; a selection step stands for the grid child it selected."""
        from rag_jobs.artifacts import ArtifactNotFound, StepRef, open_store, read_manifest

        if self._manifest is None:
            store = open_store(self.store_uri)
            ref = self.step_ref
            for _ in range(4):
                manifest = read_manifest(store, ref)
                if manifest is None:
                    raise ArtifactNotFound(f"{ref.describe()} is not committed in {store.uri}")
                selected = (manifest.extra or {}).get("selected")
                if not selected:
                    break
                ref = StepRef(ref.run_id, selected)
            else:
                raise DataError(f"{self.description}: selection chain too deep")
            missing = [name for name in INDEX_FILES if name not in manifest.files]
            if missing:
                raise DataError(f"{ref.describe()} holds no index (no {missing[0]})")
            self._store, self._manifest = store, manifest
        return self._store, self._manifest

    def _fetch(self, files: "tuple[str, ...]") -> Path:
        from rag_jobs.artifacts import fetch_manifest

        store, manifest = self._committed()
        dest = self.cache_dir / "artifacts" / _safe(store.uri) / manifest.run_id / manifest.step / manifest.attempt
        return fetch_manifest(store, manifest, dest, files=files)

    @property
    def index_dir(self) -> Path:
        return self.local_dir if self.local_dir is not None else self._fetch((META_FILE,))

    def read_meta(self) -> dict:
        path = self.index_dir / META_FILE
        try:
            meta = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{path} is corrupt: {exc}") from exc
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("dim"), int) or meta["dim"] <= 0:
            raise IntegrityError(f"{path} has no valid 'dim'")
        return meta

    def index_id(self, meta: dict) -> str:
        if self.local_dir is not None:
            return content_id(meta)
        _, manifest = self._committed()
        return f"{manifest.run_id}/{manifest.step}@{manifest.attempt}"

    def load(self) -> FaissRetriever:
        folder = self.local_dir if self.local_dir is not None else self._fetch(INDEX_FILES)
        return load_index(folder, verify=True)


# ---------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------


class ServiceMetrics:
    """Prometheus metrics of one app, in a registry of its own (several apps may share a process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("rag_index_requests", "HTTP requests answered, by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=r)
        self.errors = Counter("rag_index_errors", "HTTP requests answered with a status >= 400",
                              ["endpoint", "status"], registry=r)
        self.latency = Histogram("rag_index_request_duration_seconds", "Time from request to response, seconds",
                                 ["endpoint"], registry=r,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                          5, 10))
        self.search_seconds = Histogram("rag_index_search_seconds", "FAISS search time per request, seconds",
                                        registry=r, buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                             0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.batch = Histogram("rag_index_search_batch_size", "Query vectors per search request", registry=r,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
        self.in_flight = Gauge("rag_index_requests_in_flight", "/v1 requests being answered now", registry=r)
        self.ready = Gauge("rag_index_ready", "1 once the index is loaded", registry=r)
        self.size = Gauge("rag_index_size", "Vectors in the loaded index", registry=r)
        self.load_seconds = Gauge("rag_index_load_seconds", "Time to fetch, verify and load the index", registry=r)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, str(status)).inc()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


# ---------------------------------------------------------------------------------------------------
# Loading state
# ---------------------------------------------------------------------------------------------------


class _IndexState:
    """The retriever once the background load has finished, or the reason it failed."""

    def __init__(self, source: IndexSource, meta: dict, metrics: ServiceMetrics):
        self.source, self.meta, self.metrics = source, meta, metrics
        self.retriever: FaissRetriever | None = None
        self.error: str | None = None
        self.loaded = threading.Event()

    def load(self) -> None:
        t0 = time.perf_counter()
        try:
            retriever = self.source.load()
            if retriever.dim != self.meta["dim"] or len(retriever) != self.meta.get("size", len(retriever)):
                raise IntegrityError(f"{self.source.description}: loaded index does not match its index_meta.json")
            self.retriever = retriever
            self.metrics.ready.set(1)
            self.metrics.size.set(len(retriever))
            self.metrics.load_seconds.set(time.perf_counter() - t0)
            log.info("index %s loaded: %d vectors of dimension %d in %.1fs", self.source.description,
                     len(retriever), retriever.dim, time.perf_counter() - t0)
        except Exception as exc:  # reported by /readyz and /healthz; the pod is restarted
            self.error = exc.one_line() if isinstance(exc, RagJobsError) else f"{type(exc).__name__}: {exc}"
            log.error("loading index %s failed: %s", self.source.description, self.error)
        finally:
            self.loaded.set()


# ---------------------------------------------------------------------------------------------------
# Body size, in-flight limit and request metrics: one pure ASGI middleware
# ---------------------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _send_json(send: Send, status: int, body: dict, headers: "dict[str, str] | None" = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class GuardMiddleware:
    """Refuses bodies over `max_body_bytes` (413) and /v1 requests over `max_in_flight` (503), and
    records every request's endpoint, status and latency. The body is read here (bounded) and replayed
    to the app, so a chunked body without Content-Length is limited too."""

    def __init__(self, app: Callable, *, max_body_bytes: int, max_in_flight: int, metrics: ServiceMetrics):
        self.app, self.max_body_bytes, self.max_in_flight, self.metrics = app, max_body_bytes, max_in_flight, metrics
        self.in_flight = 0  # touched only on the event loop's thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in _ENDPOINTS else "other"
        status = 500
        t0 = time.perf_counter()

        async def send_recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        guarded = path.startswith("/v1/")
        if guarded and self.in_flight >= self.max_in_flight:
            detail = f"too many requests in flight (limit {self.max_in_flight})"
            await _send_json(send_recorded, 503, {"detail": detail}, {"Retry-After": str(RETRY_AFTER_OVERLOADED_S)})
            self.metrics.observe(endpoint, scope.get("method", ""), status, time.perf_counter() - t0)
            return
        if guarded:
            self.in_flight += 1
            self.metrics.in_flight.inc()
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await _send_json(send_recorded, 413, {"detail": f"request body over {self.max_body_bytes} bytes"},
                                 {"Connection": "close"})
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_recorded)
        finally:
            if guarded:
                self.in_flight -= 1
                self.metrics.in_flight.dec()
            self.metrics.observe(endpoint, scope.get("method", ""), status, time.perf_counter() - t0)

    async def _read_body(self, scope: Scope, receive: Receive) -> "bytes | None":
        """The whole body, or None when it is (or says it is) over the limit."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None
                except ValueError:
                    pass
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


# ---------------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------------


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _finite_or_none(rows: np.ndarray) -> list:
    """Scores as JSON: NaN/inf (which JSON cannot carry) become null."""
    out = rows.tolist()
    if not np.isfinite(rows).all():
        out = [[v if math.isfinite(v) else None for v in row] for row in out]
    return out


def _integral(value: Any) -> Any:
    """JSON Schema's integer includes 17.0; pydantic's strict int does not: accept the float form too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _quiet_search(retriever: FaissRetriever, queries: np.ndarray, k: int, with_vectors: bool):
    """retriever.search without numpy's overflow warnings: float32 values near the limit overflow the
    norm (the vector then scores 0), which is not worth a log line per request."""
    with np.errstate(over="ignore", invalid="ignore"):
        return retriever.search(queries, k, with_vectors=with_vectors)


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a validation error's context value."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


def create_app(
    index_uri_or_dir: "str | os.PathLike[str] | IndexSource",
    *,
    token: "str | None" = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_k: int = DEFAULT_MAX_K,
    max_ids: int = DEFAULT_MAX_IDS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    search_threads: "int | None" = None,
):
    """The ASGI app serving one index. index_meta.json is read now (it fixes the vector dimension
    of the request schema); the index itself loads in a background thread once the app starts."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

    import rag_jobs

    for name, value in (("max_batch", max_batch), ("max_k", max_k), ("max_ids", max_ids),
                        ("max_body_bytes", max_body_bytes), ("max_in_flight", max_in_flight)):
        _positive(name, value)
    if search_threads is None:
        search_threads = min(4, os.cpu_count() or 1)
    _positive("search_threads", search_threads)
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ConfigError("token must be a non-empty string (or None to turn authentication off)")
    token_bytes = token.strip().encode() if token is not None else None

    source = index_uri_or_dir if isinstance(index_uri_or_dir, IndexSource) else IndexSource(index_uri_or_dir)
    meta = source.read_meta()
    dim = int(meta["dim"])
    index_id = source.index_id(meta)
    metrics = ServiceMetrics()
    state = _IndexState(source, meta, metrics)
    pool = ThreadPoolExecutor(max_workers=search_threads, thread_name_prefix="faiss-search")

    # ---- schemas (built per app: they carry the dimension and the limits). Strict: JSON true is not 1.0,
    # "5" is not 5, exactly as the schema says (integers are still numbers). ----
    Value = Annotated[float, Field(allow_inf_nan=False, ge=-F32_MAX, le=F32_MAX)]
    Vector = Annotated[list[Value], Field(min_length=dim, max_length=dim, description=f"{dim} floats")]
    PassageId = Annotated[str, Field(min_length=1, max_length=1024)]

    class SearchRequest(BaseModel):
        """A batch of query vectors (normalised by the service) and how many results each."""

        model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
            "examples": [{"queries": [[0.0] * dim], "k": min(5, max_k)}]})
        queries: list[Vector] = Field(min_length=1, max_length=max_batch,
                                      description=f"1 to {max_batch} query vectors of dimension {dim}")
        k: Annotated[int, BeforeValidator(_integral)] = Field(
            10, ge=1, le=max_k, description=f"results per query, 1 to {max_k} (capped at the index size)")
        with_passages: bool = Field(False, description="also return each hit's id, title and text")
        with_vectors: bool = Field(False, description="also return each hit's frozen document vector")

    class PassageOut(BaseModel):
        id: str
        title: str
        text: str

    class SearchResponse(BaseModel):
        """Top-k per query, best first. `scores` are cosines (inner products of unit vectors); a row of
        `ids` is shorter than k only when the index found fewer hits (approximate indexes)."""

        index_id: str
        k: int = Field(description="results per query actually returned: min(k, index size)")
        ids: list[list[str]]
        scores: list[list[float | None]] = Field(description="(n_queries, k); null where not a finite number")
        passages: list[list[PassageOut]] | None = None
        vectors: list[list[list[float]]] | None = Field(None, description="(n_queries, k, dim)")

    class IdsRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        ids: list[PassageId] = Field(max_length=max_ids, description=f"at most {max_ids} passage ids")

    class PassagesResponse(BaseModel):
        passages: list[PassageOut]

    class VectorsResponse(BaseModel):
        vectors: list[list[float]] = Field(description="(len(ids), dim) frozen document vectors")

    class Limits(BaseModel):
        max_batch: int
        max_k: int
        max_ids: int
        max_body_bytes: int
        max_in_flight: int

    class InfoResponse(BaseModel):
        index_id: str
        source: str
        dim: int
        size: int
        embedder: str
        factory: str
        metric: str
        normalized: bool
        ready: bool
        auth: bool
        limits: Limits
        version: str

    class ErrorResponse(BaseModel):
        detail: str

    class HealthResponse(BaseModel):
        status: str = Field(description="ok | ready | loading | failed")
        detail: str | None = None

    def error(description: str, retry: bool = False) -> dict:
        out: dict[str, Any] = {"model": ErrorResponse, "description": description}
        if retry:
            out["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
        return out

    common: dict[int | str, dict[str, Any]] = {
        400: error("the body is not JSON"),
        413: error("request body too large"),
        503: error("too many requests in flight, or the index is still loading", retry=True),
    }
    if token_bytes is not None:
        common[401] = error("missing or wrong bearer token")

    bearer = HTTPBearer(auto_error=False, description="the service's token (a Kubernetes Secret)")

    async def authenticate(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token_bytes is None:
            return
        given = creds.credentials.encode() if creds is not None else b""
        if creds is None or not hmac.compare_digest(given, token_bytes):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    v1_deps = [Depends(authenticate)] if token_bytes is not None else []

    def ready_retriever() -> FaissRetriever:
        if state.retriever is None:
            detail = f"index failed to load: {state.error}" if state.error else "index is loading"
            raise HTTPException(503, detail, headers={"Retry-After": str(RETRY_AFTER_LOADING_S)})
        return state.retriever

    async def in_pool(fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args, **kwargs))

    @asynccontextmanager
    async def lifespan(_app):
        threading.Thread(target=state.load, name="index-load", daemon=True).start()
        try:
            yield
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="rag-jobs index service", version=rag_jobs.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="FAISS search over the frozen passage vectors of a rag-jobs index.")
    app.state.index = state
    app.state.metrics = metrics
    app.state.models = {"SearchRequest": SearchRequest, "SearchResponse": SearchResponse,
                        "InfoResponse": InfoResponse, "PassagesResponse": PassagesResponse,
                        "VectorsResponse": VectorsResponse}

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request, exc: RequestValidationError):
        # FastAPI's own answer echoes each bad input, which may be megabytes of floats or a NaN that
        # JSON cannot carry (a 500); the location, message and limits say what was wrong.
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", "")),
                   **({"ctx": {k: _plain(v) for k, v in e["ctx"].items()}} if e.get("ctx") else {})}
                  for e in exc.errors()[:20]]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.post("/v1/search", response_model=SearchResponse, responses=common, dependencies=v1_deps,
              summary="top-k passages of a batch of query vectors")
    async def search(req: SearchRequest):
        retriever = ready_retriever()
        queries = np.asarray(req.queries, dtype=np.float32)  # (n_q, dim)
        metrics.batch.observe(len(queries))
        t0 = time.perf_counter()
        res = await in_pool(_quiet_search, retriever, queries, req.k, req.with_vectors)
        metrics.search_seconds.observe(time.perf_counter() - t0)
        body: dict[str, Any] = {"index_id": index_id, "k": int(res.scores.shape[1]), "ids": res.ids,
                                "scores": _finite_or_none(res.scores), "passages": None, "vectors": None}
        if req.with_passages:
            body["passages"] = [[{"id": p.id, "title": p.title, "text": p.text} for p in retriever.passages(row)]
                                for row in res.ids]
        if req.with_vectors:
            body["vectors"] = np.asarray(res.vectors).tolist()
        return JSONResponse(body)

    def lookup(fn: Callable, ids: list[str]) -> Any:
        try:
            return fn(ids)
        except KeyError as exc:
            raise HTTPException(404, f"unknown passage id {exc.args[0]!r}") from None

    @app.post("/v1/passages", response_model=PassagesResponse, dependencies=v1_deps,
              responses={**common, 404: error("an id is not in the index")}, summary="passages by id")
    async def passages(req: IdsRequest):
        retriever = ready_retriever()
        found = await in_pool(lookup, retriever.passages, req.ids)
        return JSONResponse({"passages": [{"id": p.id, "title": p.title, "text": p.text} for p in found]})

    @app.post("/v1/vectors", response_model=VectorsResponse, dependencies=v1_deps,
              responses={**common, 404: error("an id is not in the index")}, summary="frozen document vectors by id")
    async def vectors(req: IdsRequest):
        retriever = ready_retriever()
        if not req.ids:
            return JSONResponse({"vectors": []})
        found = await in_pool(lookup, retriever.vectors_for, req.ids)
        return JSONResponse({"vectors": np.asarray(found).tolist()})

    @app.get("/v1/info", response_model=InfoResponse, dependencies=v1_deps, responses=common,
             summary="what the index is and the service's limits")
    async def info():
        return InfoResponse(
            index_id=index_id, source=source.description, dim=dim, size=int(meta.get("size", 0)),
            embedder=str(meta.get("embedder", "")), factory=str(meta.get("factory", "")),
            metric=str(meta.get("metric", "inner_product")), normalized=bool(meta.get("normalized", True)),
            ready=state.retriever is not None, auth=token_bytes is not None, version=rag_jobs.__version__,
            limits=Limits(max_batch=max_batch, max_k=max_k, max_ids=max_ids, max_body_bytes=max_body_bytes,
                          max_in_flight=max_in_flight))

    health_503 = {503: {"model": HealthResponse, "description": "not ready / loading failed"}}

    @app.get("/healthz", response_model=HealthResponse, responses=health_503, summary="liveness")
    async def healthz():
        if state.error:
            return JSONResponse({"status": "failed", "detail": state.error}, status_code=503)
        return {"status": "ok", "detail": None}

    @app.get("/readyz", response_model=HealthResponse, responses=health_503, summary="readiness")
    async def readyz():
        if state.retriever is not None:
            return {"status": "ready", "detail": None}
        if state.error:
            return JSONResponse({"status": "failed", "detail": state.error}, status_code=503)
        return JSONResponse({"status": "loading", "detail": None}, status_code=503)

    from prometheus_client import CONTENT_TYPE_LATEST

    @app.get("/metrics", response_class=Response, summary="Prometheus metrics",
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text exposition format"}})
    async def prometheus_metrics():
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(GuardMiddleware, max_body_bytes=max_body_bytes, max_in_flight=max_in_flight,
                       metrics=metrics)
    return app


# ---------------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------------


def read_token(token_file: "str | os.PathLike[str] | None" = None, env: "dict[str, str] | None" = None) -> "str | None":
    """The bearer token: from `token_file`, else $RAG_JOBS_INDEX_TOKEN, else the file $RAG_JOBS_INDEX_TOKEN_FILE."""
    env = os.environ if env is None else env
    path = token_file
    if path is None:
        value = (env.get(TOKEN_ENV) or "").strip()
        if value:
            return value
        path = env.get(TOKEN_FILE_ENV) or None
        if path is None:
            return None
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"token file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    if not value:
        raise ConfigError(f"token file {str(path)!r} is empty")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    index: str,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: "str | None" = None,
    no_auth: bool = False,
    log_level: str = "info",
    **limits: Any,
) -> None:
    """Run the service with uvicorn until SIGINT/SIGTERM. Without a token the service refuses to listen
    beyond the loopback interface unless `no_auth` says so explicitly."""
    import uvicorn

    if token is None and not no_auth and not _is_loopback(host):
        raise ConfigError(f"no token for a service listening on {host}: give --token-file, set {TOKEN_ENV} "
                          f"or {TOKEN_FILE_ENV}, or pass --no-auth")
    if token is not None and no_auth:
        raise ConfigError("--no-auth contradicts the token that was given")
    if not 0 < port < 65536:
        raise ConfigError(f"port must be in 1..65535, got {port}")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if token is None:
        log.warning("authentication is OFF: anyone who can reach %s:%d can query the index", host, port)
    app = create_app(index, token=token, **limits)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False,
                timeout_graceful_shutdown=10, proxy_headers=False)


def _env_int(env: "dict[str, str]", name: str, default: "int | None") -> "int | None":
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def main(argv: "list[str] | None" = None, env: "dict[str, str] | None" = None) -> int:
    """`python -m rag_jobs.index.service`: the container's entrypoint (no typer, no torch needed).
    Every flag defaults to an environment variable (RAG_JOBS_INDEX, RAG_JOBS_INDEX_MAX_BATCH, ...), which
    is how the Helm chart's ConfigMap configures it."""
    env = dict(os.environ if env is None else env)
    try:
        defaults = {name: _env_int(env, f"RAG_JOBS_INDEX_{name.upper()}", value) for name, value in (
            ("port", DEFAULT_PORT), ("max_batch", DEFAULT_MAX_BATCH), ("max_k", DEFAULT_MAX_K),
            ("max_ids", DEFAULT_MAX_IDS), ("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
            ("max_in_flight", DEFAULT_MAX_IN_FLIGHT), ("search_threads", None))}
    except ConfigError as exc:
        print(f"index-service: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    ap = argparse.ArgumentParser(prog="python -m rag_jobs.index.service", description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=env.get("RAG_JOBS_INDEX") or None,
                    help="index folder, or <store-uri>/runs/<run-id>/build-index (env RAG_JOBS_INDEX)")
    ap.add_argument("--host", default=env.get("RAG_JOBS_INDEX_HOST", "127.0.0.1"),
                    help="interface to listen on (0.0.0.0 in a container)")
    ap.add_argument("--port", type=int, default=defaults["port"])
    ap.add_argument("--token-file", default=None, help=f"file holding the bearer token (else ${TOKEN_ENV})")
    ap.add_argument("--no-auth", action="store_true", help="serve without a token (explicitly)")
    ap.add_argument("--max-batch", type=int, default=defaults["max_batch"])
    ap.add_argument("--max-k", type=int, default=defaults["max_k"])
    ap.add_argument("--max-ids", type=int, default=defaults["max_ids"])
    ap.add_argument("--max-body-bytes", type=int, default=defaults["max_body_bytes"])
    ap.add_argument("--max-in-flight", type=int, default=defaults["max_in_flight"])
    ap.add_argument("--search-threads", type=int, default=defaults["search_threads"])
    ap.add_argument("--log-level", default=env.get("RAG_JOBS_INDEX_LOG_LEVEL", "info"),
                    choices=["debug", "info", "warning", "error"])
    args = ap.parse_args(argv)
    if not args.index:
        ap.error("--index (or RAG_JOBS_INDEX) is required")
    try:
        token = None if args.no_auth else read_token(args.token_file, env)
        serve(args.index, host=args.host, port=args.port, token=token, no_auth=args.no_auth,
              log_level=args.log_level, max_batch=args.max_batch, max_k=args.max_k, max_ids=args.max_ids,
              max_body_bytes=args.max_body_bytes, max_in_flight=args.max_in_flight,
              search_threads=args.search_threads)
    except RagJobsError as exc:
        print(f"index-service: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
