"""Each strategy of the paper as a graph of steps."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rag_jobs.config import BuildIndexConfig, DataConfig, EvaluateConfig, _Frozen, parse_config
from rag_jobs.errors import ConfigError
from rag_jobs.strategies.graph import Graph, StepSpec, canonical_hash


class RunSettings(_Frozen):
    """What a user sets for a run (CLI flags or a jobs/*.yaml file); steps derive their configs from it."""

    data: DataConfig = Field(default_factory=DataConfig, description="dataset, limit, seed, split")
    embedder: str = Field("minilm", description="base embedder")
    generator: str = Field("smollm2-135m", description="base generator")
    index_factory: str = Field("Flat", description="FAISS factory string")
    device: str = Field("auto", description="auto, cpu or cuda")
    quantization: str = Field("auto", pattern="^(auto|nf4|none)$", description="generator weights")
    evaluate: dict[str, Any] = Field(default_factory=dict, description="overrides of the evaluate step config")
    gpus: int = Field(1, ge=0, description="GPUs per training step on Kubernetes")


def _index_step(s: RunSettings) -> StepSpec:
    cfg = parse_config(
        BuildIndexConfig, {"data": s.data.model_dump(), "embedder": s.embedder, "index_factory": s.index_factory,
                           "device": s.device},
    )
    return StepSpec(name="build-index", kind="build-index", config=cfg.model_dump(mode="json"), gpus=1)


def _evaluate_step(s: RunSettings, name: str, inputs: dict[str, str], label: str) -> StepSpec:
    base = {"generator": s.generator, "quantization": s.quantization, "device": s.device}
    cfg = parse_config(EvaluateConfig, {**base, **s.evaluate})
    return StepSpec(name=name, kind="evaluate", config=cfg.model_dump(mode="json"), inputs=inputs, gpus=1,
                    label=label)


def baseline(s: RunSettings) -> list[StepSpec]:
    return [_index_step(s), _evaluate_step(s, "evaluate", {"index": "build-index"}, "No Ft.")]


STRATEGIES = {"baseline": baseline}


def build_graph(strategy: str, settings: RunSettings, run_id: str | None = None) -> Graph:
    """The graph of a strategy; the default run id is derived from the strategy and settings."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    steps = STRATEGIES[strategy](settings)
    settings_json = settings.model_dump(mode="json")
    if run_id is None:
        run_id = f"{strategy}-{canonical_hash({'strategy': strategy, 'steps': [s.config for s in steps]})[:10]}"
    return Graph(run_id=run_id, strategy=strategy, steps=steps, settings=settings_json)
