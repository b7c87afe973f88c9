"""Retrieval maths: cosine scores, top-k, and the document prior p(z|x) = softmax_k(s / tau)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used, so numpy-only callers (the index image) need no torch
    import torch


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise unit vectors (float32)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def cosine_topk(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k: returns (scores, indices), each (n_queries, k), best first.

    Ties break by the lower document index so results are deterministic.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    q = l2_normalize(queries)  # (n_q, dim)
    d = l2_normalize(docs)  # (n_d, dim)
    k = min(k, d.shape[0])
    sims = q @ d.T  # (n_q, n_d)
    order = np.lexsort((np.broadcast_to(np.arange(d.shape[0]), sims.shape), -sims), axis=-1)[:, :k]
    return np.take_along_axis(sims, order, axis=-1), order


def doc_logits(query_emb: torch.Tensor, doc_vectors: torch.Tensor, tau: float) -> torch.Tensor:
    """Retrieval logits s(x, z) / tau with s = cos(E(x), d_z).

    query_emb: (batch, dim), trainable; doc_vectors: (batch, n_docs, dim), frozen index vectors.
    Returns (batch, n_docs).
    """
    import torch

    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    q = torch.nn.functional.normalize(query_emb, dim=-1)  # (batch, dim)
    d = torch.nn.functional.normalize(doc_vectors, dim=-1)  # (batch, n_docs, dim)
    scores = torch.einsum("bd,bkd->bk", q, d)  # (batch, n_docs)
    return scores / tau


def doc_prior(scores: torch.Tensor, tau: float) -> torch.Tensor:
    """p(z|x) = softmax over the retrieved top-k of s / tau; scores (batch, n_docs) are cosines."""
    import torch

    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    return torch.softmax(scores / tau, dim=-1)
