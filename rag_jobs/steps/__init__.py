"""The step library: what each step kind computes, with the entrypoints (rag_jobs.jobs) only wiring it up.

- `training`: what every training step shares: data, models, checkpoints in the store, `fit`, validation;
- `embed`: multiple-negatives ranking loss, plain and cached (GradCache), and hard negatives;
- `generate`: the answer NLL of the generator on the concatenated top-k prompt;
- `joint`: RAG-Token / RAG-Sequence over the embedder, the generator, or both;
- `pool`: cached phase 2's score pool;
- `scoring`: retrieval + generation + EM / F1 / Recall@k over a set of questions;
- `index`: the corpus of a build-index step, its shards and their merge.
"""
