"""The question splits, committed by the splits step, so later steps never need the raw dataset path.

A row: split, id, question, answers, gold_passage_ids (the ranking loss's positives) and, against an external
corpus, gold_groups (one list of chunk ids per gold title: what Recall@k counts).
"""

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
                if ex.gold_groups:
                    row["gold_groups"] = [list(g) for g in ex.gold_groups]
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_splits(path: Path) -> Splits:
    parts: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                parts[r["split"]].append(
                    Example(id=r["id"], question=r["question"], answers=tuple(r["answers"]),
                            gold_passage_ids=tuple(r["gold_passage_ids"]),
                            gold_groups=tuple(tuple(g) for g in r.get("gold_groups", ())))
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise IntegrityError(f"{path}:{n}: malformed split record: {exc}") from exc
    return Splits(**parts)
