"""Answer and retrieval metrics: SQuAD-normalised EM / token F1, Recall@k, answer-recall@k."""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, strip punctuation and articles, fold white space (the SQuAD normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in gold_answers))


def _f1_one(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        # Both empty counts as a match; one empty is a miss.
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, gold_answers: Sequence[str]) -> float:
    """Token-level F1 after normalisation, best over all gold answers."""
    if not gold_answers:
        return 0.0
    return max(_f1_one(prediction, g) for g in gold_answers)


def recall_at_k(retrieved_ids: Sequence[str], gold_ids: Iterable[str], k: int) -> float:
    """Share of the gold passages found in the top k retrieved ids."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    gold = set(gold_ids)
    if not gold:
        return math.nan
    top = set(retrieved_ids[:k])
    return len(gold & top) / len(gold)


def answer_recall_at_k(retrieved_texts: Sequence[str], gold_answers: Sequence[str], k: int) -> float:
    """1.0 when any normalised gold answer appears in one of the top k normalised passages."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    answers = [normalize_answer(a) for a in gold_answers]
    answers = [a for a in answers if a]
    if not answers:
        return 0.0
    for text in retrieved_texts[:k]:
        padded = f" {normalize_answer(text)} "
        if any(f" {a} " in padded for a in answers):
            return 1.0
    return 0.0


def mean(values: Iterable[float]) -> float:
    """Mean of the finite values; NaN when there are none."""
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def bootstrap_ci(
    values: Sequence[float], *, n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (NaN values are ignored)."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    n = len(vals)
    means = sorted(sum(vals[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_resamples))
    lo = means[int((alpha / 2) * (n_resamples - 1))]
    hi = means[int((1 - alpha / 2) * (n_resamples - 1))]
    return (lo, hi)
