"""Seeded splits: deterministic, independent of input order, disjoint, sized by fractions."""

from __future__ import annotations

import hashlib
import random

import pytest

from rag_jobs.data import Example, split_examples
from rag_jobs.data.splits import split_sizes
from rag_jobs.errors import ConfigError, DataError

EXAMPLES = [Example(f"q{i:03d}", f"Question {i}?", ("a",)) for i in range(100)]


def ids(examples: list[Example]) -> list[str]:
    return [ex.id for ex in examples]


def test_same_seed_same_splits_whatever_the_input_order() -> None:
    first = split_examples(EXAMPLES, seed=7)
    shuffled = list(EXAMPLES)
    random.Random(1).shuffle(shuffled)
    again = split_examples(shuffled, seed=7)
    assert again == first
    assert split_examples(list(reversed(EXAMPLES)), seed=7) == first


def test_order_is_the_documented_hash_order() -> None:
    splits = split_examples(EXAMPLES, seed=3)
    expected = sorted(ids(EXAMPLES), key=lambda i: hashlib.sha256(f"3:{i}".encode()).digest())
    assert ids(splits.train + splits.validation + splits.test) == expected


def test_disjoint_cover_and_sizes() -> None:
    splits = split_examples(EXAMPLES, seed=0)
    train, val, test = set(ids(splits.train)), set(ids(splits.validation)), set(ids(splits.test))
    assert (len(train), len(val), len(test)) == (80, 10, 10)
    assert not (train & val)
    assert not (train & test)
    assert not (val & test)
    assert train | val | test == set(ids(EXAMPLES))


def test_different_seeds_differ() -> None:
    assert split_examples(EXAMPLES, seed=0).test != split_examples(EXAMPLES, seed=1).test


def test_limit_takes_a_seeded_sample() -> None:
    limited = split_examples(EXAMPLES, seed=5, fractions=(0.5, 0.25, 0.25), limit=20)
    assert (len(limited.train), len(limited.validation), len(limited.test)) == (10, 5, 5)
    full = split_examples(EXAMPLES, seed=5, fractions=(0.5, 0.25, 0.25))
    order = ids(full.train + full.validation + full.test)
    assert ids(limited.train + limited.validation + limited.test) == order[:20]
    assert len(ids(split_examples(EXAMPLES, seed=5, limit=1000).train)) == 80


@pytest.mark.parametrize(
    ("n", "shares", "sizes"),
    [
        (5, (0.8, 0.1, 0.1), (4, 1, 0)),
        (0, (0.8, 0.1, 0.1), (0, 0, 0)),
        (3, (1 / 3, 1 / 3, 1 / 3), (1, 1, 1)),
        (7, (1.0, 0.0, 0.0), (7, 0, 0)),
        (11, (0.0, 0.5, 0.5), (0, 6, 5)),
    ],
)
def test_split_sizes_add_up(n: int, shares: tuple[float, float, float], sizes: tuple[int, int, int]) -> None:
    assert split_sizes(n, shares) == sizes


@pytest.mark.parametrize(
    "fractions",
    [(0.8, 0.2), (0.5, 0.5, 0.5), (1.2, -0.1, -0.1), (float("nan"), 0.5, 0.5), ("a", "b", "c"), 3],
)
def test_invalid_fractions(fractions: object) -> None:
    with pytest.raises(ConfigError) as exc:
        split_examples(EXAMPLES, seed=0, fractions=fractions)  # type: ignore[arg-type]
    assert exc.value.exit_code == 2
    assert str(exc.value).startswith("fractions:")


@pytest.mark.parametrize(("kwargs", "field"), [({"limit": 0}, "limit:"), ({"seed": "1"}, "seed:")])
def test_invalid_limit_and_seed(kwargs: dict, field: str) -> None:
    args = {"seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=field):
        split_examples(EXAMPLES, **args)


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(DataError, match="duplicate question id 'q000'"):
        split_examples([*EXAMPLES, EXAMPLES[0]], seed=0)
