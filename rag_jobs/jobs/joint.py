"""`joint`: RAG-Token / RAG-Sequence training of the embedder, the generator, or both (rag_jobs.steps.joint)."""

from __future__ import annotations

import sys

from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.steps.joint import JointModel, learning_rates, make_step_fn, open_pool, save_trained, set_trainable
from rag_jobs.steps.training import fit, load_step_models, main_rank_only, start_training, train_stats, validate
from rag_jobs.training.distributed import all_reduce_sum_counts


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    dist, retriever, train_ex, val_ex = start_training(ctx)
    embedder, _, generator, tok, adapter = load_step_models(ctx, retriever, dist.local_rank)
    embed_lr, gen_lr = learning_rates(ctx)
    generator, groups = set_trainable(ctx, embedder, generator, adapter, embed_lr, gen_lr)
    pool = open_pool(ctx, train_ex)
    step_fn = make_step_fn(ctx, retriever, embedder, generator, tok, pool)
    # the validation loss is exact (no pool: the pool holds the training questions' scores)
    val_fn = make_step_fn(ctx, retriever, embedder, generator, tok) if cfg.validate_every else None
    result = fit(ctx, dist, JointModel(embedder, generator), train_ex, step_fn, groups, val_items=val_ex,
                 val_step_fn=val_fn)
    if pool is not None:  # every rank joins: the counts of the whole batch, not rank 0's share
        pool.hits, pool.fallbacks = all_reduce_sum_counts([pool.hits, pool.fallbacks], dist)
    main_rank_only(dist)
    save_trained(ctx, embedder, generator)
    known = pool.known_answers(cfg) if pool is not None else None
    metrics = validate(ctx, retriever, val_ex, embedder, (generator, tok), known_answers=known)
    if pool is not None:
        ctx.log(f"pool: {pool.hits} cached passage scores, {pool.fallbacks} exact fallbacks")
    # `lr`: the rate a one-model grid child tried (the embedder's when both train), as selection reads it
    lr = gen_lr if cfg.train == "generator" else embed_lr
    return {**train_stats(result, dist), **metrics, **(pool.stats() if pool is not None else {}), "lr": lr,
            "embed_lr": embed_lr, "gen_lr": gen_lr}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("joint", body, argv))


if __name__ == "__main__":
    main()
