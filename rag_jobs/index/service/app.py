"""The ASGI app serving one index (`create_app`), and the state of its background load.

No `from __future__ import annotations` here: FastAPI reads the request models, which are built per
app (they carry the index dimension and the limits), from the endpoint signatures at run time.
"""

import asyncio
import functools
import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np

from rag_jobs.errors import ConfigError, IntegrityError, RagJobsError
from rag_jobs.index.faiss_index import FaissRetriever
from rag_jobs.index.service.answer import PipelineState, add_answer_endpoint
from rag_jobs.index.service.constants import (
    DEFAULT_MAX_ANSWERS_QUEUED,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_IDS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_K,
    DEFAULT_MAX_QUESTION_CHARS,
    F32_MAX,
    RETRY_AFTER_LOADING_S,
)
from rag_jobs.index.service.guard import GuardMiddleware
from rag_jobs.index.service.metrics import ServiceMetrics
from rag_jobs.index.service.source import IndexSource, content_id

log = logging.getLogger("rag_jobs.index.service")

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
    index_uri_or_dir: "str | os.PathLike[str] | IndexSource | None" = None,
    *,
    pipeline: "str | os.PathLike[str] | None" = None,
    pipeline_device: str = "auto",
    token: "str | None" = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_k: int = DEFAULT_MAX_K,
    max_ids: int = DEFAULT_MAX_IDS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    search_threads: "int | None" = None,
    max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS,
    max_answers_queued: int = DEFAULT_MAX_ANSWERS_QUEUED,
):
    """The ASGI app serving one index. index_meta.json is read now (it fixes the vector dimension
    of the request schema); the index itself loads in a background thread once the app starts.

    With `pipeline` (a bundle of `rag-jobs export`: a folder or a store prefix) the app also answers
    questions (POST /v1/answer) with the bundle's models over its index: the index defaults to the
    bundle's, and a given index must have the same content id. The models load after the index, in the
    background; the app is ready when both are."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

    import rag_jobs

    for name, value in (("max_batch", max_batch), ("max_k", max_k), ("max_ids", max_ids),
                        ("max_body_bytes", max_body_bytes), ("max_in_flight", max_in_flight),
                        ("max_question_chars", max_question_chars), ("max_answers_queued", max_answers_queued)):
        _positive(name, value)
    if search_threads is None:
        search_threads = min(4, os.cpu_count() or 1)
    _positive("search_threads", search_threads)
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ConfigError("token must be a non-empty string (or None to turn authentication off)")
    token_bytes = token.strip().encode() if token is not None else None

    bundle = None
    if pipeline is not None:
        from rag_jobs.bundle import bundle_description

        bundle = bundle_description(str(pipeline))
        if index_uri_or_dir is None:
            index_uri_or_dir = bundle["index"]["uri"]
    if index_uri_or_dir is None:
        raise ConfigError("give an index (--index) or a pipeline bundle (--pipeline)")
    source = index_uri_or_dir if isinstance(index_uri_or_dir, IndexSource) else IndexSource(index_uri_or_dir)
    meta = source.read_meta()
    if bundle is not None and content_id(meta) != bundle["index"]["content_id"]:
        raise ConfigError(f"index {source.description} (content id {content_id(meta)}) is not the index of "
                          f"pipeline {pipeline} ({bundle['index']['content_id']}, {bundle['index']['uri']})")
    dim = int(meta["dim"])
    index_id = source.index_id(meta)
    metrics = ServiceMetrics()
    state = _IndexState(source, meta, metrics)
    models = (PipelineState(str(pipeline), bundle, state, metrics, pipeline_device)
              if bundle is not None else None)
    pool = ThreadPoolExecutor(max_workers=search_threads, thread_name_prefix="faiss-search")
    # one generation at a time: the model's memory is sized for one batch, and requests queue in front of it
    generation = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate") if models else None
    queued = [0]  # /v1/answer requests admitted and not finished (touched on the event loop's thread only)

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

    class ContainsResponse(BaseModel):
        found: list[bool] = Field(description="per id, whether the index holds it")

    class PipelineInfo(BaseModel):
        strategy: str
        run_id: str
        metrics: dict[str, float | int | str | None]
        k: int
        ready: bool

    class InfoResponse(BaseModel):
        index_id: str
        content_id: str = Field(description="sha256 of the index files' digests: equal ids, equal indexes")
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
        pipeline: PipelineInfo | None = Field(None, description="the answer pipeline (serve --pipeline), if any")

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
        if models is not None:
            threading.Thread(target=models.load, name="pipeline-load", daemon=True).start()
        try:
            yield
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if generation is not None:
                generation.shutdown(wait=False, cancel_futures=True)

    description = "FAISS search over the frozen passage vectors of a rag-jobs index."
    if bundle is not None:
        description += f" Answers questions with the {bundle['strategy']} pipeline of run {bundle['run']['run_id']}."
    app = FastAPI(title="rag-jobs index service", version=rag_jobs.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, description=description)
    app.state.index = state
    app.state.pipeline = models
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

    @app.post("/v1/contains", response_model=ContainsResponse, dependencies=v1_deps, responses=common,
              summary="which ids the index holds (membership, without their texts)")
    async def contains(req: IdsRequest):
        retriever = ready_retriever()
        found = await in_pool(retriever.contains, req.ids) if req.ids else []
        return JSONResponse({"found": [bool(x) for x in found]})

    @app.get("/v1/info", response_model=InfoResponse, dependencies=v1_deps, responses=common,
             summary="what the index is and the service's limits")
    async def info():
        return InfoResponse(
            index_id=index_id, content_id=content_id(meta), source=source.description, dim=dim,
            size=int(meta.get("size", 0)),
            embedder=str(meta.get("embedder", "")), factory=str(meta.get("factory", "")),
            metric=str(meta.get("metric", "inner_product")), normalized=bool(meta.get("normalized", True)),
            ready=state.retriever is not None, auth=token_bytes is not None, version=rag_jobs.__version__,
            limits=Limits(max_batch=max_batch, max_k=max_k, max_ids=max_ids, max_body_bytes=max_body_bytes,
                          max_in_flight=max_in_flight),
            pipeline=None if bundle is None else PipelineInfo(
                strategy=str(bundle["strategy"]), run_id=str(bundle["run"]["run_id"]),
                metrics={k: v for k, v in bundle.get("metrics", {}).items() if isinstance(v, (int, float, str))
                         or v is None},
                k=int(bundle["prompt"]["k"]), ready=models.pipeline is not None))

    if bundle is not None:
        add_answer_endpoint(app, models, bundle, common=common, deps=v1_deps, index_id=index_id, metrics=metrics,
                         ready_retriever=ready_retriever, generation=generation, queued=queued,
                         max_k=max_k, max_question_chars=max_question_chars, max_answers_queued=max_answers_queued,
                         error=error)

    health_503 = {503: {"model": HealthResponse, "description": "not ready / loading failed"}}

    def failure() -> "str | None":
        if state.error:
            return state.error
        return f"pipeline: {models.error}" if models is not None and models.error else None

    @app.get("/healthz", response_model=HealthResponse, responses=health_503, summary="liveness")
    async def healthz():
        if failure():
            return JSONResponse({"status": "failed", "detail": failure()}, status_code=503)
        return {"status": "ok", "detail": None}

    @app.get("/readyz", response_model=HealthResponse, responses=health_503,
             summary="readiness (the index, and the pipeline's models when serving one)")
    async def readyz():
        if failure():
            return JSONResponse({"status": "failed", "detail": failure()}, status_code=503)
        if state.retriever is not None and (models is None or models.pipeline is not None):
            return {"status": "ready", "detail": None}
        what = "index" if state.retriever is None else "models"
        return JSONResponse({"status": "loading", "detail": f"loading the {what}"}, status_code=503)

    from prometheus_client import CONTENT_TYPE_LATEST

    @app.get("/metrics", response_class=Response, summary="Prometheus metrics",
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text exposition format"}})
    async def prometheus_metrics():
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(GuardMiddleware, max_body_bytes=max_body_bytes, max_in_flight=max_in_flight,
                       metrics=metrics)
    return app
