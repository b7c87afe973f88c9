"""`joint`: RAG-Token / RAG-Sequence training of the embedder, the generator, or both.

Per batch: embed the questions (with grad when the embedder trains), retrieve the top-k from the frozen index
(no grad), score s/tau against the frozen document vectors, run the k (question, document) prompts of every
question as ONE batched generator forward, and marginalise over the documents. A frozen model runs under
no_grad, so a frozen generator keeps no activations.
"""

from __future__ import annotations

import contextlib
import sys

import torch

from rag_jobs.core.losses import rag_sequence_nll, rag_token_nll
from rag_jobs.core.retrieval import doc_logits
from rag_jobs.errors import ConfigError
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.jobs.evaluate import ADAPTER_DIR, EMBEDDER_DIR
from rag_jobs.jobs.finetune import (
    StoreCheckpoints,
    load_training_data,
    loop_config,
    train_stats,
    trainable_state,
    validate,
)
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.models.embedder import embed_with_grad
from rag_jobs.models.generation import format_prompt
from rag_jobs.models.lora import add_lora, answer_logprobs, encode_prompt_answer, max_answer_len
from rag_jobs.training import ParamGroup, train
from rag_jobs.training.distributed import init_distributed
from rag_jobs.training.loop import seed_everything

LOSSES = {"token": rag_token_nll, "sequence": rag_sequence_nll}


class JointModel(torch.nn.Module):
    """Both models under one module, so one state dict covers whatever trains."""

    def __init__(self, embedder, generator):
        super().__init__()
        self.embedder, self.generator = embedder, generator


def make_step_fn(ctx: StepContext, retriever, embedder, generator, tok):
    cfg = ctx.cfg
    train_emb = cfg.train in ("embedder", "both")
    train_gen = cfg.train in ("generator", "both")
    loss_fn = LOSSES[cfg.loss]
    device = next(generator.parameters()).device

    def step_fn(batch):
        questions = [e.question for e in batch]
        answers = [e.answers[0] for e in batch]
        with contextlib.nullcontext() if train_emb else torch.no_grad():
            q = embed_with_grad(embedder, questions)  # (B, D)
        hits = retriever.search(q.detach().float().cpu().numpy(), cfg.k, with_vectors=True)
        docs = torch.from_numpy(hits.vectors.copy()).to(q.device)  # (B, K, D) frozen index vectors
        scores = doc_logits(q, docs, cfg.tau)  # (B, K)
        k = docs.shape[1]
        prompts = [
            format_prompt(tok, question, [p.content], max_prompt_tokens=cfg.max_prompt_tokens)
            for question, ids in zip(questions, hits.ids)
            for p in retriever.passages(ids)
        ]  # B*K prompts, question-major
        enc = encode_prompt_answer(tok, prompts, [a for a in answers for _ in range(k)],
                                   max_answer_tokens=cfg.max_answer_tokens, device=device)
        t = max_answer_len(enc)
        with contextlib.nullcontext() if train_gen else torch.no_grad():
            lp, mask = answer_logprobs(generator, enc, t)  # (B*K, T) each
        lp = lp.view(len(batch), k, t).to(scores.device)  # (B, K, T)
        mask = mask.view(len(batch), k, t)[:, 0, :]  # (B, T): right-aligned answers line up across documents
        return loss_fn(lp, scores, mask)

    return step_fn


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    dist = init_distributed()
    seed_everything(cfg.seed)  # LoRA initialisation and dropout start from the same state on every attempt
    retriever, train_ex, val_ex = load_training_data(ctx)
    base_embedder = retriever.meta["embedder"]
    emb_path = str(ctx.input_dir("embedder") / EMBEDDER_DIR) if ctx.has_input("embedder") else base_embedder
    adapter = str(ctx.input_dir("generator") / ADAPTER_DIR) if ctx.has_input("generator") else None
    embedder = load_embedder(emb_path, device=ctx.device)
    generator, tok = load_generator(cfg.generator, device=ctx.device, quantization=cfg.quantization,
                                    adapter_dir=adapter, local_rank=dist.local_rank)
    lr, gen_lr = _learning_rates(ctx)
    groups = []
    if cfg.train in ("generator", "both"):
        if adapter is not None:
            raise ConfigError(f"step {ctx.spec.name!r} trains the generator but was given a trained adapter")
        generator = add_lora(generator, r=cfg.lora_r, alpha=cfg.lora_alpha,
                             gradient_checkpointing=cfg.gradient_checkpointing)
        generator.train()
        groups.append(ParamGroup("generator", [p for p in generator.parameters() if p.requires_grad],
                                 gen_lr if cfg.train == "both" else lr))
    else:
        generator.requires_grad_(False)
        generator.eval()
    if cfg.train in ("embedder", "both"):
        embedder.train()
        groups.append(ParamGroup("embedder", [p for p in embedder.parameters() if p.requires_grad], lr))
    else:
        embedder.requires_grad_(False)
        embedder.eval()
    both = JointModel(embedder, generator)
    state, load = trainable_state(both)
    result = train(label=ctx.label, items=train_ex, step_fn=make_step_fn(ctx, retriever, embedder, generator, tok),
                   groups=groups, cfg=loop_config(cfg), trainable_state=state, load_trainable=load,
                   checkpoints=StoreCheckpoints(ctx), work_dir=ctx.work_dir, dist_info=dist)
    embedder.eval()
    generator.eval()
    if not dist.is_main:
        sys.exit(0)
    if cfg.train in ("embedder", "both"):
        embedder.save(str(ctx.out_dir / EMBEDDER_DIR))
    if cfg.train in ("generator", "both"):
        generator.save_pretrained(str(ctx.out_dir / ADAPTER_DIR), safe_serialization=True)
    metrics = validate(ctx, retriever, val_ex, embedder, (generator, tok))
    return {**train_stats(result, dist), **metrics, "lr": lr, "gen_lr": gen_lr}


def _learning_rates(ctx: StepContext) -> tuple[float | None, float | None]:
    """(lr, gen_lr) from the config, or from the selected children of earlier grids (the paper's joint runs)."""
    cfg = ctx.cfg
    lr, gen_lr = cfg.lr, cfg.gen_lr
    if cfg.lrs_from_inputs:
        if ctx.has_input("lr-embedder"):
            lr = ctx.input_manifest("lr-embedder").metrics["lr"]
        if ctx.has_input("lr-generator"):
            gen_lr = ctx.input_manifest("lr-generator").metrics["lr"]
        if cfg.train == "generator":
            lr = gen_lr
        ctx.log(f"learning rates from the two-phase selections: embedder={lr} generator={gen_lr}")
    if lr is None or (cfg.train == "both" and gen_lr is None):
        raise ConfigError(f"step {ctx.spec.name!r}: learning rates unknown (lr={lr}, gen_lr={gen_lr})")
    return lr, gen_lr


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("joint", body, argv))


if __name__ == "__main__":
    main()
