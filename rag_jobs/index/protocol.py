"""The Retriever protocol: a local FAISS index or a remote index service stand behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from rag_jobs.data.records import Passage


@dataclass
class SearchResult:
    """Top-k results of a batch of queries."""

    ids: list[list[str]]  # (n_queries, k) passage ids, best first
    scores: np.ndarray  # (n_queries, k) inner products of unit vectors = cosines
    vectors: np.ndarray | None = None  # (n_queries, k, dim) frozen document vectors, when asked for


@runtime_checkable
class Retriever(Protocol):
    dim: int

    def search(self, queries: np.ndarray, k: int, *, with_vectors: bool = False) -> SearchResult: ...

    def passages(self, ids: list[str]) -> list[Passage]: ...

    def vectors_for(self, ids: list[str]) -> np.ndarray: ...

    def contains(self, ids: list[str]) -> list[bool]: ...

    def __len__(self) -> int: ...
