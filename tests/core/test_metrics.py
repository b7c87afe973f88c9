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


def test_f1_hand_computed():
    # pred tokens: [new, york, city]; gold: [new, york] -> P = 2/3, R = 1, F1 = 0.8
    assert M.f1("New York City", ["New York"]) == pytest.approx(0.8)
    # best over gold answers
    assert M.f1("New York City", ["Boston", "new york city"]) == pytest.approx(1.0)
    # repeated tokens count with multiplicity: pred [a1, a1] vs gold [a1] -> overlap 1, P=.5, R=1
    assert M.f1("x x", ["x"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert M.f1("cat", ["dog"]) == 0.0
    assert M.f1("anything", []) == 0.0


# (prediction, gold, F1 by SQuAD v1.1's evaluate-v1.1.py, F1 by HotPotQA's hotpot_evaluate_v1.py): what the
# official scripts' f1_score functions return (the rules written here, not the scripts vendored)
OFFICIAL_F1 = [
    ("New York City", "New York", 0.8, 0.8),
    ("Yes.", "yes", 1.0, 1.0),
    ("yes", "no", 0.0, 0.0),
    ("yes", "yes sir", 2 / 3, 0.0),  # a yes/no prediction scores only on equality under the HotPotQA rule
    ("no way", "no", 2 / 3, 0.0),  # so does a yes/no gold answer
    ("noanswer", "noanswer", 1.0, 1.0),
    ("the", "a", 0.0, 0.0),  # both normalise to empty: no common token, F1 0 (SQuAD v1.1; v2 would say 1)
    ("", "Paris", 0.0, 0.0),
    ("The Eiffel Tower in Paris", "Eiffel Tower", 2 * (2 / 4) * 1 / (2 / 4 + 1), 2 * (2 / 4) * 1 / (2 / 4 + 1)),
]


@pytest.mark.parametrize("prediction,gold,squad,hotpotqa", OFFICIAL_F1,
                         ids=[f"{p!r} vs {g!r}" for p, g, _, _ in OFFICIAL_F1])
def test_f1_rules_agree_with_the_official_scripts(prediction, gold, squad, hotpotqa):
    assert M.f1(prediction, [gold], rule="squad") == pytest.approx(squad)
    assert M.f1(prediction, [gold], rule="hotpotqa") == pytest.approx(hotpotqa)


def test_an_unknown_f1_rule_is_refused():
    with pytest.raises(ValueError, match="squad, hotpotqa"):
        M.f1("a", ["a"], rule="bleu")


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


def test_paired_bootstrap_cancels_what_both_get_alike():
    # 60 questions: both right on 30, both wrong on 24, a alone right on 4, b alone right on 2 (6 vs 3 extra)
    a = [1.0] * 30 + [0.0] * 24 + [1.0] * 4 + [0.0] * 2
    b = [1.0] * 30 + [0.0] * 24 + [0.0] * 4 + [1.0] * 2
    diff, lo, hi = M.paired_bootstrap(a, b)
    assert diff == pytest.approx(2 / 60)
    assert lo <= 0.0 <= hi  # within noise
    diff, lo, hi = M.paired_bootstrap([1.0] * 40 + [0.0] * 20, [0.0] * 60)
    assert diff == pytest.approx(40 / 60) and lo > 0.3  # a real difference
    with pytest.raises(ValueError):
        M.paired_bootstrap([1.0], [1.0, 0.0])
