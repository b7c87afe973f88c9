"""`finetune-embed`: multiple-negatives ranking loss on (question, gold passage) pairs, documents frozen."""

from __future__ import annotations

import sys

from rag_jobs.artifacts.layout import EMBEDDER_DIR
from rag_jobs.errors import DataError
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.steps.embed import make_step_fn, training_pairs
from rag_jobs.steps.training import fit, group, main_rank_only, start_training, train_stats, validate


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    dist, retriever, train_ex, val_ex = start_training(ctx)
    model = load_embedder(retriever.meta["embedder"], device=ctx.device)
    pairs = training_pairs(retriever, model, train_ex, cfg.hard_negatives)
    unlabelled = sum(1 for e in train_ex if not e.gold_passage_ids)
    if unlabelled:
        ctx.log(f"{unlabelled} of {len(train_ex)} training questions have no context label: left out of the loss")
    val_pairs = None
    if cfg.validate_every:  # MNRL on the validation questions' gold passages (plain: the same value as cached)
        try:
            val_pairs = training_pairs(retriever, model, val_ex, cfg.hard_negatives)
        except DataError:  # no validation question's gold passage is in the index
            val_pairs = None
        if not val_pairs:
            ctx.log("validate_every: the validation questions have no gold passage in the index: no validation loss")
    model.train()
    result = fit(ctx, dist, model, pairs, make_step_fn(model, cfg), [group("embedder", model, cfg.lr)],
                 full_batch=True, val_items=val_pairs,
                 val_step_fn=make_step_fn(model, cfg.model_copy(update={"cached": False})))
    main_rank_only(dist)
    model.save(str(ctx.out_dir / EMBEDDER_DIR))
    generator = None
    if cfg.validation.select_by == "em":
        generator = load_generator(cfg.generator, device=ctx.device, quantization=cfg.quantization)
    return {**train_stats(result, dist), **validate(ctx, retriever, val_ex, model, generator), "lr": cfg.lr,
            "pairs": len(pairs), "hard_negatives": cfg.hard_negatives,
            "questions_unlabelled": unlabelled}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("finetune-embed", body, argv))


if __name__ == "__main__":
    main()
