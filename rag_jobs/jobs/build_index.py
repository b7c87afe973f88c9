"""`build-index`: load the dataset, split it, encode the corpus and write the FAISS index artifact (or, as
`index-shard.<i>`, encode one slice of the corpus; rag_jobs.steps.index)."""

from __future__ import annotations

import sys

from rag_jobs.data.splits import split_examples
from rag_jobs.index import build_index
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.jobs.splits_io import SPLITS_FILE, write_splits
from rag_jobs.models import load_embedder
from rag_jobs.progress import Progress
from rag_jobs.steps.index import encode_shard, load_corpus, merge_shards


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    ds, corpus = load_corpus(ctx)
    if cfg.shard is not None:
        return encode_shard(ctx, corpus)
    examples = sorted(ds.examples, key=lambda e: e.id)
    splits = split_examples(examples, seed=cfg.data.seed, fractions=cfg.data.split, limit=cfg.data.limit)
    write_splits(splits, ctx.out_dir / SPLITS_FILE)
    ctx.log(f"dataset {ds.name}: {len(ds.examples)} questions, {len(corpus)} passages; "
            f"splits train={len(splits.train)} validation={len(splits.validation)} test={len(splits.test)}")
    if cfg.shards > 1:
        meta = merge_shards(ctx, corpus)
    else:
        model = load_embedder(cfg.embedder, device=ctx.device)
        progress = Progress(ctx.label, "encoded", len(corpus), unit="passages")
        meta = build_index(corpus, model, ctx.out_dir, embedder_name=cfg.embedder, factory=cfg.index_factory,
                           batch_size=cfg.batch_size, seed=cfg.data.seed, progress=progress,
                           search_params=cfg.search_params)
    ctx.extra["dataset"] = {"name": ds.name, "has_context_labels": ds.has_context_labels, **ds.meta}
    return {"passages": meta["size"], "dim": meta["dim"], "passages_per_s": meta["passages_per_s"],
            "questions": len(splits.train) + len(splits.validation) + len(splits.test),
            "has_context_labels": ds.has_context_labels, "shards": cfg.shards}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("build-index", body, argv))


if __name__ == "__main__":
    main()
