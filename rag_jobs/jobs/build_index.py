"""`build-index`: encode the committed corpus and write the FAISS index artifact (or, as `index-shard.<i>`,
encode one slice of the corpus; rag_jobs.steps.index). The index depends only on the corpus, the embedder and
the index settings: the question splits are their own step."""

from __future__ import annotations

import sys

from rag_jobs.index import build_index
from rag_jobs.index.faiss_index import check_corpus
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.models import load_embedder
from rag_jobs.progress import Progress
from rag_jobs.steps.index import encode_shard, merge_shards, open_corpus


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    corpus = open_corpus(ctx)
    if cfg.shard is not None:
        return encode_shard(ctx, corpus)
    passages = corpus.passages()
    check_corpus(passages)
    origin = corpus.meta.get("source") or ", ".join(corpus.meta.get("datasets", []))
    ctx.log(f"corpus: {len(passages)} passages ({origin})")
    if cfg.shards > 1:
        meta = merge_shards(ctx, passages)
    else:
        model = load_embedder(cfg.embedder, device=ctx.device)
        progress = Progress(ctx.label, "encoded", len(passages), unit="passages")
        meta = build_index(passages, model, ctx.out_dir, embedder_name=cfg.embedder, factory=cfg.index_factory,
                           batch_size=cfg.batch_size, seed=cfg.seed, progress=progress,
                           search_params=cfg.search_params)
    ctx.extra["corpus"] = {k: corpus.meta.get(k) for k in ("source", "datasets", "rows", "titles")}
    return {"passages": meta["size"], "dim": meta["dim"], "passages_per_s": meta["passages_per_s"],
            "shards": cfg.shards}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("build-index", body, argv))


if __name__ == "__main__":
    main()
