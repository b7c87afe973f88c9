"""`score-pool`: cached phase 2's pool, log p(answer | question, passage) of the frozen generator over each
training question's top-K passages under the starting embedder, computed once for the whole phase-2 grid."""

from __future__ import annotations

import sys

import torch

from rag_jobs.index import encode_texts
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.steps.pool import POOL_KEYS, build_pool, validation_settings, write_pool
from rag_jobs.steps.scoring import score_examples
from rag_jobs.steps.training import load_step_models, load_training_data
from rag_jobs.training.loop import seed_everything


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    seed_everything(cfg.seed)
    retriever, train_ex, val_ex = load_training_data(ctx)
    embedder, emb_path, generator, tok, adapter = load_step_models(ctx, retriever)
    generator.eval()
    hits = retriever.search(encode_texts(embedder, [e.question for e in train_ex]), cfg.pool)
    tensors, meta = build_pool(train_ex, hits.ids, lambda ids: [p.content for p in retriever.passages(ids)],
                               generator, tok, max_prompt_tokens=cfg.max_prompt_tokens,
                               max_answer_tokens=cfg.max_answer_tokens, device=ctx.device,
                               batch_size=cfg.batch_size * cfg.k, label=ctx.label)
    meta.update({key: getattr(cfg, key) for key in POOL_KEYS})
    meta["embedder"] = ctx.resolved_input("embedder") if ctx.has_input("embedder") else emb_path
    meta["adapter"] = ctx.resolved_input("generator") if adapter else None
    if cfg.validation.select_by == "em":  # the grid's children reuse these where their top-k is unchanged
        v = cfg.validation
        with torch.no_grad():
            rows, _ = score_examples(retriever, val_ex, embedder, (generator, tok), k=cfg.k, recall_k=5,
                                     max_prompt_tokens=cfg.max_prompt_tokens, batch_size=v.batch_size,
                                     max_new_tokens=v.max_new_tokens, label=ctx.label)
        meta["validation_answers"] = {"settings": validation_settings(cfg), "answers": {
            r["id"]: {"ids": r["retrieved"], "prediction": r["prediction"]} for r in rows}}
    write_pool(ctx.out_dir, tensors, meta)
    return {"pool_questions": len(train_ex), "pool_k": cfg.pool, "pool_pairs": len(train_ex) * cfg.pool,
            "pool_validation_answers": len(meta.get("validation_answers", {}).get("answers", {}))}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("score-pool", body, argv))


if __name__ == "__main__":
    main()
