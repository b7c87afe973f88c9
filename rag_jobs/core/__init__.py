"""The pure core: metrics, prompts, retrieval maths and losses. torch/numpy only; no I/O."""
