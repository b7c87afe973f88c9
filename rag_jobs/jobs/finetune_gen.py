"""`finetune-gen`: QLoRA (rank 16) on the answer NLL, with the top-k context of the baseline embedder."""

from __future__ import annotations

import sys

from rag_jobs.artifacts.layout import ADAPTER_DIR
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.models.lora import add_lora
from rag_jobs.steps.generate import make_step_fn, prompt_items
from rag_jobs.steps.training import fit, group, main_rank_only, start_training, train_stats, validate


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    dist, retriever, train_ex, val_ex = start_training(ctx)
    embedder = load_embedder(retriever.meta["embedder"], device=ctx.device)
    model, tok = load_generator(cfg.generator, device=ctx.device, quantization=cfg.quantization,
                                local_rank=dist.local_rank)
    items = prompt_items(retriever, embedder, tok, train_ex, k=cfg.k, max_prompt_tokens=cfg.max_prompt_tokens)
    model = add_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                     gradient_checkpointing=cfg.gradient_checkpointing)
    model.train()
    step_fn = make_step_fn(model, tok, max_answer_tokens=cfg.max_answer_tokens)
    val_items = None
    if cfg.validate_every:  # the same loss on the validation questions' prompts
        val_items = prompt_items(retriever, embedder, tok, val_ex, k=cfg.k, max_prompt_tokens=cfg.max_prompt_tokens)
    result = fit(ctx, dist, model, items, step_fn, [group("generator", model, cfg.lr)], val_items=val_items)
    main_rank_only(dist)
    model.save_pretrained(str(ctx.out_dir / ADAPTER_DIR), safe_serialization=True)
    metrics = validate(ctx, retriever, val_ex, embedder, (model, tok))
    return {**train_stats(result, dist), **metrics, "lr": cfg.lr}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("finetune-gen", body, argv))


if __name__ == "__main__":
    main()
