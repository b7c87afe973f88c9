"""A corpus spec (and/or a dataset's own passages) streamed into Arrow shards: the corpus step's work."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rag_jobs.corpus.shards import ShardWriter
from rag_jobs.corpus.sources import iter_source
from rag_jobs.data._common import Where, shown
from rag_jobs.data.records import Passage
from rag_jobs.errors import DataError

_LOG_EVERY_ROWS = 1_000_000


def ingest(out_dir: Path, *, source: str, datasets: tuple[str, ...], chunk_size: int, chunk_overlap: int,
           max_passage_chars: int | None, shard_rows: int, log: Callable[[str], None] = lambda _: None) -> dict:
    """Write every passage of the datasets' own corpora and of `source` into `out_dir` as Arrow shards; the
    counts. Empty texts are dropped and counted. A passage id the datasets repeat is kept once (their derived
    ids hash title and text: the same id is the same passage); a repeated id in `source` is refused with the
    place of its second row."""
    writer = ShardWriter(out_dir, shard_rows)
    seen: set[str] = set()
    titles: set[str] = set()
    counts = {"rows": 0, "dropped_empty": 0, "truncated": 0, "text_bytes": 0, "text_chars": 0,
              "dataset_duplicates_merged": 0}
    t0 = time.perf_counter()
    for where, p, from_dataset in _rows(source, datasets, chunk_size, chunk_overlap):
        if max_passage_chars and len(p.text) > max_passage_chars:
            p = dataclasses.replace(p, text=p.text[:max_passage_chars].rstrip())
            counts["truncated"] += 1
        if not p.text:
            counts["dropped_empty"] += 1
            continue
        if p.id in seen:
            if from_dataset:
                counts["dataset_duplicates_merged"] += 1
                continue
            raise where.error(f"duplicate passage id {shown(p.id)}: ids must be unique in a corpus")
        seen.add(p.id)
        titles.add(p.title)
        writer.add(p)
        counts["rows"] += 1
        counts["text_chars"] += len(p.text)
        counts["text_bytes"] += len(p.text.encode("utf-8"))
        if counts["rows"] % _LOG_EVERY_ROWS == 0:
            log(f"{counts['rows']:,} passages ({counts['rows'] / (time.perf_counter() - t0):,.0f}/s)")
    if not counts["rows"]:
        if source:
            raise DataError(f"--corpus {source}: empty corpus (no passage with non-empty text)")
        raise DataError(f"{', '.join(datasets)}: no passages to index; give the corpus to retrieve from with "
                        "--corpus SPEC (e.g. medrag:DIR or jsonl:FILE)")
    desc = writer.close(source=source, datasets=list(datasets), titles=len(titles),
                        dropped_empty=counts["dropped_empty"],
                        dataset_duplicates_merged=counts["dataset_duplicates_merged"],
                        truncated=counts["truncated"], text_bytes=counts["text_bytes"],
                        mean_chars=counts["text_chars"] / counts["rows"])
    return {**{k: v for k, v in desc.items() if k not in ("files", "format")}, "shards": len(desc["files"]),
            "ingest_s": time.perf_counter() - t0}


def _rows(source: str, datasets: tuple[str, ...], chunk_size: int,
          chunk_overlap: int) -> Iterator[tuple[Where, Passage, bool]]:
    from rag_jobs.data import load_dataset

    for spec in datasets:
        ds = load_dataset(spec)
        where = Where(f"{spec} (its passages)")
        for p in ds.corpus:
            yield where, p, True
    if source:
        for where, p in iter_source(source, chunk_size=chunk_size, chunk_overlap=chunk_overlap):
            yield where, p, False
