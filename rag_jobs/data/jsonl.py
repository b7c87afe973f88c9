"""The project's plain dataset format, and attaching a separate corpus to a dataset.

A dataset is a directory holding two JSON Lines files::

    questions.jsonl   {"id": "q1", "question": "...", "answers": ["..."], "gold_passage_ids": ["p1"]}
    corpus.jsonl      {"id": "p1", "title": "...", "text": "..."}

`gold_passage_ids` is optional (no labels: the dataset has `has_context_labels=False`), `title` may be
empty or absent. Ids are strings (integers are accepted and kept as their decimal string). Passages with
empty text are dropped and counted; every other gold id must name a passage of the corpus.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag_jobs.data._common import (
    DatasetBuilder,
    Where,
    as_answers,
    as_id,
    as_ids,
    as_str,
    existing_dir,
    existing_file,
    has_context_labels,
    iter_json_records,
    one_line,
    require,
    shown,
)
from rag_jobs.data.records import Dataset, Example, Passage
from rag_jobs.errors import DataError

QUESTIONS_FILE = "questions.jsonl"
CORPUS_FILE = "corpus.jsonl"
_Q_HINT = " (expected {id, question, answers[, gold_passage_ids]})"
_P_HINT = " (expected {id, title, text})"


def read_jsonl_dataset(directory: str | Path) -> Dataset:
    """Read a dataset directory in the plain format (questions.jsonl + corpus.jsonl)."""
    root = existing_dir(directory, f"dataset directory (holding {QUESTIONS_FILE} and {CORPUS_FILE})")
    questions = existing_file(root / QUESTIONS_FILE)
    corpus = existing_file(root / CORPUS_FILE)
    builder = DatasetBuilder(root.resolve().name or "jsonl", str(root), "jsonl")
    for where, passage in iter_corpus_jsonl(corpus):
        builder.add_passage(passage, where, merge_identical=False)
    for where, example in iter_questions_jsonl(questions):
        builder.add_example(example, where)
    return builder.build(require_corpus=True, corpus_source=str(corpus))


def iter_questions_jsonl(path: str | Path) -> Iterator[tuple[Where, Example]]:
    """Each question of a questions.jsonl file, checked, with its location."""
    for where, obj in iter_json_records(path):
        ex_id = as_id(require(obj, "id", where, _Q_HINT), where, "id")
        question = as_str(require(obj, "question", where, _Q_HINT), where, "question")
        answers = as_answers(require(obj, "answers", where, _Q_HINT), where, "answers")
        raw_gold = obj.get("gold_passage_ids")
        gold = () if raw_gold is None else as_ids(raw_gold, where, "gold_passage_ids")
        yield where, Example(ex_id, question, answers, gold)


def iter_corpus_jsonl(path: str | Path) -> Iterator[tuple[Where, Passage]]:
    """Each passage of a corpus.jsonl file, checked, with its location (empty texts included)."""
    for where, obj in iter_json_records(path):
        pid = as_id(require(obj, "id", where, _P_HINT), where, "id")
        raw_title = obj.get("title")
        title = "" if raw_title is None else as_str(raw_title, where, "title", allow_empty=True)
        text = as_str(require(obj, "text", where, _P_HINT), where, "text", allow_empty=True)
        yield where, Passage(pid, title, text)


def attach_corpus(ds: Dataset, path: str | Path) -> Dataset:
    """A copy of `ds` whose corpus also holds the passages of a corpus file ({id, title, text} lines).

    A passage whose id is already in the dataset must have the same title and text (it is then kept
    once); otherwise the file's line is named in a DataError.
    """
    p = existing_file(path, "corpus file")
    by_id = {passage.id: passage for passage in ds.corpus}
    corpus = list(ds.corpus)
    added = merged = dropped = 0
    seen: dict[str, Where] = {}
    for where, passage in iter_corpus_jsonl(p):
        if passage.id in seen:
            raise where.error(f"duplicate passage id {shown(passage.id)} (first at {seen[passage.id]})")
        seen[passage.id] = where
        if not passage.text:
            dropped += 1
            continue
        old = by_id.get(passage.id)
        if old is None:
            by_id[passage.id] = passage
            corpus.append(passage)
            added += 1
        elif old == passage:
            merged += 1
        else:
            raise where.error(f"passage id {shown(passage.id)} is already in the dataset with another text")
    if not corpus:
        raise DataError(one_line(f"{p}: empty corpus (no passage with non-empty text)"))
    for ex in ds.examples:
        for gid in ex.gold_passage_ids:
            if gid not in by_id:
                raise DataError(
                    one_line(
                        f"{p}: gold passage id {shown(gid)} of question {shown(ex.id)} is not in the corpus"
                    )
                )
    meta: dict[str, Any] = dict(ds.meta)
    meta.update(
        attached_corpus=str(p),
        attached_passages=added,
        attached_duplicates_merged=merged,
        attached_dropped_empty=dropped,
        passages=len(corpus),
        needs_corpus=False,
    )
    return dataclasses.replace(
        ds, corpus=corpus, has_context_labels=has_context_labels(ds.examples, corpus), meta=meta
    )


def write_jsonl_dataset(ds: Dataset, directory: str | Path) -> Path:
    """Write `ds` in the plain format (questions.jsonl and corpus.jsonl) into `directory`; return it.

    Each file is written to a temporary name and renamed, so a crash leaves no half-written file.
    """
    if not ds.corpus:
        raise DataError(one_line(f"dataset {ds.name!r} has an empty corpus; attach one before writing it"))
    root = Path(directory).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        _write_lines(
            root / CORPUS_FILE,
            ({"id": p.id, "title": p.title, "text": p.text} for p in ds.corpus),
        )
        _write_lines(
            root / QUESTIONS_FILE,
            (
                {
                    "id": ex.id,
                    "question": ex.question,
                    "answers": list(ex.answers),
                    "gold_passage_ids": list(ex.gold_passage_ids),
                }
                for ex in ds.examples
            ),
        )
    except OSError as e:
        raise DataError(one_line(f"{root}: cannot write the dataset: {e.strerror or e}")) from e
    return root


def _write_lines(path: Path, rows: Iterator[dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False))
                f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
