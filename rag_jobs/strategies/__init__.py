"""Strategies as graphs of steps (pure data)."""

from rag_jobs.strategies.catalog import ALL_STRATEGIES, STRATEGIES, build_graph
from rag_jobs.strategies.graph import Graph, StepSpec
from rag_jobs.strategies.settings import PAPER_LR_GRID, RunSettings

__all__ = ["ALL_STRATEGIES", "PAPER_LR_GRID", "STRATEGIES", "Graph", "RunSettings", "StepSpec", "build_graph"]
