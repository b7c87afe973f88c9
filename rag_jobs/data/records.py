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
    """One question with its gold answers and (where the dataset has them) gold passage ids."""

    id: str
    question: str
    answers: tuple[str, ...]
    gold_passage_ids: tuple[str, ...] = ()


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
