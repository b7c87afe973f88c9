"""Frozen, validated configuration: one model per step kind, plus the run-level settings.

An invalid value raises ConfigError naming the field and the value (exit code 2).
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator
from pydantic.fields import FieldInfo

from rag_jobs.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def flag(name: str, *, commands: tuple[str, ...] = ("run", "submit"), sets: tuple[str, ...] = ()) -> dict:
    """`json_schema_extra` that makes a setting a command-line flag of `commands`, declared on its own field
    (name, type, bounds and help text are the field's). `sets`: sibling fields the same value also sets."""
    return {"flag": name, "commands": list(commands), "sets": list(sets)}


class FieldError(ValueError):
    """A model validator's error that belongs to one field (so the message can name what the user wrote)."""

    def __init__(self, loc: tuple[str, ...], message: str):
        super().__init__(message)
        self.loc = loc


class DataConfig(_Frozen):
    dataset: str = Field("demo", description="questions: demo, hotpotqa:PATH, popqa:PATH, jsonl:DIR, hf:NAME (and, "
                         "without --corpus, the passages to index)", json_schema_extra=flag("--dataset"))
    corpus: str | None = Field(None, description="the passages to index, apart from the questions: medrag:DIR, "
                               "hf:MedRAG/wikipedia, jsonl:FILE|DIR, parquet:PATH or docs:PATH (chunked)",
                               json_schema_extra=flag("--corpus"))
    corpus_with_dataset_passages: bool = Field(False, description="with --corpus: index the dataset's own "
                                               "passages too (and keep its own context labels)",
                                               json_schema_extra=flag("--corpus-with-dataset-passages"))
    chunk_size: int = Field(1000, gt=0, description="docs: corpus: characters per chunk (MedRAG: 1000)",
                            json_schema_extra=flag("--chunk-size"))
    chunk_overlap: int = Field(200, ge=0, description="docs: corpus: characters shared by consecutive chunks "
                               "(MedRAG: 200)", json_schema_extra=flag("--chunk-overlap"))
    corpus_shard_rows: int = Field(1_000_000, gt=0, description="passages per Arrow file of the committed corpus")
    validation_dataset: str | None = Field(None, description="the validation split is this dataset's questions "
                                           "(the seeded split cuts only the rest)",
                                           json_schema_extra=flag("--validation-dataset"))
    test_dataset: str | None = Field(None, description="the test split is this dataset's questions (the seeded "
                                     "split cuts only the rest)", json_schema_extra=flag("--test-dataset"))
    limit: int | None = Field(None, gt=0, description="use at most this many questions of --dataset (before "
                              "splitting)", json_schema_extra=flag("--limit"))
    seed: int = Field(0, description="seed of the train/validation/test split and of data order",
                      json_schema_extra=flag("--seed"))
    split: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="train/validation/test fractions")
    max_passage_chars: int | None = Field(None, gt=0, description="truncate passages (cheap CPU settings)")

    @field_validator("split")
    @classmethod
    def _split_sums_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(x < 0 or not math.isfinite(x) for x in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be >= 0 and sum to 1, got {v}")
        return v

    @model_validator(mode="after")
    def _chunks_overlap_less(self) -> DataConfig:
        if self.chunk_overlap >= self.chunk_size:
            raise FieldError(("chunk_overlap",), f"must be smaller than the chunk size ({self.chunk_size})")
        return self


class CorpusConfig(_Frozen):
    """The corpus step: a corpus spec (and/or a dataset's own passages) normalised into Arrow shards."""

    source: str = Field("", description="corpus spec (rag_jobs.corpus.sources); empty: the dataset's passages only")
    source_digest: str | None = Field(None, description="content hash of a local source's files (set by the graph)")
    datasets: tuple[str, ...] = Field((), description="dataset specs whose own passages are indexed too")
    chunk_size: int = Field(1000, gt=0, description="docs: characters per chunk")
    chunk_overlap: int = Field(200, ge=0, description="docs: characters of overlap")
    max_passage_chars: int | None = Field(None, gt=0, description="truncate passages")
    shard_rows: int = Field(1_000_000, gt=0, description="passages per Arrow file")

    @model_validator(mode="after")
    def _has_a_source(self) -> CorpusConfig:
        if not self.source and not self.datasets:
            raise ValueError("a corpus needs a source or a dataset")
        return self

    @staticmethod
    def hash_view(config: dict[str, Any]) -> dict[str, Any]:
        """What the step hash sees: a local source by its content (digest), not by the path it was read from, so
        the same files under another path share the committed corpus."""
        if config.get("source_digest"):
            return {**config, "source": str(config.get("source", "")).partition(":")[0]}
        return config


class SplitsConfig(_Frozen):
    """The splits step: the questions (and their context labels over the corpus) of train, validation, test."""

    dataset: str = Field("demo", description="dataset spec of the questions")
    validation_dataset: str | None = Field(None, description="the validation split's own dataset")
    test_dataset: str | None = Field(None, description="the test split's own dataset")
    limit: int | None = Field(None, gt=0, description="questions of `dataset` kept (a seeded sample)")
    seed: int = Field(0, description="seed of the split")
    split: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="train/validation/test fractions")
    derive_labels: bool = Field(False, description="derive context labels against the (external) corpus")


class BuildIndexConfig(_Frozen):
    embedder: str = Field("minilm", description="embedder: minilm, a local path or a Hugging Face name")
    index_factory: str = Field("Flat", description="FAISS factory string; Flat = exact inner product")
    batch_size: int = Field(64, gt=0, description="passages per encoder batch")
    device: str = Field("auto", description="auto, cpu or cuda")
    seed: int = Field(0, description="seed of the index's training sample (IVF, PQ)")
    search_params: str = Field("", pattern=r"^[A-Za-z_]*(=[0-9.]+)?(,[A-Za-z_]+=[0-9.]+)*$",
                               description="FAISS search parameters applied on load, e.g. nprobe=64 for IVF")
    shards: int = Field(1, ge=1, le=4096, description="encode the corpus in this many slices, in parallel steps")
    vectors: str = Field("float32", pattern="^(float32|float16)$", description="dtype of the stored frozen "
                         "document vectors (float16 halves them; FAISS is built from the stored values)")
    shard: int | None = Field(None, ge=0, description="set by the graph: this step encodes only slice `shard`")

    @model_validator(mode="after")
    def _shard_in_range(self) -> BuildIndexConfig:
        if self.shard is not None and self.shard >= self.shards:
            raise ValueError(f"shard {self.shard} is out of range for shards={self.shards}")
        return self


class EvaluateConfig(_Frozen):
    split: str = Field("test", pattern="^(train|validation|test)$", description="which split to evaluate")
    limit: int | None = Field(None, gt=0, description="evaluate at most this many test questions",
                              json_schema_extra=flag("--eval-limit"))
    k: int = Field(5, gt=0, le=100, description="documents concatenated into the prompt (the paper: 5)")
    recall_k: int = Field(5, gt=0, le=1000, description="k of Recall@k")
    generator: str = Field("smollm2-135m", description="generator: smollm2-135m, a local path or a hub name")
    quantization: str = Field("auto", pattern="^(auto|nf4|none)$", description="4-bit NF4 on CUDA when auto")
    max_new_tokens: int = Field(24, gt=0, le=512, description="greedy decoding budget per answer")
    batch_size: int = Field(8, gt=0, description="questions per generation batch")
    max_prompt_tokens: int = Field(1024, gt=16, description="prompts are truncated from the left of the context")
    device: str = Field("auto", description="auto, cpu or cuda")
    skip_generation: bool = Field(False, description="retrieval metrics only (no generator)")


class ValidationConfig(_Frozen):
    split: str = Field("validation", pattern="^(train|validation|test)$", description="split scored after training")
    limit: int | None = Field(None, gt=0, description="score grid children on at most this many questions",
                              json_schema_extra=flag("--val-limit"))
    select_by: str = Field("em", pattern="^(em|recall)$", description="em (F1 breaks ties, as the paper) or recall")
    max_new_tokens: int = Field(24, gt=0, description="decoding budget for the EM/F1 validation")
    batch_size: int = Field(8, gt=0, description="questions per generation batch")


def _finite_lr(v: float | None) -> float | None:
    if v is not None and (not math.isfinite(v) or v <= 0):
        raise ValueError("learning rate must be a finite number > 0")
    return v


class StepBase(_Frozen):
    """What every step that runs the generator on training questions shares: data, prompts, validation."""

    seed: int = Field(0, description="data order and dropout")
    device: str = Field("auto", description="auto, cpu or cuda")
    train_limit: int | None = Field(None, gt=0, description="train on at most this many questions",
                                    json_schema_extra=flag("--train-limit"))
    k: int = Field(5, gt=0, le=50, description="retrieved documents per question")
    generator: str = Field("smollm2-135m", description="base generator")
    quantization: str = Field("auto", pattern="^(auto|nf4|none)$", description="4-bit NF4 base on CUDA (QLoRA)")
    batch_size: int = Field(8, gt=0, description="training batch size: questions per micro-batch (the paper: 8)",
                            json_schema_extra=flag("--batch-size"))
    max_prompt_tokens: int = Field(1024, gt=16, description="training and validation prompts are shortened to fit "
                                   "(the evaluation's limit by default)")
    max_answer_tokens: int = Field(32, gt=0, description="answers are cut to this many tokens")
    validation: ValidationConfig = Field(default_factory=ValidationConfig, description="how a grid child is scored")


class TrainConfig(StepBase):
    """What every fine-tuning step shares: the loop settings and the validation that scores a grid child."""

    epochs: int = Field(1, gt=0, description="passes over the training split (the paper: 1)")
    grad_accum: int = Field(1, gt=0, description="micro-batches per optimizer step")
    max_steps: int | None = Field(None, gt=0, description="stop each training step after this many optimizer steps",
                                  json_schema_extra=flag("--max-steps"))
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="share of steps with linear warm-up")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient clipping, of each model's gradient norm "
                                         "apart (embedder, generator); null = none")
    checkpoint_every: int = Field(20, ge=0, description="optimizer steps between checkpoints (0 = none)")
    validate_every: int = Field(0, ge=0, description="optimizer steps between validation-loss measurements (the "
                                "training loss on the validation questions, no gradients; the report's "
                                "validation-loss curve, the paper's Figure 4); 0 = off",
                                json_schema_extra=flag("--validate-every"))
    log_every: int = Field(5, gt=0, description="optimizer steps between progress lines")
    tau: float = Field(0.05, gt=0, description="temperature of the document prior softmax(s / tau)")
    lora_r: int = Field(16, gt=0, description="LoRA rank (the paper: 16)")
    lora_alpha: int = Field(32, gt=0, description="LoRA scaling numerator")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout on the LoRA input")
    gradient_checkpointing: bool = Field(False, description="trade compute for activation memory")

    @field_validator("lr", "embed_lr", "gen_lr", check_fields=False)
    @classmethod
    def _lr_positive(cls, v: float | None) -> float | None:
        return _finite_lr(v)


class FinetuneEmbedConfig(TrainConfig):
    lr: float = Field(..., description="learning rate of the embedder")
    scale: float = Field(20.0, gt=0, description="MNRL similarity scale (1 / tau)")
    cached: bool = Field(False, description="GradCache-style cached MNRL: large batches in small chunks")
    mini_batch_size: int = Field(8, gt=0, description="chunk size of the cached variant")
    hard_negatives: int = Field(0, ge=0, le=32, description="per question, the best-ranked passages of the "
                                "starting embedder that are not gold, as extra frozen negatives (not in the "
                                "paper; 0 = in-batch negatives only, as the paper)")


class FinetuneGenConfig(TrainConfig):
    lr: float = Field(..., description="learning rate of the generator's LoRA weights")


class JointConfig(TrainConfig):
    train: str = Field("both", pattern="^(generator|embedder|both)$", description="which model(s) train")
    loss: str = Field("token", pattern="^(token|sequence)$", description="RAG-Token or RAG-Sequence marginal")
    embed_lr: float | None = Field(None, description="embedder learning rate (train=embedder|both)")
    gen_lr: float | None = Field(None, description="generator learning rate (train=generator|both)")
    lrs_from_inputs: bool = Field(False, description="take embed_lr / gen_lr from the selections given as inputs")

    @model_validator(mode="after")
    def _lr_known(self) -> JointConfig:
        if self.lrs_from_inputs:
            return self
        if self.train in ("embedder", "both") and self.embed_lr is None:
            raise ValueError(f"embed_lr is required when train={self.train} (unless lrs_from_inputs is true)")
        if self.train in ("generator", "both") and self.gen_lr is None:
            raise ValueError(f"gen_lr is required when train={self.train} (unless lrs_from_inputs is true)")
        return self

    def trained_lr(self) -> float | None:
        """The learning rate a one-model grid child tries (the embedder's when both train)."""
        return self.gen_lr if self.train == "generator" else self.embed_lr


class ScorePoolConfig(StepBase):
    """Cached phase 2: the frozen generator scores each training question's top-`pool` passages once."""

    pool: int = Field(..., ge=1, le=1000, description="passages per question in the pool (>= k)")

    @model_validator(mode="after")
    def _pool_holds_k(self) -> ScorePoolConfig:
        if self.pool < self.k:
            raise FieldError(("pool",), f"must be >= k ({self.k})")
        return self


class SelectConfig(_Frozen):
    select_by: str = Field("em", pattern="^(em|recall)$", description="validation metric that picks the child")
    role: str = Field("model", description="what is selected (for messages)")




class _Overrides(_Frozen):
    """Overrides of a step config: every field optional; only the fields a user set are dumped (and so hashed)."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        return {k: v for k, v in out.items() if k in self.model_fields_set}

    def values(self) -> dict[str, Any]:
        """The fields a user set, nested overrides as dicts."""
        return self.model_dump()


def overrides_of(name: str, *models: type[BaseModel], exclude: tuple[str, ...] = (),
                 nested: dict[str, type[_Overrides]] | None = None) -> type[_Overrides]:
    """A model of optional overrides with the fields (types, bounds, help, flags) of `models`, declared there once."""
    from pydantic import create_model

    nested = nested or {}
    fields: dict[str, Any] = {}
    for model in models:
        for field_name, info in model.model_fields.items():
            if field_name in exclude or field_name in fields:
                continue
            if field_name in nested:
                fields[field_name] = (nested[field_name], Field(default_factory=nested[field_name],
                                                                description=info.description))
                continue
            optional = FieldInfo.merge_field_infos(info, default=None, default_factory=None)
            fields[field_name] = (info.annotation | None, optional)
    return create_model(name, __base__=_Overrides, __doc__=f"overrides of {', '.join(m.__name__ for m in models)}",
                        **fields)


def _pattern_choices(pattern: str) -> str | None:
    m = re.fullmatch(r"\^\(([\w|-]+)\)\$", pattern)
    return ", ".join(m.group(1).split("|")) if m else None


def describe(err: dict[str, Any]) -> str:
    """A pydantic error as a short clause for a user: `must be > 0`, `must be one of em, recall`."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    bounds = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="), "less_than": ("lt", "<"),
              "less_than_equal": ("le", "<=")}
    if kind in bounds:
        key, op = bounds[kind]
        return f"must be {op} {ctx.get(key)}"
    if kind == "string_pattern_mismatch":
        choices = _pattern_choices(str(ctx.get("pattern", "")))
        return f"must be one of {choices}" if choices else f"must match {ctx.get('pattern')}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a mapping of settings"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    if kind == "finite_number":
        return "must be a finite number"
    msg = str(err.get("msg", "is invalid"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return msg[:1].lower() + msg[1:]


def error_loc(err: dict[str, Any]) -> tuple[str, ...]:
    """Where an error belongs: its own location, or the field a model validator named (FieldError)."""
    cause = (err.get("ctx") or {}).get("error")
    loc = tuple(str(p) for p in err.get("loc", ()))
    return (*loc, *cause.loc) if isinstance(cause, FieldError) else loc


def short_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _format_error(model: type[BaseModel], exc: ValidationError, where: str = "") -> str:
    err = exc.errors()[0]
    loc = error_loc(err)
    field = ".".join(p for p in loc if not p.isdigit())
    if not field:
        return f"{where or model.__name__}: {describe(err)}"
    value = "" if isinstance(err.get("input"), dict) else f" = {short_value(err.get('input'))}"
    return f"{field}{value}{' in ' + where if where else ''}: {describe(err)}"


def parse_config(model: type[_Frozen], data: dict[str, Any], where: str = "") -> Any:
    """Validate a dict into a frozen config; ConfigError names the first bad field, its value and why
    (`where`: the file or step the values came from)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(model, exc, where)) from None


def step_config(kind: str, data: dict[str, Any]) -> Any:
    """A step's config by kind (the registry of step kinds, rag_jobs.jobs.registry, holds the classes)."""
    from rag_jobs.jobs.registry import step_config as of_kind

    return of_kind(kind, data)
