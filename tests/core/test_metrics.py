import math

import pytest

from rag_jobs.core import metrics as M


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The  Eiffel Tower!", "eiffel tower"),
        ("an apple, a day", "apple day"),
        ("  Gian-Carlo   Menotti. ", "giancarlo menotti"),
        ("THE", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert M.normalize_answer(text) == expected


def test_exact_match_best_over_gold():
    assert M.exact_match("the Paris", ["London", "paris"]) == 1.0
    assert M.exact_match("Paris, France", ["Paris"]) == 0.0
    assert M.exact_match("", []) == 0.0


def test_token_f1_hand_computed():
    # pred tokens: [new, york, city]; gold: [new, york] -> P = 2/3, R = 1, F1 = 0.8
    assert M.token_f1("New York City", ["New York"]) == pytest.approx(0.8)
    # best over gold answers
    assert M.token_f1("New York City", ["Boston", "new york city"]) == pytest.approx(1.0)
    # repeated tokens count with multiplicity: pred [a1, a1] vs gold [a1] -> overlap 1, P=.5, R=1
    assert M.token_f1("x x", ["x"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert M.token_f1("cat", ["dog"]) == 0.0
    assert M.token_f1("the", ["a"]) == 1.0  # both normalise to empty


def test_recall_at_k():
    assert M.recall_at_k(["a", "b", "c"], ["a", "c"], k=2) == 0.5
    assert M.recall_at_k(["a", "b", "c"], ["a", "c"], k=3) == 1.0
    assert math.isnan(M.recall_at_k(["a"], [], k=1))
    with pytest.raises(ValueError):
        M.recall_at_k(["a"], ["a"], k=0)


def test_answer_recall_matches_whole_tokens():
    texts = ["Paris is the capital of France.", "Berlin is in Germany."]
    assert M.answer_recall_at_k(texts, ["Berlin"], k=2) == 1.0
    assert M.answer_recall_at_k(texts, ["Berlin"], k=1) == 0.0
    assert M.answer_recall_at_k(["Parisian cafes"], ["Paris"], k=1) == 0.0


def test_mean_and_bootstrap():
    assert M.mean([1.0, float("nan"), 0.0]) == 0.5
    lo, hi = M.bootstrap_ci([0.0, 1.0] * 50, seed=1)
    assert 0.35 < lo < 0.5 < hi < 0.65
    assert M.bootstrap_ci([1.0] * 10) == (1.0, 1.0)
