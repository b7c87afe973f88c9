"""`finetune-gen`: QLoRA (rank 16) on the answer NLL, with the top-k context of the baseline embedder."""

from __future__ import annotations

import sys

from rag_jobs.artifacts.layout import ADAPTER_DIR
from rag_jobs.core.losses import answer_nll
from rag_jobs.index import encode_texts
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.jobs.finetune import (
    StoreCheckpoints,
    load_training_data,
    loop_config,
    train_stats,
    trainable_state,
    validate,
)
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.models.generation import format_prompt
from rag_jobs.models.lora import add_lora, answer_logprobs, encode_prompt_answer, max_answer_len
from rag_jobs.training import ParamGroup, train
from rag_jobs.training.distributed import init_distributed
from rag_jobs.training.loop import seed_everything


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    dist = init_distributed()
    seed_everything(cfg.seed)  # LoRA initialisation and dropout start from the same state on every attempt
    retriever, train_ex, val_ex = load_training_data(ctx)
    embedder = load_embedder(retriever.meta["embedder"], device=ctx.device)
    hits = retriever.search(encode_texts(embedder, [e.question for e in train_ex]), cfg.k)
    model, tok = load_generator(cfg.generator, device=ctx.device, quantization=cfg.quantization,
                                local_rank=dist.local_rank)
    items = [
        (format_prompt(tok, e.question, [p.content for p in retriever.passages(ids)],
                       max_prompt_tokens=cfg.max_prompt_tokens), e.answers[0])
        for e, ids in zip(train_ex, hits.ids)
    ]
    model = add_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                     gradient_checkpointing=cfg.gradient_checkpointing)
    model.train()
    device = next(model.parameters()).device

    def step_fn(batch):
        enc = encode_prompt_answer(tok, [b[0] for b in batch], [b[1] for b in batch],
                                   max_answer_tokens=cfg.max_answer_tokens, device=device)
        lp, mask = answer_logprobs(model, enc, max_answer_len(enc))  # (B, T) each
        return answer_nll(lp, mask)

    state, load = trainable_state(model)
    result = train(label=ctx.label, items=items, step_fn=step_fn,
                   groups=[ParamGroup("generator", [p for p in model.parameters() if p.requires_grad], cfg.lr)],
                   cfg=loop_config(cfg), trainable_state=state, load_trainable=load,
                   checkpoints=StoreCheckpoints(ctx), work_dir=ctx.work_dir, dist_info=dist)
    model.eval()
    if not dist.is_main:
        sys.exit(0)
    model.save_pretrained(str(ctx.out_dir / ADAPTER_DIR), safe_serialization=True)
    metrics = validate(ctx, retriever, val_ex, embedder, (model, tok))
    return {**train_stats(result, dist), **metrics, "lr": cfg.lr}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("finetune-gen", body, argv))


if __name__ == "__main__":
    main()
