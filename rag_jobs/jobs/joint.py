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

from rag_jobs.artifacts.layout import ADAPTER_DIR, EMBEDDER_DIR
from rag_jobs.core.losses import rag_sequence_nll, rag_token_nll
from rag_jobs.core.retrieval import doc_logits
from rag_jobs.errors import ConfigError
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.jobs.finetune import (
    StoreCheckpoints,
    load_step_models,
    load_training_data,
    loop_config,
    train_stats,
    trainable_state,
    validate,
)
from rag_jobs.jobs.pool import (
    ScorePool,
    generator_logprobs,
)
from rag_jobs.models.embedder import embed_with_grad
from rag_jobs.models.generation import format_prompt
from rag_jobs.models.lora import add_lora, answer_logprobs, encode_prompt_answer, max_answer_len
from rag_jobs.training import ParamGroup, train
from rag_jobs.training.distributed import all_reduce_sum_counts, init_distributed
from rag_jobs.training.loop import seed_everything

LOSSES = {"token": rag_token_nll, "sequence": rag_sequence_nll}


class JointModel(torch.nn.Module):
    """Both models under one module, so one state dict covers whatever trains."""

    def __init__(self, embedder, generator):
        super().__init__()
        self.embedder, self.generator = embedder, generator


def make_step_fn(ctx: StepContext, retriever, embedder, generator, tok, pool: ScorePool | None = None):
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
        if pool is not None:  # cached phase 2: the frozen generator's values from the pool, exact outside it
            def exact(pairs):
                return generator_logprobs(
                    generator, tok,
                    [(questions[b], retriever.passages([hits.ids[b][j]])[0].content, answers[b]) for b, j in pairs],
                    max_prompt_tokens=cfg.max_prompt_tokens, max_answer_tokens=cfg.max_answer_tokens, device=device)

            lp, mask = pool.lookup(batch, hits.ids, exact)  # (B, K, T), (B, T)
            return loss_fn(lp.to(scores.device), scores, mask.to(scores.device))
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
    embedder, _, generator, tok, adapter = load_step_models(ctx, retriever, dist.local_rank)
    embed_lr, gen_lr = _learning_rates(ctx)
    groups = []
    if cfg.train in ("generator", "both"):
        if adapter is not None:
            raise ConfigError(f"step {ctx.spec.name!r} trains the generator but was given a trained adapter")
        generator = add_lora(generator, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                             gradient_checkpointing=cfg.gradient_checkpointing)
        generator.train()
        groups.append(ParamGroup("generator", [p for p in generator.parameters() if p.requires_grad],
                                 gen_lr))
    else:
        generator.requires_grad_(False)
        generator.eval()
    if cfg.train in ("embedder", "both"):
        embedder.train()
        groups.append(ParamGroup("embedder", [p for p in embedder.parameters() if p.requires_grad], embed_lr))
    else:
        embedder.requires_grad_(False)
        embedder.eval()
    pool = None
    if ctx.has_input("pool"):
        if cfg.train != "embedder":
            raise ConfigError(f"step {ctx.spec.name!r}: a score pool needs a frozen generator (train=embedder)")
        pool = ScorePool.load(ctx.input_dir("pool"))
        pool.check_compatible(cfg.model_dump(), train_ex)
        ctx.log(f"cached phase 2: {len(pool.row)} questions x {pool.meta['k_pool']} pooled passages")
    both = JointModel(embedder, generator)
    state, load = trainable_state(both)
    step_fn = make_step_fn(ctx, retriever, embedder, generator, tok, pool)
    result = train(label=ctx.label, items=train_ex, step_fn=step_fn,
                   groups=groups, cfg=loop_config(cfg), trainable_state=state, load_trainable=load,
                   checkpoints=StoreCheckpoints(ctx), work_dir=ctx.work_dir, dist_info=dist)
    embedder.eval()
    generator.eval()
    if pool is not None:  # every rank joins: the counts of the whole batch, not rank 0's share
        pool.hits, pool.fallbacks = all_reduce_sum_counts([pool.hits, pool.fallbacks], dist)
    if not dist.is_main:
        sys.exit(0)
    if cfg.train in ("embedder", "both"):
        embedder.save(str(ctx.out_dir / EMBEDDER_DIR))
    if cfg.train in ("generator", "both"):
        generator.save_pretrained(str(ctx.out_dir / ADAPTER_DIR), safe_serialization=True)
    known = pool.known_answers(cfg) if pool is not None else None
    metrics = validate(ctx, retriever, val_ex, embedder, (generator, tok), known_answers=known)
    pool_stats = pool.stats() if pool is not None else {}
    if pool is not None:
        ctx.log(f"pool: {pool.hits} cached passage scores, {pool.fallbacks} exact fallbacks")
    # `lr`: the rate a one-model grid child tried (the embedder's when both train), as selection reads it
    lr = gen_lr if cfg.train == "generator" else embed_lr
    return {**train_stats(result, dist), **metrics, **pool_stats, "lr": lr, "embed_lr": embed_lr,
            "gen_lr": gen_lr}


def _learning_rates(ctx: StepContext) -> tuple[float | None, float | None]:
    """(embed_lr, gen_lr) from the config, or from the selected children of earlier grids (the paper's joint
    runs); the rate of a model that does not train may be None."""
    cfg = ctx.cfg
    embed_lr, gen_lr = cfg.embed_lr, cfg.gen_lr
    if cfg.lrs_from_inputs:
        if ctx.has_input("lr-embedder"):
            embed_lr = ctx.input_manifest("lr-embedder").metrics["lr"]
        if ctx.has_input("lr-generator"):
            gen_lr = ctx.input_manifest("lr-generator").metrics["lr"]
        ctx.log(f"learning rates from the two-phase selections: embedder={embed_lr} generator={gen_lr}")
    needed = {"embedder": embed_lr, "generator": gen_lr}
    for model in ("embedder", "generator"):
        if cfg.train in (model, "both") and needed[model] is None:
            raise ConfigError(f"step {ctx.spec.name!r}: the {model} learning rate is unknown")
    return embed_lr, gen_lr


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("joint", body, argv))


if __name__ == "__main__":
    main()
