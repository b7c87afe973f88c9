"""The evaluate step's inputs: the retriever (the local index, or the index service) and the models to score."""

from __future__ import annotations

from rag_jobs.artifacts.layout import ADAPTER_DIR, EMBEDDER_DIR, SPLITS_FILE
from rag_jobs.jobs.common import StepContext
from rag_jobs.jobs.splits_io import read_splits
from rag_jobs.steps.retrieval import open_retriever as open_step_retriever


def open_retriever(ctx: StepContext):
    """(retriever, the index's description, the questions of the evaluated split, `limit` applied): the index
    memory-mapped in process, or the index service (steps.retrieval)."""
    cfg = ctx.cfg
    retriever = open_step_retriever(ctx)
    index_meta = retriever.meta
    examples = getattr(read_splits(ctx.input_dir("splits") / SPLITS_FILE), cfg.split)
    return retriever, index_meta, examples[: cfg.limit] if cfg.limit else examples


def resolve_models(ctx: StepContext, base_embedder: str) -> tuple[str, str | None, dict]:
    """(embedder path or name, adapter folder or None, provenance) from the step's inputs."""
    used = {"embedder": base_embedder, "generator": ctx.cfg.generator, "adapter": None}
    embedder = base_embedder
    if ctx.has_input("embedder"):
        embedder = str(ctx.input_dir("embedder") / EMBEDDER_DIR)
        used["embedder"] = f"{ctx.resolved_input('embedder')} (fine-tuned from {base_embedder})"
    adapter = None
    if ctx.has_input("generator"):
        adapter = str(ctx.input_dir("generator") / ADAPTER_DIR)
        used["adapter"] = ctx.resolved_input("generator")
    return embedder, adapter, used
