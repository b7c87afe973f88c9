"""`build-index`: encode the committed corpus and write the FAISS index artifact (or, as `index-shard.<i>`,
encode one slice of the corpus; rag_jobs.steps.index). The index depends only on the corpus, the embedder and
the index settings: the question splits are their own step. Its passages stay in the corpus step's files."""

from __future__ import annotations

import sys

from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.steps.index import build_whole, encode_shard, merge_shards, open_corpus


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    corpus = open_corpus(ctx)
    if cfg.shard is not None:
        return encode_shard(ctx, corpus)
    origin = corpus.meta.get("source") or ", ".join(corpus.meta.get("datasets", []))
    ctx.log(f"corpus: {len(corpus)} passages ({origin})")
    meta = merge_shards(ctx, corpus) if cfg.shards > 1 else build_whole(ctx, corpus)
    ctx.extra["corpus"] = {k: corpus.meta.get(k) for k in ("source", "datasets", "rows", "titles")}
    return {"passages": meta["size"], "dim": meta["dim"], "passages_per_s": meta["passages_per_s"],
            "shards": cfg.shards, "vectors": meta["vectors"], "index_bytes": sum(meta["bytes"].values())}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("build-index", body, argv))


if __name__ == "__main__":
    main()
