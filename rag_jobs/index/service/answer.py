"""The answer pipeline of `serve --pipeline`: the bundle's models (`PipelineState`, loaded in the background
after the index) and POST /v1/answer (`add_answer_endpoint`), added to the index service's app.

No `from __future__ import annotations` here: FastAPI reads the request model from the endpoint's signature.
"""

import asyncio
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated

from rag_jobs.errors import IntegrityError, RagJobsError
from rag_jobs.index.service.constants import MAX_ANSWER_K, RETRY_AFTER_LOADING_S, RETRY_AFTER_OVERLOADED_S
from rag_jobs.index.service.metrics import ServiceMetrics

if TYPE_CHECKING:
    from rag_jobs.index.service.app import _IndexState

log = logging.getLogger("rag_jobs.index.service")


class PipelineState:
    """The bundle's models (serve --pipeline), loaded once the index is: they answer over the served index."""

    def __init__(self, spec: str, desc: dict, index: "_IndexState", metrics: ServiceMetrics, device: str):
        self.spec, self.desc, self.index, self.metrics, self.device = spec, desc, index, metrics, device
        self.pipeline = None
        self.error: str | None = None
        self.loaded = threading.Event()

    def load(self) -> None:
        self.index.loaded.wait()
        t0 = time.perf_counter()
        try:
            if self.index.retriever is None:
                raise IntegrityError(f"the index did not load: {self.index.error}")
            from rag_jobs.bundle import Pipeline, open_bundle

            folder = open_bundle(self.spec)
            self.pipeline = Pipeline(folder, device=self.device, retriever=self.index.retriever)
            self.metrics.pipeline_ready.set(1)
            self.metrics.pipeline_load_seconds.set(time.perf_counter() - t0)
            log.info("pipeline %s (%s) loaded in %.1fs", self.spec, self.desc["strategy"], time.perf_counter() - t0)
        except Exception as exc:  # reported by /readyz and /healthz; the pod is restarted
            self.error = exc.one_line() if isinstance(exc, RagJobsError) else f"{type(exc).__name__}: {exc}"
            log.error("loading pipeline %s failed: %s", self.spec, self.error)
        finally:
            self.loaded.set()



def add_answer_endpoint(app, models: PipelineState, bundle: dict, *, common: dict, deps: list, index_id: str,
                     metrics: ServiceMetrics, ready_retriever: Callable, generation: ThreadPoolExecutor,
                     queued: list, max_k: int, max_question_chars: int, max_answers_queued: int,
                     error: Callable) -> None:
    """POST /v1/answer: question -> answer + sources, with the bundle's query encoder and generator."""
    from fastapi import HTTPException
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

    from rag_jobs.index.service.app import _integral  # the search request's rule for k (app is loaded by now)

    k_max = min(max_k, MAX_ANSWER_K)
    k_default = min(int(bundle["prompt"]["k"]), k_max)
    # a lone surrogate ("\\ud800", valid JSON, not text) is refused by pydantic's str itself (422)
    Question = Annotated[str, Field(min_length=1, max_length=max_question_chars, pattern=r"\S")]

    class AnswerRequest(BaseModel):
        """One question, answered with the pipeline's prompt over the top-k passages."""

        model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
            "examples": [{"question": "Which country is Warsaw the capital of?", "k": k_default}]})
        question: Question = Field(description=f"the question: 1 to {max_question_chars} characters, not blank")
        k: Annotated[int, BeforeValidator(_integral)] = Field(
            k_default, ge=1, le=k_max, description=f"passages retrieved into the prompt, 1 to {k_max} "
                                                   f"(default: the run's {k_default})")
        with_passages: bool = Field(False, description="also return each source's text")

    class Source(BaseModel):
        id: str
        title: str
        score: float | None = Field(description="cosine of the question and the passage; null if not finite")
        text: str | None = None

    class AnswerResponse(BaseModel):
        """The generated answer and the passages its prompt held, best first."""

        index_id: str
        strategy: str
        question: str
        answer: str
        sources: list[Source]

    def answer_one(question: str, k: int, with_passages: bool) -> dict:
        row = models.pipeline.ask([question], k)[0]
        texts = {}
        if with_passages:
            texts = {p.id: p.text for p in models.pipeline.retriever.passages([s["id"] for s in row["sources"]])}
        sources = [{"id": s["id"], "title": s["title"], "text": texts.get(s["id"]),
                    "score": s["score"] if math.isfinite(s["score"]) else None} for s in row["sources"]]
        return {"index_id": index_id, "strategy": str(bundle["strategy"]), "question": question,
                "answer": row["answer"], "sources": sources}

    responses = {**common, 503: error("too many answers queued, or the index or models are still loading",
                                      retry=True)}

    @app.post("/v1/answer", response_model=AnswerResponse, dependencies=deps, responses=responses,
              summary="answer a question with the pipeline (retrieve, then generate)")
    async def answer(req: AnswerRequest):
        ready_retriever()
        if models.pipeline is None:
            detail = f"pipeline failed to load: {models.error}" if models.error else "the models are loading"
            raise HTTPException(503, detail, headers={"Retry-After": str(RETRY_AFTER_LOADING_S)})
        if queued[0] >= max_answers_queued:
            raise HTTPException(503, f"too many answers queued (limit {max_answers_queued})",
                                headers={"Retry-After": str(RETRY_AFTER_OVERLOADED_S)})
        queued[0] += 1
        metrics.answers_queued.inc()
        t0 = time.perf_counter()
        try:
            body = await asyncio.get_running_loop().run_in_executor(
                generation, functools.partial(answer_one, req.question, req.k, req.with_passages))
        finally:
            queued[0] -= 1
            metrics.answers_queued.dec()
        metrics.answer_seconds.observe(time.perf_counter() - t0)
        return JSONResponse(body)
