"""Where a step retrieves: the index memory-mapped in the step, or the index service (an execution setting).

The run setting `retriever` (graph.json's settings, not any step's hash) or RAG_JOBS_RETRIEVER (set on every
pod by the cluster config) is `local` or the URL of an index service. Through the service, a step fetches
only index_meta.json and checks that the service serves that very index (its content id), so the same step
gives the same results either way.
"""

from __future__ import annotations

import json
import os

from rag_jobs.errors import ConfigError
from rag_jobs.index import load_index
from rag_jobs.index.client import TOKEN_ENV, ServiceRetriever
from rag_jobs.index.faiss_index import META_FILE
from rag_jobs.index.service.source import content_id
from rag_jobs.jobs.common import StepContext

RETRIEVER_ENV = "RAG_JOBS_RETRIEVER"


def retriever_setting(ctx: StepContext) -> str:
    where = (os.environ.get(RETRIEVER_ENV) or "").strip() or str(ctx.graph.settings.get("retriever") or "local")
    if where != "local" and not where.startswith(("http://", "https://")):
        raise ConfigError(f"retriever={where!r} must be local or an http(s):// index service URL")
    return where


def open_retriever(ctx: StepContext):
    """The step's retriever, with `.meta` (the index's description) either way."""
    where = retriever_setting(ctx)
    if where == "local":
        return load_index(ctx.input_dir("index"), ctx.input_dir("corpus") if ctx.has_input("corpus") else None)
    meta = json.loads((ctx.input_dir("index", files=[META_FILE]) / META_FILE).read_text())
    retriever = ServiceRetriever(where, os.environ.get(TOKEN_ENV))
    if retriever.content_id != content_id(meta):
        raise ConfigError(f"the index service at {where} serves index {retriever.content_id} "
                          f"({retriever.info.get('source')}), not this step's input {content_id(meta)}")
    retriever.meta = {**meta, **retriever.meta}
    ctx.log(f"retrieving through the index service at {where}")
    return retriever
