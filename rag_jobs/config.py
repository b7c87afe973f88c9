"""Frozen, validated configuration: one model per step kind, plus the run-level settings.

An invalid value raises ConfigError naming the field and the value (exit code 2).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag_jobs.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Frozen):
    dataset: str = Field("demo", description="dataset spec: demo, hotpotqa:PATH, popqa:PATH, jsonl:DIR, hf:NAME")
    limit: int | None = Field(None, gt=0, description="keep at most this many questions (before splitting)")
    seed: int = Field(0, description="seed of the train/validation/test split and of data order")
    split: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="train/validation/test fractions")
    max_passage_chars: int | None = Field(None, gt=0, description="truncate passages (cheap CPU settings)")

    @field_validator("split")
    @classmethod
    def _split_sums_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(x < 0 or not math.isfinite(x) for x in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be >= 0 and sum to 1, got {v}")
        return v


class BuildIndexConfig(_Frozen):
    data: DataConfig = Field(default_factory=DataConfig, description="what to index and how to split it")
    embedder: str = Field("minilm", description="embedder: minilm, a local path or a Hugging Face name")
    index_factory: str = Field("Flat", description="FAISS factory string; Flat = exact inner product")
    batch_size: int = Field(64, gt=0, description="passages per encoder batch")
    device: str = Field("auto", description="auto, cpu or cuda")


class EvaluateConfig(_Frozen):
    split: str = Field("test", pattern="^(train|validation|test)$", description="which split to evaluate")
    limit: int | None = Field(None, gt=0, description="evaluate at most this many questions")
    k: int = Field(5, gt=0, le=100, description="documents concatenated into the prompt (the paper: 5)")
    recall_k: int = Field(5, gt=0, le=1000, description="k of Recall@k")
    generator: str = Field("smollm2-135m", description="generator: smollm2-135m, a local path or a hub name")
    quantization: str = Field("auto", pattern="^(auto|nf4|none)$", description="4-bit NF4 on CUDA when auto")
    max_new_tokens: int = Field(24, gt=0, le=512, description="greedy decoding budget per answer")
    batch_size: int = Field(8, gt=0, description="questions per generation batch")
    max_prompt_tokens: int = Field(1024, gt=16, description="prompts are truncated from the left of the context")
    device: str = Field("auto", description="auto, cpu or cuda")
    skip_generation: bool = Field(False, description="retrieval metrics only (no generator)")


STEP_CONFIGS: dict[str, type[_Frozen]] = {
    "build-index": BuildIndexConfig,
    "evaluate": EvaluateConfig,
}


def _format_error(model: type[BaseModel], exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "<root>"
    value = err.get("input")
    return f"invalid {model.__name__} field {field!r} = {value!r}: {err['msg']}"


def parse_config(model: type[_Frozen], data: dict[str, Any]) -> Any:
    """Validate a dict into a frozen config; ConfigError names the first bad field and value."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(model, exc)) from None


def step_config(kind: str, data: dict[str, Any]) -> Any:
    if kind not in STEP_CONFIGS:
        raise ConfigError(f"unknown step kind {kind!r}; known: {', '.join(STEP_CONFIGS)}")
    return parse_config(STEP_CONFIGS[kind], data)
