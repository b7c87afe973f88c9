"""`evaluate`: retrieve the top-k for each question, generate greedily, score EM / F1 / Recall@k."""

from __future__ import annotations

import json
import os
import sys
import time

from rag_jobs.artifacts.layout import ADAPTER_DIR, EMBEDDER_DIR
from rag_jobs.index import load_index
from rag_jobs.index.client import ServiceRetriever
from rag_jobs.index.faiss_index import META_FILE
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.jobs.scoring import score_examples
from rag_jobs.jobs.splits_io import SPLITS_FILE, read_splits
from rag_jobs.models import load_embedder, load_generator


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


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    t0 = time.perf_counter()
    if cfg.retriever == "local":
        index_dir = ctx.input_dir("index")
        retriever = load_index(index_dir)
        index_meta = retriever.meta
    else:  # the index service: fetch only the splits and the index description
        index_dir = ctx.input_dir("index", files=[SPLITS_FILE, META_FILE])
        index_meta = json.loads((index_dir / META_FILE).read_text())
        retriever = ServiceRetriever(cfg.retriever, os.environ.get("RAG_JOBS_INDEX_TOKEN"))
        ctx.log(f"retrieving through the index service at {cfg.retriever}")
    examples = getattr(read_splits(index_dir / SPLITS_FILE), cfg.split)
    if cfg.limit:
        examples = examples[: cfg.limit]
    embedder_name, adapter, used = resolve_models(ctx, index_meta["embedder"])
    ctx.log(f"evaluating {len(examples)} {cfg.split} questions; embedder={used['embedder']} "
            f"generator={used['generator']} adapter={used['adapter']}")
    embedder = load_embedder(embedder_name, device=ctx.device)
    generator = None
    if not cfg.skip_generation:
        generator = load_generator(cfg.generator, device=ctx.device, quantization=cfg.quantization,
                                   adapter_dir=adapter)
    rows, metrics = score_examples(
        retriever, examples, embedder, generator, k=cfg.k, recall_k=cfg.recall_k,
        max_prompt_tokens=cfg.max_prompt_tokens, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
        label=ctx.label,
    )
    with open(ctx.out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    metrics.update(split=cfg.split, eval_s=time.perf_counter() - t0, models=used)
    (ctx.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    ctx.log(" ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("evaluate", body, argv))


if __name__ == "__main__":
    main()
