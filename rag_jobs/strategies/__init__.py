"""Strategies as graphs of steps (pure data)."""

from rag_jobs.strategies.catalog import ALL_STRATEGIES, STRATEGIES, RunSettings, build_graph
from rag_jobs.strategies.graph import Graph, StepSpec

__all__ = ["ALL_STRATEGIES", "STRATEGIES", "Graph", "RunSettings", "StepSpec", "build_graph"]
