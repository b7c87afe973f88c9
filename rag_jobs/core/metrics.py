"""Answer and retrieval metrics: SQuAD-normalised EM / token F1 (the SQuAD v1.1 or the HotPotQA rule),
Recall@k, answer-recall@k."""

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


F1_RULES = ("squad", "hotpotqa")
_CLOSED = frozenset({"yes", "no", "noanswer"})  # HotPotQA's answers that only score on equality


def _f1_one(prediction: str, gold: str, rule: str) -> float:
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if rule == "hotpotqa" and (pred in _CLOSED or ref in _CLOSED) and pred != ref:
        return 0.0  # a yes/no/noanswer prediction or gold scores only when both are the same
    pred_tokens, gold_tokens = pred.split(), ref.split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:  # also when both normalise to empty: SQuAD v1.1 scores that 0
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, gold_answers: Sequence[str], rule: str = "squad") -> float:
    """Token-level F1 after normalisation, best over all gold answers: `squad` (SQuAD v1.1's evaluation) or
    `hotpotqa` (hotpot_evaluate_v1's: the same, except that yes / no / noanswer score only on equality)."""
    if rule not in F1_RULES:
        raise ValueError(f"F1 rule {rule!r} is not one of {', '.join(F1_RULES)}")
    if not gold_answers:
        return 0.0
    return max(_f1_one(prediction, g, rule) for g in gold_answers)


def recall_at_k(retrieved_ids: Sequence[str], gold_ids: Iterable[str], k: int) -> float:
    """Share of the gold passages found in the top k retrieved ids."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    gold = set(gold_ids)
    if not gold:
        return math.nan
    top = set(retrieved_ids[:k])
    return len(gold & top) / len(gold)


def group_recall_at_k(retrieved_ids: Sequence[str], groups: Iterable[Iterable[str]], k: int) -> float:
    """Share of the gold groups (e.g. one per gold title, of its gold chunks) with any member in the top k; with
    one passage per group this is `recall_at_k`."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    sets = [set(g) for g in groups]
    sets = [g for g in sets if g]
    if not sets:
        return math.nan
    top = set(retrieved_ids[:k])
    return sum(1 for g in sets if g & top) / len(sets)


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


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_resamples: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean of a - b, and its percentile bootstrap interval) over paired per-question scores: questions are
    resampled together, so what both systems get right or wrong alike cancels out."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))]
    if not diffs:
        return (math.nan, math.nan, math.nan)
    lo, hi = bootstrap_ci(diffs, n_resamples=n_resamples, alpha=alpha, seed=seed)
    return (sum(diffs) / len(diffs), lo, hi)


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
