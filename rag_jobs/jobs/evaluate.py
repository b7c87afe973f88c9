"""`evaluate`: retrieve the top-k for each question, generate greedily, score EM / F1 / Recall@k."""

from __future__ import annotations

import json
import math
import sys
import time

from rag_jobs.core import metrics as M
from rag_jobs.index import encode_texts, load_index
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.jobs.splits_io import SPLITS_FILE, read_splits
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.models.generation import format_prompt, generate_answers
from rag_jobs.progress import Progress

EMBEDDER_DIR = "embedder"  # where finetune steps save a sentence-transformers model
ADAPTER_DIR = "adapter"  # where finetune steps save a LoRA adapter


def resolve_models(ctx: StepContext, index_meta: dict) -> tuple[str, str | None, dict]:
    """(embedder path or name, adapter folder or None, provenance) from the step's inputs."""
    used = {"embedder": index_meta["embedder"], "generator": ctx.cfg.generator, "adapter": None}
    embedder = index_meta["embedder"]
    if ctx.has_input("embedder"):
        embedder = str(ctx.input_dir("embedder") / EMBEDDER_DIR)
        used["embedder"] = f"{ctx.spec.inputs['embedder']} (fine-tuned from {index_meta['embedder']})"
    adapter = None
    if ctx.has_input("generator"):
        adapter = str(ctx.input_dir("generator") / ADAPTER_DIR)
        used["adapter"] = ctx.spec.inputs["generator"]
    return embedder, adapter, used


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    t0 = time.perf_counter()
    index_dir = ctx.input_dir("index")
    retriever = load_index(index_dir)
    examples = getattr(read_splits(index_dir / SPLITS_FILE), cfg.split)
    if cfg.limit:
        examples = examples[: cfg.limit]
    embedder_name, adapter, used = resolve_models(ctx, retriever.meta)
    ctx.log(f"evaluating {len(examples)} {cfg.split} questions; embedder={used['embedder']} "
            f"generator={used['generator']} adapter={used['adapter']}")
    embedder = load_embedder(embedder_name, device=ctx.device)
    q_vecs = encode_texts(embedder, [e.question for e in examples])
    del embedder
    k_search = max(cfg.k, cfg.recall_k)
    result = retriever.search(q_vecs, k_search)
    labelled = any(e.gold_passage_ids for e in examples)
    recall_name = f"recall@{cfg.recall_k}" if labelled else f"answer_recall@{cfg.recall_k}"
    rows = []
    for ex, ids in zip(examples, result.ids):
        if labelled:
            rec = M.recall_at_k(ids, ex.gold_passage_ids, cfg.recall_k) if ex.gold_passage_ids else math.nan
        else:
            rec = M.answer_recall_at_k([p.content for p in retriever.passages(ids)], ex.answers, cfg.recall_k)
        rows.append({"id": ex.id, "question": ex.question, "answers": list(ex.answers), "retrieved": ids[: cfg.k],
                     recall_name: rec})
    retrieval_s = time.perf_counter() - t0
    if not cfg.skip_generation:
        model, tok = load_generator(cfg.generator, device=ctx.device, quantization=cfg.quantization,
                                    adapter_dir=adapter)
        prompts = [
            format_prompt(tok, ex.question, [p.content for p in retriever.passages(r["retrieved"])],
                          max_prompt_tokens=cfg.max_prompt_tokens)
            for ex, r in zip(examples, rows)
        ]
        progress = Progress(ctx.label, "answered", len(prompts), unit="q")
        preds = generate_answers(model, tok, prompts, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                                 progress=progress.update)
        for ex, r, p in zip(examples, rows, preds):
            r.update(prediction=p, em=M.exact_match(p, ex.answers), f1=M.token_f1(p, ex.answers))
    with open(ctx.out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    metrics = summarize(rows, recall_name)
    metrics.update(split=cfg.split, retrieval_s=retrieval_s, eval_s=time.perf_counter() - t0, models=used)
    (ctx.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    ctx.log(" ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics


def summarize(rows: list[dict], recall_name: str) -> dict:
    """Means and bootstrap 95% intervals of EM, F1 and Recall@k over the rows."""
    out: dict = {"n": len(rows), "recall_metric": recall_name}
    names = [("em", "em"), ("f1", "f1"), (recall_name, "recall")]
    for key, short in names:
        values = [r[key] for r in rows if key in r]
        if not values:
            continue
        out[short] = M.mean(values)
        lo, hi = M.bootstrap_ci(values)
        out[f"{short}_ci95"] = [lo, hi]
    return out


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("evaluate", body, argv))


if __name__ == "__main__":
    main()
