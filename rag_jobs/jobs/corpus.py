"""`corpus`: normalise a corpus spec (and/or a dataset's own passages) into the store as Arrow shards plus a
manifest of counts; shared by every run with the same source content and settings (rag_jobs.corpus)."""

from __future__ import annotations

import sys

from rag_jobs.corpus.ingest import ingest
from rag_jobs.jobs.common import StepContext, run_step


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    what = " + ".join([*(f"the passages of {d}" for d in cfg.datasets), *([cfg.source] if cfg.source else [])])
    ctx.log(f"reading {what}")
    metrics = ingest(ctx.out_dir, source=cfg.source, datasets=cfg.datasets, chunk_size=cfg.chunk_size,
                     chunk_overlap=cfg.chunk_overlap, max_passage_chars=cfg.max_passage_chars,
                     shard_rows=cfg.shard_rows, log=ctx.log)
    ctx.log(f"{metrics['rows']:,} passages, {metrics['titles']:,} titles in {metrics['shards']} shard(s); "
            f"{metrics['dropped_empty']:,} empty dropped")
    ctx.extra["corpus"] = {"source": cfg.source, "source_digest": cfg.source_digest, "datasets": list(cfg.datasets)}
    return metrics


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("corpus", body, argv))


if __name__ == "__main__":
    main()
