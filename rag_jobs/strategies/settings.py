"""The run settings: the one declaration of everything a user sets for a run.

A setting is a field of `RunSettings` (or of a step config it overrides, under `data:`, `train:`,
`evaluate:`). Its type, bounds and one-line help live on that field; a field whose `json_schema_extra`
is `flag(...)` is also a command-line flag of `run` / `submit`, and every field can be set with
`--set dotted.key=VALUE`. Errors name what the user wrote: the flag, the `--set`, or the YAML key and file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from rag_jobs.config import (
    DataConfig,
    EvaluateConfig,
    FieldError,
    FinetuneEmbedConfig,
    FinetuneGenConfig,
    JointConfig,
    ValidationConfig,
    _Frozen,
    describe,
    error_loc,
    flag,
    overrides_of,
    short_value,
)
from rag_jobs.errors import ConfigError

PAPER_LR_GRID = (1e-8, 3e-8, 1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 3e-5, 1e-4)

# Training-step fields the graph sets itself (per grid child, per strategy): not user overrides.
GRAPH_SET_TRAIN_FIELDS = ("lr", "embed_lr", "gen_lr", "train", "loss", "lrs_from_inputs")

ValidationOverrides = overrides_of("ValidationOverrides", ValidationConfig)
TrainOverrides = overrides_of("TrainOverrides", FinetuneEmbedConfig, FinetuneGenConfig, JointConfig,
                              exclude=GRAPH_SET_TRAIN_FIELDS, nested={"validation": ValidationOverrides})
EvaluateOverrides = overrides_of("EvaluateOverrides", EvaluateConfig)


class RunSettings(_Frozen):
    """What a user sets for a run (flags or a jobs/*.yaml file); every step derives its config from it."""

    data: DataConfig = Field(default_factory=DataConfig, description="dataset, limit, seed, split")
    embedder: str = Field("minilm", description="base embedder: minilm, a local path or a Hugging Face name",
                          json_schema_extra=flag("--embedder"))
    generator: str = Field("smollm2-135m", description="base generator: smollm2-135m, a local path or a Hugging "
                           "Face name", json_schema_extra=flag("--generator"))
    index_factory: str = Field("Flat", description="FAISS factory string")
    index_shards: int = Field(1, ge=1, le=4096, description="encode the corpus in this many parallel shard steps, "
                              "then merge", json_schema_extra=flag("--index-shards"))
    index_search_params: str = Field("", description="FAISS search parameters, e.g. nprobe=64 for an IVF index")
    index_vectors: str = Field("float32", pattern="^(float32|float16)$", description="dtype of the stored frozen "
                               "document vectors: float16 halves the store (the paper's scale)")
    retriever: str = Field("local", pattern="^(local|https?://.+)$", description="where every step retrieves: "
                           "local (the index memory-mapped in the step) or the URL of an index service serving "
                           "this run's index; an execution setting (not part of any step's hash)",
                           json_schema_extra=flag("--retriever"))
    track: str = Field("tensorboard", pattern="^(tensorboard|mlflow)$", description="experiment tracking: every "
                       "training step writes TensorBoard events; mlflow also logs them to MLFLOW_TRACKING_URI (an "
                       "execution setting, not part of any step's hash)", json_schema_extra=flag("--track"))
    device: str = Field("auto", description="auto, cpu or cuda", json_schema_extra=flag("--device"))
    quantization: str = Field("auto", pattern="^(auto|nf4|none)$", description="generator weights: auto (4-bit "
                              "NF4 on CUDA, none on CPU), nf4 or none", json_schema_extra=flag("--quantization"))
    evaluate: EvaluateOverrides = Field(default_factory=EvaluateOverrides,
                                        description="overrides of the evaluate step config")
    train: TrainOverrides = Field(default_factory=TrainOverrides,
                                  description="overrides of every training step config")
    embed_lr_grid: tuple[float, ...] = Field(PAPER_LR_GRID, description="learning rates tried (default: the paper's "
                                             "nine)", json_schema_extra=flag("--lr-grid", sets=("gen_lr_grid",)))
    gen_lr_grid: tuple[float, ...] = Field(PAPER_LR_GRID, description="learning rates tried for the generator")
    embed_lr: float | None = Field(None, gt=0, description="fix the embedder learning rate (no grid)",
                                   json_schema_extra=flag("--embed-lr"))
    gen_lr: float | None = Field(None, gt=0, description="fix the generator learning rate (no grid)",
                                 json_schema_extra=flag("--gen-lr"))
    select_by: str = Field("em", pattern="^(em|recall)$", description="grid selection: em (the paper; F1 breaks "
                           "ties) or recall", json_schema_extra=flag("--select-by"))
    gpus: int = Field(1, ge=0, description="GPUs per training step (several: torchrun in one pod)",
                      json_schema_extra=flag("--gpus", commands=("submit",)))
    hard_negatives: int = Field(0, ge=0, le=32, description="finetune-embed: per question, this many top-ranked "
                                "non-gold passages as extra negatives (not in the paper; default 0 = in-batch "
                                "negatives only)", json_schema_extra=flag("--hard-negatives"))
    phase1: str = Field("rag", pattern="^(rag|concat)$", description="two-phase phase 1: rag (the paper: RAG loss "
                        "over single-passage prompts) or concat (reuse the Ft. Gen. grid: the generator trained on "
                        "the concatenated top-k, the prompt it is evaluated with)",
                        json_schema_extra=flag("--phase1"))
    phase2_pool: int | None = Field(None, ge=0, le=1000, description="cached phase 2: passages per question scored "
                                    "once by the frozen generator (>= the training k; default 2 x the training k, "
                                    "so 10 for k = 5; 0 = off)", json_schema_extra=flag("--phase2-pool"))

    @field_validator("embed_lr_grid", "gen_lr_grid")
    @classmethod
    def _grid_positive(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not (x > 0) or not math.isfinite(x) for x in v):
            raise ValueError(f"a learning-rate grid needs one or more finite values > 0, got {list(v)}")
        return tuple(v)

    @field_validator("embed_lr", "gen_lr")
    @classmethod
    def _lr_finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("learning rate must be a finite number > 0")
        return v

    @model_validator(mode="after")
    def _pool_holds_k(self) -> RunSettings:
        k = self.train_k()
        if self.phase2_pool and self.phase2_pool < k:
            raise FieldError(("phase2_pool",), f"must be >= the training k ({k}), or 0 for exact passes only")
        return self

    def train_k(self) -> int:
        """Passages a training step reads per question."""
        k = self.train.values().get("k")
        return int(k if k is not None else JointConfig.model_fields["k"].default)

    def embed_grid(self) -> tuple[float, ...]:
        return (self.embed_lr,) if self.embed_lr else self.embed_lr_grid

    def gen_grid(self) -> tuple[float, ...]:
        return (self.gen_lr,) if self.gen_lr else self.gen_lr_grid


# --- flags ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingFlag:
    """A command-line flag declared on a settings field."""

    flag: str  # --batch-size
    path: tuple[str, ...]  # ("train", "batch_size")
    type: type  # int | float | str (a tuple field is a comma-separated str)
    help: str
    commands: tuple[str, ...]
    also: tuple[tuple[str, ...], ...] = ()  # further paths the same value sets

    @property
    def param(self) -> str:
        """The Python parameter name typer gives the flag's value."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def is_list(self) -> bool:
        return self.type is list


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _scalar_type(annotation: Any) -> type:
    """int / float / str / bool of a field's annotation (None stripped); `list` for a tuple of values."""
    origin = get_origin(annotation)
    if origin in (tuple, list):
        return list
    if origin is Union or type(annotation).__name__ == "UnionType":
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        return _scalar_type(kinds[0])
    return annotation if annotation in (int, float, str, bool) else str


def setting_flags(command: str | None = None, model: type[BaseModel] = RunSettings,
                  prefix: tuple[str, ...] = ()) -> list[SettingFlag]:
    """Every flag declared on `model`'s fields (recursively), for `command` (run | submit) or all."""
    found: list[SettingFlag] = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        path = (*prefix, name)
        if "flag" in extra and (command is None or command in extra["commands"]):
            also = tuple((*prefix, s) for s in extra.get("sets", ()))
            kind = _scalar_type(info.annotation)
            help_text = info.description or ""
            if kind is list:
                help_text += " (comma-separated)"
            found.append(SettingFlag(str(extra["flag"]), path, kind, help_text, tuple(extra["commands"]), also))
        nested = _nested_model(info.annotation)
        if nested is not None:
            found.extend(setting_flags(command, nested, path))
    return found


# --- settings from a file, flags and --set ----------------------------------------------------------------


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def parse_set(text: str) -> tuple[tuple[str, ...], Any]:
    """`train.batch_size=4` -> (("train", "batch_size"), 4); the value is read as YAML (4, 1e-5, true, null)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part.isidentifier() for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. train.batch_size=4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return tuple(key.split(".")), value


def build_settings(file_data: dict[str, Any] | None = None, *, file_name: str = "",
                   flags: dict[str, Any] | None = None, sets: list[str] | None = None,
                   command: str | None = None) -> RunSettings:
    """RunSettings from a run specification's data (`file_name` for messages), then flags (by parameter name:
    `batch_size`), then `--set KEY=VALUE` overrides. A bad value raises ConfigError naming what was written."""
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], tuple[str, bool]] = {}  # path -> (label, show the value)

    def note_file(node: Any, path: tuple[str, ...]) -> None:
        if path:
            origins[path] = (f"{'.'.join(path)} in {file_name}" if file_name else ".".join(path), True)
        if isinstance(node, dict):
            for key, value in node.items():
                note_file(value, (*path, str(key)))

    if file_data:
        data = _deep_copy(file_data)
        note_file(data, ())
    by_param = {f.param: f for f in setting_flags(command)}
    for param, value in (flags or {}).items():
        if value is None:
            continue
        if param not in by_param:
            raise ConfigError(f"unknown setting flag {param!r}")
        f = by_param[param]
        parsed = [part.strip() for part in str(value).split(",")] if f.is_list else value
        for path in (f.path, *f.also):
            _put(data, path, parsed)
            origins[path] = (f"{f.flag} {value}", False)
    for text in sets or ():
        path, value = parse_set(text)
        _put(data, path, value)
        origins[path] = (f"--set {text}", False)
    try:
        return RunSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_settings_error(exc, origins)) from None


def _deep_copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _deep_copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_deep_copy(v) for v in node]
    return node


def _settings_error(exc: ValidationError, origins: dict[tuple[str, ...], tuple[str, bool]]) -> str:
    err = exc.errors()[0]
    loc = error_loc(err)
    field = tuple(p for p in loc if not p.isdigit())
    for n in range(len(field), 0, -1):
        if field[:n] in origins:
            label, show_value = origins[field[:n]]
            if show_value:
                value = err.get("input")
                shown = "" if isinstance(value, dict) else f" = {short_value(value)}"
                where = label.partition(" in ")
                return f"{where[0]}{shown}{where[1]}{where[2]}: {describe(err)}"
            return f"{label}: {describe(err)}"
    return f"{'.'.join(field) or 'settings'}: {describe(err)}"
