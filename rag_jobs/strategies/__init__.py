"""Strategies as graphs of steps (pure data)."""

from rag_jobs.strategies.graph import Graph, StepSpec
from rag_jobs.strategies.catalog import STRATEGIES, RunSettings, build_graph

__all__ = ["STRATEGIES", "Graph", "RunSettings", "StepSpec", "build_graph"]
