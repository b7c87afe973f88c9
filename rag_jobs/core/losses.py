"""Losses as tensor functions: the model call happens outside, these see only its outputs.

Shapes: B = batch (questions), K = retrieved documents per question, T = answer tokens, D = embedding dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mnrl_loss(query_emb: torch.Tensor, doc_emb: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """Multiple-negatives ranking loss with in-batch negatives and cosine similarity.

    query_emb: (B, D) trainable question embeddings; doc_emb: (B + N, D) where row i < B is the positive of
    question i and every other row is a negative (the document side is frozen, read from the index).
    """
    if query_emb.shape[0] > doc_emb.shape[0]:
        raise ValueError(f"need at least one document per query, got {tuple(query_emb.shape)} {tuple(doc_emb.shape)}")
    q = F.normalize(query_emb, dim=-1)  # (B, D)
    d = F.normalize(doc_emb, dim=-1)  # (B + N, D)
    sims = q @ d.T * scale  # (B, B + N)
    labels = torch.arange(q.shape[0], device=q.device)  # (B,)
    return F.cross_entropy(sims, labels)


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(label_t | prefix) for causal-LM logits; positions whose label is -100 get 0.

    logits: (N, L, V) for the full sequence; labels: (N, L) aligned with the input ids (-100 = ignore).
    Returns (N, L - 1): the log-probability of token t+1 given tokens <= t.
    """
    shifted = logits[:, :-1, :].float()  # (N, L-1, V)
    target = labels[:, 1:]  # (N, L-1)
    valid = target != -100  # (N, L-1)
    safe = torch.where(valid, target, torch.zeros_like(target))  # (N, L-1)
    lp = torch.log_softmax(shifted, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (N, L-1)
    return torch.where(valid, lp, torch.zeros_like(lp))


def _masked(token_lp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.bool(), token_lp, torch.zeros_like(token_lp))


def answer_nll(token_lp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Plain answer NLL. token_lp: (B, T) log p(y_t | x, y_<t); mask: (B, T). Mean over B of the summed NLL."""
    per_example = -_masked(token_lp, mask).sum(-1)  # (B,)
    return per_example.mean()


def rag_sequence_nll(token_lp: torch.Tensor, doc_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RAG-Sequence: -log sum_z p(z|x) prod_t p(y_t | x, z, y_<t).

    token_lp: (B, K, T); doc_scores: (B, K) retrieval logits s/tau; mask: (B, T).
    """
    log_prior = torch.log_softmax(doc_scores.float(), dim=-1)  # (B, K)
    seq_lp = _masked(token_lp, mask.unsqueeze(1)).sum(-1)  # (B, K)
    per_example = -torch.logsumexp(log_prior + seq_lp, dim=-1)  # (B,)
    return per_example.mean()


def rag_token_nll(token_lp: torch.Tensor, doc_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RAG-Token: -sum_t log sum_z p(z|x) p(y_t | x, z, y_<t).

    token_lp: (B, K, T); doc_scores: (B, K) retrieval logits s/tau; mask: (B, T).
    """
    log_prior = torch.log_softmax(doc_scores.float(), dim=-1)  # (B, K)
    joint = token_lp + log_prior.unsqueeze(-1)  # (B, K, T)
    marginal = torch.logsumexp(joint, dim=1)  # (B, T)
    per_example = -_masked(marginal, mask).sum(-1)  # (B,)
    return per_example.mean()
