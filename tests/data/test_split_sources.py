"""Explicit split sources: a split from its own file, the seeded split cutting only the rest."""

from __future__ import annotations

import pytest

from rag_jobs.data.records import Example
from rag_jobs.data.splits import split_examples, split_with_sources
from rag_jobs.errors import ConfigError, DataError


def _ex(prefix, n):
    return [Example(f"{prefix}{i}", f"q {prefix}{i}", ("a",)) for i in range(n)]


def test_test_file_is_the_whole_test_split_and_the_rest_is_cut_by_the_remaining_fractions():
    main, test = _ex("m", 90), _ex("t", 13)
    splits, how = split_with_sources(main, 0, (0.8, 0.1, 0.1), test=test)
    assert sorted(e.id for e in splits.test) == sorted(e.id for e in test)
    assert len(splits.train) == 80 and len(splits.validation) == 10  # 0.8 / 0.9 and 0.1 / 0.9 of 90
    assert how["dropped_held_out"] == 0


def test_both_files_leave_everything_else_to_train_and_limit_cuts_only_the_main_set():
    splits, _ = split_with_sources(_ex("m", 50), 3, (0.8, 0.1, 0.1), limit=20, validation=_ex("v", 7),
                                   test=_ex("t", 5))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (20, 7, 5)


def test_questions_of_a_held_out_file_are_never_trained_on():
    main = _ex("m", 10)
    splits, how = split_with_sources(main, 0, (0.8, 0.1, 0.1), test=main[:4])
    assert not {e.id for e in splits.train + splits.validation} & {e.id for e in main[:4]}
    assert how["dropped_held_out"] == 4


def test_without_files_it_is_the_seeded_split():
    main = _ex("m", 40)
    splits, _ = split_with_sources(main, 5, (0.8, 0.1, 0.1), limit=30)
    assert splits == split_examples(main, 5, (0.8, 0.1, 0.1), limit=30)


def test_a_question_in_both_files_and_no_share_left_are_errors():
    with pytest.raises(DataError, match="in both the validation and the test dataset"):
        split_with_sources(_ex("m", 5), 0, validation=_ex("x", 2), test=_ex("x", 3))
    with pytest.raises(ConfigError, match="no share is left"):
        split_with_sources(_ex("m", 5), 0, (0.0, 0.0, 1.0), test=_ex("t", 2))
