"""Typed records every dataset reader yields."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Passage:
    """One retrievable passage of the corpus; `id` is stable across runs."""

    id: str
    title: str
    text: str

    @property
    def content(self) -> str:
        """The text that is embedded and shown to the generator."""
        return f"{self.title}: {self.text}" if self.title else self.text


@dataclass(frozen=True)
class Example:
    """One question with its gold answers and (where the dataset has them) its context labels.

    `gold_passage_ids`: the positives of the embedder's ranking loss (a dataset's gold paragraphs; over an
    external corpus, the chunks that hold a supporting sentence). `gold_groups`: what Recall@k counts, one group
    per gold title (any chunk of a group in the top k finds it); empty means one group per gold passage.
    `gold_titles` and `support` (supporting (title, sentence) pairs) are what the labels against an external
    corpus are derived from (rag_jobs.corpus.labels); they are not written to the splits.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    gold_passage_ids: tuple[str, ...] = ()
    gold_groups: tuple[tuple[str, ...], ...] = ()
    gold_titles: tuple[str, ...] = ()
    support: tuple[tuple[str, str], ...] = ()

    @property
    def recall_groups(self) -> tuple[tuple[str, ...], ...]:
        """The groups Recall@k counts: `gold_groups`, else each gold passage alone."""
        return self.gold_groups or tuple((g,) for g in self.gold_passage_ids)

    @property
    def labelled(self) -> bool:
        """True when Recall@k can be counted for this question."""
        return bool(self.gold_groups or self.gold_passage_ids)


@dataclass
class Dataset:
    """Questions plus the corpus they are answered from."""

    name: str
    examples: list[Example]
    corpus: list[Passage]
    has_context_labels: bool
    meta: dict = field(default_factory=dict)


@dataclass
class Splits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
