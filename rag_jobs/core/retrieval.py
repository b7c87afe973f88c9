"""Retrieval maths: unit vectors, and the retrieval logits s / tau of the document prior p(z|x) = softmax_k(s / tau)
(the softmax itself is taken in the losses)."""

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

