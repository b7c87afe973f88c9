"""The one training loop; strategies supply `step_fn(batch) -> loss` and which parameters train."""

from rag_jobs.training.loop import CheckpointIO, LoopConfig, ParamGroup, TrainResult, train

__all__ = ["CheckpointIO", "LoopConfig", "ParamGroup", "TrainResult", "train"]
