"""`joint`: RAG-Token / RAG-Sequence training of the embedder, the generator, or both.

Per batch: embed the questions (with grad when the embedder trains), retrieve the top-k from the frozen index
(no grad), score s/tau against the frozen document vectors, run the k (question, document) prompts of every
question as ONE batched generator forward, and marginalise over the documents. A frozen model runs under
no_grad, so a frozen generator keeps no activations.
"""

from __future__ import annotations

import contextlib

import torch

from rag_jobs.artifacts.layout import ADAPTER_DIR, EMBEDDER_DIR
from rag_jobs.core.losses import rag_sequence_nll, rag_token_nll
from rag_jobs.core.retrieval import doc_logits
from rag_jobs.errors import ConfigError
from rag_jobs.jobs.common import StepContext
from rag_jobs.models.embedder import embed_with_grad
from rag_jobs.models.generation import format_prompt
from rag_jobs.models.lora import add_lora, answer_logprobs, encode_prompt_answer, max_answer_len
from rag_jobs.steps.pool import ScorePool, generator_logprobs
from rag_jobs.steps.training import group
from rag_jobs.training import ParamGroup

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


def set_trainable(ctx: StepContext, embedder, generator, adapter: str | None, embed_lr: float | None,
                  gen_lr: float | None):
    """LoRA on the generator when it trains, train/eval mode and requires_grad for both models by `train`;
    returns the generator (LoRA-wrapped when it trains) and the optimizer groups."""
    cfg = ctx.cfg
    groups: list[ParamGroup] = []
    if cfg.train in ("generator", "both"):
        if adapter is not None:
            raise ConfigError(f"step {ctx.spec.name!r} trains the generator but was given a trained adapter")
        generator = add_lora(generator, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                             gradient_checkpointing=cfg.gradient_checkpointing)
        generator.train()
        groups.append(group("generator", generator, gen_lr))
    else:
        generator.requires_grad_(False)
        generator.eval()
    if cfg.train in ("embedder", "both"):
        embedder.train()
        groups.append(group("embedder", embedder, embed_lr))
    else:
        embedder.requires_grad_(False)
        embedder.eval()
    return generator, groups


def open_pool(ctx: StepContext, examples) -> ScorePool | None:
    """The score pool of cached phase 2, when the step has one as input (checked against this step's settings)."""
    if not ctx.has_input("pool"):
        return None
    if ctx.cfg.train != "embedder":
        raise ConfigError(f"step {ctx.spec.name!r}: a score pool needs a frozen generator (train=embedder)")
    pool = ScorePool.load(ctx.input_dir("pool"))
    pool.check_compatible(ctx.cfg.model_dump(), examples)
    ctx.log(f"cached phase 2: {len(pool.row)} questions x {pool.meta['k_pool']} pooled passages")
    return pool


def save_trained(ctx: StepContext, embedder, generator) -> None:
    """The trained models into the step's outputs: the embedder (sentence-transformers), the LoRA adapter."""
    if ctx.cfg.train in ("embedder", "both"):
        embedder.save(str(ctx.out_dir / EMBEDDER_DIR))
    if ctx.cfg.train in ("generator", "both"):
        generator.save_pretrained(str(ctx.out_dir / ADAPTER_DIR), safe_serialization=True)


def learning_rates(ctx: StepContext) -> tuple[float | None, float | None]:
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
