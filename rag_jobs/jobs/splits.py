"""`splits`: the questions of train, validation and test, with their context labels over the corpus.

Its own step, apart from the index: one index (corpus, embedder, index settings) serves every dataset, limit and
seed. A split can come from its own file (`--validation-dataset`, `--test-dataset`); against an external corpus
the labels are derived (rag_jobs.corpus.labels) and counted in the manifest.
"""

from __future__ import annotations

import sys

from rag_jobs.artifacts.layout import SPLITS_FILE
from rag_jobs.corpus.labels import derive_labels
from rag_jobs.corpus.shards import CorpusShards
from rag_jobs.data import load_dataset
from rag_jobs.data._common import has_context_labels
from rag_jobs.data.splits import split_with_sources
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.jobs.splits_io import write_splits

SPLIT_NAMES = ("train", "validation", "test")


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    ds = load_dataset(cfg.dataset)
    sources = {name: cfg.dataset for name in SPLIT_NAMES}
    given = {}
    for name, spec in (("validation", cfg.validation_dataset), ("test", cfg.test_dataset)):
        if spec:
            given[name] = load_dataset(spec).examples
            sources[name] = spec
    splits, how = split_with_sources(sorted(ds.examples, key=lambda e: e.id), cfg.seed, cfg.split, limit=cfg.limit,
                                     **given)
    labels: dict = {}
    if cfg.derive_labels:
        corpus = CorpusShards(ctx.input_dir("corpus"))
        for name in SPLIT_NAMES:
            part, counts = derive_labels(getattr(splits, name), corpus, ds.meta.get("format", ""))
            setattr(splits, name, part)
            labels[name] = counts
    write_splits(splits, ctx.out_dir / SPLITS_FILE)
    everyone = splits.train + splits.validation + splits.test
    labelled = has_context_labels(splits.train or everyone)
    sizes = {name: len(getattr(splits, name)) for name in SPLIT_NAMES}
    ctx.log(f"dataset {ds.name}: splits " + " ".join(f"{k}={v}" for k, v in sizes.items())
            + "".join(f"; {k} from {sources[k]}" for k in given))
    for name, counts in labels.items():
        ctx.log(f"{name} labels against the corpus: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    ctx.extra["dataset"] = {**ds.meta, "name": ds.name, "has_context_labels": labelled, "split_sources": sources,
                            "labels": labels or "the dataset's own", **how}
    return {**{f"questions_{k}": v for k, v in sizes.items()}, "questions": sum(sizes.values()),
            "has_context_labels": labelled, "questions_labelled": sum(1 for e in everyone if e.labelled),
            "questions_with_positives": sum(1 for e in everyone if e.gold_passage_ids)}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("splits", body, argv))


if __name__ == "__main__":
    main()
