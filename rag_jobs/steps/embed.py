"""The embedder's step: multiple-negatives ranking loss on (question, gold passage) pairs, documents frozen.

Plain MNRL, or the cached variant (GradCache): embeddings without grad, the loss, then a chunk-wise backward;
optionally each question's best-ranked non-gold passages as extra (hard) negatives.
"""

from __future__ import annotations

import numpy as np
import torch

from rag_jobs.core.losses import mnrl_loss
from rag_jobs.errors import DataError
from rag_jobs.index import encode_texts
from rag_jobs.models.embedder import embed_with_grad


class _Replayed(torch.autograd.Function):
    """A loss whose backward replays the chunked embedding passes (GradCache), scaled like any other loss."""

    @staticmethod
    def forward(ctx, anchor, value, replay):
        ctx.replay = replay
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output):
        with torch.enable_grad():  # autograd runs backward() without grad mode; the replay builds graphs
            ctx.replay(grad_output.detach())
        return None, None, None


def _rand_context():
    """sentence-transformers' RandContext (GradCache's RNG snapshot: CPU, CUDA and MPS), where this version
    keeps it."""
    try:
        from sentence_transformers.sentence_transformer.losses.cached_multiple_negatives_ranking import RandContext
    except ImportError:  # sentence-transformers < 6.2
        from sentence_transformers.losses.CachedMultipleNegativesRankingLoss import RandContext
    return RandContext


def make_step_fn(model, cfg):
    """Plain MNRL, or the cached variant: embeddings without grad, loss, then chunk-wise backward.

    `whole` is the micro-batch across all ranks: its documents are frozen index vectors, so every rank scores
    its questions against all of them, and a torchrun run sees the same in-batch negatives as one process.
    """

    def docs(batch, whole):
        own = {id(b) for b in batch}
        positives = torch.stack([b[1] for b in batch] + [b[1] for b in whole if id(b) not in own])  # (B + N, D)
        return torch.cat([positives, *[b[2] for b in whole]])  # (B + N + H, D): then every item's hard negatives

    def plain(batch, whole):
        q = embed_with_grad(model, [b[0] for b in batch])  # (B, D)
        d = docs(batch, whole).to(q.device)  # (B + N, D) frozen index vectors, own positives first
        return mnrl_loss(q, d, scale=cfg.scale)

    def cached(batch, whole):
        texts = [b[0] for b in batch]
        d = docs(batch, whole)  # (B + N, D)
        chunks = [texts[i : i + cfg.mini_batch_size] for i in range(0, len(texts), cfg.mini_batch_size)]
        rand_context = _rand_context()
        anchor = next(model.parameters())  # the device whose RNG the embedder's dropout draws from
        states = []
        with torch.no_grad():
            parts = []
            for c in chunks:  # the RNG state each chunk starts from: its replay draws the same dropout masks
                states.append(rand_context(anchor))
                parts.append(embed_with_grad(model, c))
            q = torch.cat(parts)  # (B, D)
        q = q.detach().requires_grad_(True)
        loss = mnrl_loss(q, d.to(q.device), scale=cfg.scale)
        (grad,) = torch.autograd.grad(loss, q)  # (B, D) dLoss/dq, from embeddings computed without a graph

        def replay(scale: torch.Tensor) -> None:
            start = 0
            for c, state in zip(chunks, states):  # re-run each chunk with grad; one chunk's activations at a time
                with state:
                    emb = embed_with_grad(model, c)  # (chunk, D): its first pass again, dropout masks included
                (emb * grad[start : start + len(c)].to(emb.device)).sum().mul(scale).backward()
                start += len(c)

        return _Replayed.apply(torch.zeros((), requires_grad=True), loss.detach(), replay)

    return cached if cfg.cached else plain


def hard_negatives(retriever, model, examples, n: int) -> dict[str, torch.Tensor]:
    """Each question's `n` best-ranked passages that are not gold, under the starting embedder, as frozen index
    vectors (n, D); (0, D) when n = 0. Deterministic: the same on every rank and every attempt."""
    dim = retriever.dim
    if n == 0:
        return {e.id: torch.zeros((0, dim)) for e in examples}
    golds = {e.id: set(e.gold_passage_ids).union(*e.recall_groups) for e in examples}  # no gold title's chunk
    k = min(n + max((len(g) for g in golds.values()), default=0), len(retriever))
    hits = retriever.search(encode_texts(model, [e.question for e in examples]), k)
    picked = {e.id: [i for i in ids if i not in golds[e.id]][:n] for e, ids in zip(examples, hits.ids)}
    flat = [i for ids in picked.values() for i in ids]
    vecs = retriever.vectors_for(flat) if flat else np.zeros((0, dim), dtype=np.float32)  # one lookup for all
    out, at = {}, 0
    for e in examples:
        m = len(picked[e.id])
        out[e.id] = torch.from_numpy(np.ascontiguousarray(vecs[at : at + m], dtype=np.float32))  # (<= n, D)
        at += m
    return out


def training_pairs(retriever, model, examples, hard: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(question, its gold passage's frozen vector (D,), its hard negatives (<= hard, D)) for every gold passage
    (positive) in the index; questions without one are left out (the caller counts them). DataError when the
    split has no context labels at all."""
    wanted = sorted({g for e in examples for g in e.gold_passage_ids})
    held = {g for g, ok in zip(wanted, retriever.contains(wanted) if wanted else []) if ok}  # one membership lookup
    if not held:
        raise DataError("finetune-embed needs context labels (gold passages) in the training split; "
                        "this dataset has none: use ft-gen, two-phase or a joint strategy")
    examples = [e for e in examples if any(g in held for g in e.gold_passage_ids)]
    negatives = hard_negatives(retriever, model, examples, hard)
    pairs = [(e, g) for e in examples for g in e.gold_passage_ids if g in held]
    vecs = retriever.vectors_for([g for _, g in pairs])
    return [(e.question, torch.from_numpy(vecs[j].copy()), negatives[e.id]) for j, (e, _) in enumerate(pairs)]
