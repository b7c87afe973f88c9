"""The question splits travel with the index artifact, so later steps never need the raw dataset path."""

from __future__ import annotations

import json
from pathlib import Path

from rag_jobs.artifacts import layout
from rag_jobs.data.records import Example, Splits
from rag_jobs.errors import IntegrityError

SPLITS_FILE = layout.SPLITS_FILE


def write_splits(splits: Splits, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for name in ("train", "validation", "test"):
            for ex in getattr(splits, name):
                row = {"split": name, "id": ex.id, "question": ex.question, "answers": list(ex.answers),
                       "gold_passage_ids": list(ex.gold_passage_ids)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_splits(path: Path) -> Splits:
    parts: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                parts[r["split"]].append(
                    Example(id=r["id"], question=r["question"], answers=tuple(r["answers"]),
                            gold_passage_ids=tuple(r["gold_passage_ids"]))
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise IntegrityError(f"{path}:{n}: malformed split record: {exc}") from exc
    return Splits(**parts)
