"""The index service: a loaded FAISS index behind HTTP (FastAPI, served by uvicorn).

    python -m rag_jobs.index.service --index <store-uri>/runs/<run-id>/build-index --token-file /path/token
    rag-jobs serve --index ./index-folder            (the same, from the main CLI)
    rag-jobs serve --pipeline ./bundle               (also answers questions with an exported bundle)

Endpoints (the OpenAPI schema at /openapi.json describes every body and status code):

    POST /v1/search     a batch of query vectors + k -> passage ids and scores (optionally texts, vectors)
    POST /v1/passages   passage ids -> id, title, text
    POST /v1/vectors    passage ids -> the frozen document vectors
    POST /v1/answer     (with a pipeline) question -> answer + sources: the bundle's encoder and generator
    GET  /v1/info       index id, dimension, size, embedder, limits, readiness
    GET  /healthz       liveness (fails only when loading the index failed)
    GET  /readyz        readiness (ready once the index, and a pipeline's models, are loaded in the background)
    GET  /metrics       Prometheus text format

The /v1 endpoints need `Authorization: Bearer <token>` when a token is configured (compared in
constant time). Limits answer with clear status codes: a body over `max_body_bytes` 413; k, batch
size, vector dimension or values out of range 422 (request validation); more than `max_in_flight`
requests at once, or the index still loading, 503 with Retry-After.
"""

from rag_jobs.index.service.app import create_app
from rag_jobs.index.service.constants import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_IDS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_K,
    DEFAULT_PORT,
    F32_MAX,
    INDEX_FILES,
    RETRY_AFTER_LOADING_S,
    RETRY_AFTER_OVERLOADED_S,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
)
from rag_jobs.index.service.guard import GuardMiddleware, Message, Receive, Scope, Send
from rag_jobs.index.service.metrics import ServiceMetrics
from rag_jobs.index.service.run import main, read_token, serve
from rag_jobs.index.service.source import IndexSource, content_id

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_IDS",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_K",
    "DEFAULT_PORT",
    "F32_MAX",
    "INDEX_FILES",
    "RETRY_AFTER_LOADING_S",
    "RETRY_AFTER_OVERLOADED_S",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "GuardMiddleware",
    "IndexSource",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "ServiceMetrics",
    "content_id",
    "create_app",
    "main",
    "read_token",
    "serve",
]
