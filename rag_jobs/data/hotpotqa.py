"""HotPotQA reader: the original record format and the Hugging Face layout, told apart per record.

Original (`hotpot_*_v1.json`, a JSON list, or JSON Lines with one record per line)::

    {"_id", "question", "answer", "supporting_facts": [[title, sent_id], ...],
     "context": [[title, [sentence, ...]], ...]}

Hugging Face (`hotpot_qa` on the hub, or a file exported from it)::

    {"id", "question", "answer", "supporting_facts": {"title": [...], "sent_id": [...]},
     "context": {"title": [...], "sentences": [[...], ...]}}

The corpus is every distinct context paragraph: its title, and its sentences joined with their original
spacing (`"".join(sentences).strip()`). A paragraph's id is derived from its title and text
(`passage_id`), so the same paragraph gets the same id in every question that shows it. The gold passages
of a question are its supporting paragraphs, in the order of the supporting facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rag_jobs.data._common import (
    DatasetBuilder,
    Where,
    as_id,
    as_list,
    as_str,
    check_chars,
    first_present,
    iter_json_records,
    passage_id,
    records_dataset,
    require,
    shown,
    type_name,
)
from rag_jobs.data.records import Dataset, Example, Passage

_HINT = " (expected a HotPotQA record)"


def read_hotpotqa(path: str | Path) -> Dataset:
    """Read a HotPotQA file (JSON list or JSON Lines; original or Hugging Face layout)."""
    return hotpotqa_dataset(iter_json_records(path), source=str(Path(path).expanduser()))


def hotpotqa_dataset(
    records: Iterable[tuple[Where, Mapping[str, Any]]], *, source: str, name: str = "hotpotqa"
) -> Dataset:
    """Convert located HotPotQA records into a checked Dataset (shared by the file and hub readers)."""
    return records_dataset(records, convert_hotpotqa_record, name=name, source=source, fmt="hotpotqa",
                           require_corpus=True, layout_original=0, layout_hf=0, supporting_sentences_missing=0)


def convert_hotpotqa_record(obj: Mapping[str, Any], where: Where, builder: DatasetBuilder) -> None:
    """Add one HotPotQA record, in either layout, to the builder."""
    ex_id = as_id(first_present(obj, ("_id", "id"), where, _HINT), where, "_id" if "_id" in obj else "id")
    question = as_str(require(obj, "question", where, _HINT), where, "question")
    answer = as_str(require(obj, "answer", where, _HINT), where, "answer")
    raw_context = require(obj, "context", where, _HINT)
    if isinstance(raw_context, Mapping):
        context = _hf_context(raw_context, where)
        builder.counts["layout_hf"] += 1
    elif isinstance(raw_context, list):
        context = _original_context(raw_context, where)
        builder.counts["layout_original"] += 1
    else:
        raise where.error(f"field 'context' must be a list or an object, got a {type_name(raw_context)}")
    support = _support_facts(require(obj, "supporting_facts", where, _HINT), where)

    id_of_title: dict[str, str] = {}
    sentences_of: dict[str, list[str]] = {}
    for raw_title, sentences in context:
        sentences_of.setdefault(raw_title, sentences)
        title = raw_title.strip()
        text = check_chars("".join(sentences), where, "context").strip()
        pid = passage_id(title, text)
        builder.add_passage(Passage(pid, title, text), where, merge_identical=True)
        id_of_title.setdefault(raw_title, pid)

    gold: list[str] = []
    titles: list[str] = []
    sentences: list[tuple[str, str]] = []
    for title, sent_id in support:
        pid = id_of_title.get(title)
        if pid is None:
            raise where.error(f"supporting fact title {shown(title)} is not a title in the context")
        if pid not in gold:
            gold.append(pid)
        if title.strip() not in titles:
            titles.append(title.strip())
        paragraph = sentences_of[title]
        if sent_id < len(paragraph) and paragraph[sent_id].strip():  # out of range in a few original records
            sentences.append((title.strip(), paragraph[sent_id].strip()))
        else:
            builder.counts["supporting_sentences_missing"] += 1
    builder.add_example(Example(ex_id, question, (answer,), tuple(gold), gold_titles=tuple(titles),
                                support=tuple(sentences)), where)


def _original_context(raw: list[Any], where: Where) -> list[tuple[str, list[str]]]:
    context: list[tuple[str, list[str]]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, list) or len(item) != 2:
            raise where.error(f"field 'context' item {i} must be a [title, sentences] pair")
        title, sentences = item
        context.append(
            (_title(title, where, f"context[{i}][0]"), _sentences(sentences, where, f"context[{i}][1]"))
        )
    return context


def _hf_context(raw: Mapping[str, Any], where: Where) -> list[tuple[str, list[str]]]:
    titles = as_list(require(raw, "title", where, " in 'context'"), where, "context.title")
    paragraphs = as_list(require(raw, "sentences", where, " in 'context'"), where, "context.sentences")
    if len(titles) != len(paragraphs):
        raise where.error(
            f"'context' has {len(titles)} titles but {len(paragraphs)} sentence lists (they must pair up)"
        )
    return [
        (_title(t, where, f"context.title[{i}]"), _sentences(s, where, f"context.sentences[{i}]"))
        for i, (t, s) in enumerate(zip(titles, paragraphs, strict=True))
    ]


def _support_facts(raw: Any, where: Where) -> list[tuple[str, int]]:
    """The supporting facts (title, sentence id), in order."""
    if isinstance(raw, Mapping):
        titles = as_list(
            require(raw, "title", where, " in 'supporting_facts'"), where, "supporting_facts.title"
        )
        sent_ids = as_list(
            require(raw, "sent_id", where, " in 'supporting_facts'"), where, "supporting_facts.sent_id"
        )
        if len(titles) != len(sent_ids):
            raise where.error(
                f"'supporting_facts' has {len(titles)} titles but {len(sent_ids)} sentence ids "
                "(they must pair up)"
            )
        pairs = list(zip(titles, sent_ids, strict=True))
        names = ("supporting_facts.title", "supporting_facts.sent_id")
    elif isinstance(raw, list):
        pairs = []
        for i, item in enumerate(raw):
            if not isinstance(item, list) or len(item) != 2:
                raise where.error(f"field 'supporting_facts' item {i} must be a [title, sent_id] pair")
            pairs.append((item[0], item[1]))
        names = ("supporting_facts[].title", "supporting_facts[].sent_id")
    else:
        raise where.error(f"field 'supporting_facts' must be a list or an object, got a {type_name(raw)}")
    facts: list[tuple[str, int]] = []
    for title, sent_id in pairs:
        if not isinstance(title, str):
            raise where.error(f"field {names[0]!r} must hold strings, got a {type_name(title)}")
        if not isinstance(sent_id, int) or isinstance(sent_id, bool) or sent_id < 0:
            raise where.error(f"field {names[1]!r} must hold non-negative integers, got {shown(sent_id)}")
        facts.append((title, sent_id))
    return facts


def _title(value: Any, where: Where, what: str) -> str:
    if not isinstance(value, str):
        raise where.error(f"field {what!r} must be a string, got a {type_name(value)}")
    return check_chars(value, where, what)


def _sentences(value: Any, where: Where, what: str) -> list[str]:
    sentences = as_list(value, where, what)
    for j, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise where.error(f"field {what!r} item {j} must be a string, got a {type_name(sentence)}")
    return sentences
