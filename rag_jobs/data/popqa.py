"""PopQA reader: JSON Lines or a JSON list, with or without passages.

Each record has an `id` (string or integer), a `question` and `possible_answers`: a list of strings, or a
JSON string holding that list as in PopQA's original TSV (`answers` is accepted as the Self-RAG name).
Records may carry `passages` (`paragraphs` is accepted too): `[{"title", "text", "is_supporting"}]`; the
corpus is every distinct passage, with an id derived from its title and text, and a question's gold
passages are its supporting ones. Its gold title (for labels against an external corpus) is the subject's page,
`s_wiki_title`, else the titles of its supporting passages, else of all its passages.

A file without passages (e.g. the long-tail subset) gives a Dataset with an empty corpus and
`has_context_labels=False` (meta `needs_corpus: true`); attach a corpus from a JSON Lines file
`{id, title, text}` with `attach_corpus` (or `load_dataset(spec, corpus=PATH)`) before a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rag_jobs.data._common import (
    DatasetBuilder,
    Where,
    as_answers,
    as_bool,
    as_id,
    as_list,
    as_object,
    as_str,
    first_present,
    iter_json_records,
    passage_id,
    records_dataset,
    require,
)
from rag_jobs.data.records import Dataset, Example, Passage

_HINT = " (expected a PopQA record)"


def read_popqa(path: str | Path) -> Dataset:
    """Read a PopQA file; see the module docstring for the accepted fields."""
    return popqa_dataset(iter_json_records(path), source=str(Path(path).expanduser()))


def popqa_dataset(
    records: Iterable[tuple[Where, Mapping[str, Any]]], *, source: str, name: str = "popqa"
) -> Dataset:
    """Convert located PopQA records into a checked Dataset (shared by the file and hub readers)."""
    ds = records_dataset(records, convert_popqa_record, name=name, source=source, fmt="popqa",
                         require_corpus=False)
    ds.meta["needs_corpus"] = not ds.corpus
    return ds


def convert_popqa_record(obj: Mapping[str, Any], where: Where, builder: DatasetBuilder) -> None:
    """Add one PopQA record (and its passages, if any) to the builder."""
    ex_id = as_id(require(obj, "id", where, _HINT), where, "id")
    question = as_str(require(obj, "question", where, _HINT), where, "question")
    answers_key = "possible_answers" if "possible_answers" in obj else "answers"
    raw_answers = first_present(obj, ("possible_answers", "answers"), where, _HINT)
    if isinstance(raw_answers, str):
        try:
            raw_answers = json.loads(raw_answers)
        except json.JSONDecodeError:
            raise where.error(f"field {answers_key!r} is a string but not a JSON list of strings") from None
    answers = as_answers(raw_answers, where, answers_key)

    passages_key = "passages" if "passages" in obj else "paragraphs"
    raw_passages = obj.get(passages_key)
    gold: list[str] = []
    titles: list[str] = []
    supporting_titles: list[str] = []
    if raw_passages is not None:
        for i, item in enumerate(as_list(raw_passages, where, passages_key)):
            what = f"{passages_key}[{i}]"
            entry = as_object(item, where, what)
            raw_title = entry.get("title")
            title = "" if raw_title is None else as_str(raw_title, where, f"{what}.title", allow_empty=True)
            text = as_str(
                require(entry, "text", where, f" in {what}"), where, f"{what}.text", allow_empty=True
            )
            supporting = as_bool(entry.get("is_supporting", False), where, f"{what}.is_supporting")
            pid = passage_id(title, text)
            builder.add_passage(Passage(pid, title, text), where, merge_identical=True)
            if supporting and pid not in gold:
                gold.append(pid)
            for group in (titles, supporting_titles) if supporting else (titles,):
                if title and title not in group:
                    group.append(title)
    # The subject's page is what a question is about: its title, else the titles of its (supporting) passages.
    raw_subject = obj.get("s_wiki_title")
    subject = as_str(raw_subject, where, "s_wiki_title", allow_empty=True) if raw_subject is not None else ""
    gold_titles = (subject,) if subject else tuple(supporting_titles or titles)
    builder.add_example(Example(ex_id, question, answers, tuple(gold), gold_titles=gold_titles), where)
