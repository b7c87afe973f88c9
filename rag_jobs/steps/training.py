"""What every training step shares: its data and models, `fit` with checkpoints in the store, validation."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import torch

from rag_jobs.artifacts import StepRef, commit_checkpoint, fetch_checkpoint, latest_checkpoint, prune_checkpoints
from rag_jobs.artifacts.layout import ADAPTER_DIR, EMBEDDER_DIR, VALIDATION_FILE
from rag_jobs.data.records import Example
from rag_jobs.index import FaissRetriever
from rag_jobs.jobs.common import StepContext
from rag_jobs.jobs.splits_io import SPLITS_FILE, read_splits
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.steps.retrieval import open_retriever
from rag_jobs.steps.scoring import f1_rule_of, score_examples
from rag_jobs.training import LoopConfig, ParamGroup, train
from rag_jobs.training.distributed import DistInfo, init_distributed
from rag_jobs.training.loop import TrainResult, seed_everything
from rag_jobs.training.tracking import TB_DIR, Tracker


class StoreCheckpoints:
    """CheckpointIO over the artifact store: each checkpoint is committed like a step (manifest last)."""

    def __init__(self, ctx: StepContext, keep: int = 2):
        self.ctx, self.keep = ctx, keep
        self.ref = StepRef(ctx.run.run_id, ctx.spec.name)

    def save(self, n: int, folder: Path) -> None:
        commit_checkpoint(self.ctx.store, self.ref, n, folder, meta={"extra": {"step": n}})
        prune_checkpoints(self.ctx.store, self.ref, keep=self.keep)
        shutil.rmtree(folder, ignore_errors=True)
        self.ctx.log(f"checkpoint {n} committed")

    def latest(self, dest: Path) -> int | None:
        found = latest_checkpoint(self.ctx.store, self.ref)
        if found is None:
            return None
        n, _ = found
        fetch_checkpoint(self.ctx.store, self.ref, n, dest)
        return n


def loop_config(cfg) -> LoopConfig:
    """The loop's settings, read off the step config by name (a loop field the config lacks keeps its default)."""
    names = [f.name for f in dataclasses.fields(LoopConfig)]
    return LoopConfig(**{name: getattr(cfg, name) for name in names if name in type(cfg).model_fields})


def start_training(ctx: StepContext) -> tuple[DistInfo, FaissRetriever, list[Example], list[Example]]:
    """Join the torchrun group (if any), seed, and load the index with the training and validation questions.
    Seeding first: LoRA initialisation and dropout start from the same state on every attempt."""
    dist = init_distributed()
    seed_everything(ctx.cfg.seed)
    return (dist, *load_training_data(ctx))


def group(name: str, module: torch.nn.Module, lr: float) -> ParamGroup:
    """The optimizer group of a module's trainable parameters (LoRA weights, or the whole embedder)."""
    return ParamGroup(name, [p for p in module.parameters() if p.requires_grad], lr)


def validation_loss(module: torch.nn.Module, items, step_fn, *, batch_size: int, full_batch: bool = False) -> float:
    """The training loss over `items` without gradients, every submodule in eval mode (no dropout: no random
    draws, so the training that follows is the same with or without it); each submodule's mode is restored."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    total, n = 0.0, 0
    try:
        with torch.no_grad():
            for i in range(0, len(items), batch_size):
                batch = list(items[i : i + batch_size])
                loss = step_fn(batch, batch) if full_batch else step_fn(batch)
                total, n = total + float(loss) * len(batch), n + len(batch)
    finally:
        for m, mode in modes:
            m.train(mode)
    return total / max(n, 1)


def fit(ctx: StepContext, dist: DistInfo, module: torch.nn.Module, items, step_fn, groups: list[ParamGroup], *,
        full_batch: bool = False, val_items=None, val_step_fn=None) -> TrainResult:
    """The one training loop over `items`, checkpointing `module`'s trainable weights into the store (a
    re-run resumes from the last checkpoint); leaves `module` in eval mode. With `validate_every`, the loss of
    `val_step_fn` (default `step_fn`) over `val_items` is measured every that many steps (main rank)."""
    state, load = trainable_state(module)
    evaluate = None
    if ctx.cfg.validate_every and val_items:
        def evaluate():
            return validation_loss(module, val_items, val_step_fn or step_fn, batch_size=ctx.cfg.batch_size,
                                   full_batch=full_batch)
    tracker = None
    if dist.is_main:  # TensorBoard events in the step folder, and MLflow with track=mlflow (training.tracking)
        tracker = Tracker(ctx.out_dir / TB_DIR, about={"run": ctx.run.run_id, "step": ctx.spec.name,
                                                       "kind": ctx.spec.kind,
                                                       "lr": {g.name: g.lr for g in groups}},
                          track=str(ctx.graph.settings.get("track") or "tensorboard"))
    try:
        result = train(label=ctx.label, items=items, step_fn=step_fn, groups=groups, cfg=loop_config(ctx.cfg),
                       trainable_state=state, load_trainable=load, checkpoints=StoreCheckpoints(ctx),
                       work_dir=ctx.work_dir, dist_info=dist, full_batch=full_batch, tracker=tracker,
                       evaluate=evaluate)
    except BaseException:  # preempted (checkpointed) or failed: the next attempt continues the same curve
        if tracker is not None:
            tracker.close(failed=True)
        raise
    if evaluate is not None and tracker is not None:  # the whole curve, across a resume (the events hold it)
        result.val_losses = tracker.history("validation/loss")
    ctx.tracker, ctx.trained_steps = tracker, result.steps
    module.eval()
    return result


def main_rank_only(dist: DistInfo) -> None:
    """Ranks other than 0 are done once training is: rank 0 validates and commits."""
    if not dist.is_main:
        sys.exit(0)


def load_training_data(ctx: StepContext) -> tuple[FaissRetriever, list[Example], list[Example]]:
    """The index, the training questions (train_limit applied) and the validation questions."""
    retriever = open_retriever(ctx)
    splits = read_splits(ctx.input_dir("splits") / SPLITS_FILE)
    train = splits.train[: ctx.cfg.train_limit] if ctx.cfg.train_limit else splits.train
    val = getattr(splits, ctx.cfg.validation.split)
    if ctx.cfg.validation.limit:
        val = val[: ctx.cfg.validation.limit]
    return retriever, train, val


def load_step_models(ctx: StepContext, retriever, local_rank: int | None = None):
    """(embedder, its path, generator, tokenizer, adapter folder): the inputs' models, else the base ones."""
    cfg = ctx.cfg
    emb_path = retriever.meta["embedder"]
    if ctx.has_input("embedder"):
        emb_path = str(ctx.input_dir("embedder") / EMBEDDER_DIR)
    adapter = str(ctx.input_dir("generator") / ADAPTER_DIR) if ctx.has_input("generator") else None
    embedder = load_embedder(emb_path, device=ctx.device)
    generator, tok = load_generator(cfg.generator, device=ctx.device, quantization=cfg.quantization,
                                    adapter_dir=adapter, local_rank=local_rank)
    return embedder, emb_path, generator, tok, adapter


def validate(ctx: StepContext, retriever, examples, embedder, generator, known_answers: dict | None = None) -> dict:
    """Score a trained child on the validation split: EM/F1 (with the generator) and Recall@5.

    `known_answers` (cached phase 2): answers of the frozen generator for questions that retrieve the same
    passages as under the starting embedder; only the others are generated.
    """
    v = ctx.cfg.validation
    gen = generator if v.select_by == "em" else None
    with torch.no_grad():
        rows, metrics = score_examples(retriever, examples, embedder, gen, k=ctx.cfg.k, recall_k=5,
                                    max_prompt_tokens=ctx.cfg.max_prompt_tokens, batch_size=v.batch_size,
                                    max_new_tokens=v.max_new_tokens, label=ctx.label, known_answers=known_answers,
                                    f1_rule=f1_rule_of(ctx.input_manifest("splits")))
    ctx.log("validation " + " ".join(f"{k}={metrics[k]:.4f}" for k in ("em", "f1", "recall") if k in metrics))
    tracker = getattr(ctx, "tracker", None)
    if tracker is not None:
        tracker.scalars("validation", {k: metrics[k] for k in ("em", "f1", "recall", "answer_recall") if k in metrics},
                        getattr(ctx, "trained_steps", 0))
        tracker.close()
    recall_key = metrics["recall_metric"]
    with open(ctx.out_dir / VALIDATION_FILE, "w", encoding="utf-8") as f:  # per question: the selection's noise check
        for r in rows:
            f.write(json.dumps({"id": r["id"], "recall": r.get(recall_key),
                                **{k: r[k] for k in ("em", "f1") if k in r}}, allow_nan=True) + "\n")
    return {f"val_{k}": metrics[k] for k in ("em", "f1", "recall", "n", "answers_reused") if k in metrics}


def trainable_state(module: torch.nn.Module):
    """Snapshot/restore closures over the parameters that require grad (LoRA weights, or the embedder)."""

    def state() -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    def load(sd: dict[str, torch.Tensor]) -> None:
        params = dict(module.named_parameters())
        with torch.no_grad():
            for n, t in sd.items():
                params[n].copy_(t.to(params[n].device, params[n].dtype))

    return state, load


def train_stats(result, dist: DistInfo) -> dict:
    losses = result.losses
    return {"train_steps": result.steps, "train_loss_first": losses[0] if losses else None,
            "train_loss_last": losses[-1] if losses else None, "resumed_from": result.resumed_from,
            "train_items_per_s": result.items_per_s, "world_size": dist.world_size,
            **({"val_loss_curve": [[int(s), float(v)] for s, v in result.val_losses]} if result.val_losses else {})}
