"""Corpora: the passages an index is built from, as a source of their own (rag_jobs/DESIGN "Corpora").

A corpus spec names where the passages are (`medrag:DIR`, `hf:NAME`, `jsonl:FILE|DIR`, `parquet:PATH`,
`docs:PATH`; rag_jobs.corpus.sources); the `corpus` step normalises it into the store as Arrow IPC shards of a
fixed row count plus a manifest (rag_jobs.corpus.shards); the `splits` step derives each question's context
labels against it (rag_jobs.corpus.labels).
"""

from rag_jobs.corpus.shards import CORPUS_META, CorpusShards, ShardWriter
from rag_jobs.corpus.sources import CORPUS_FORMS, check_corpus_spec, iter_source, parse_corpus_spec, source_digest

__all__ = ["CORPUS_FORMS", "CORPUS_META", "CorpusShards", "ShardWriter", "check_corpus_spec", "iter_source",
           "parse_corpus_spec", "source_digest"]
