"""The real samples in /work/shared/data (read in place, never copied): counts and invariants."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_jobs.data import load_dataset, split_examples

SAMPLES = Path("/work/shared/data")

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="the shared data samples are not available")


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    return path


def test_hotpotqa_dev_sample() -> None:
    ds = load_dataset(f"hotpotqa:{sample('hotpotqa_dev_sample.jsonl')}")
    assert len(ds.examples) == 1107
    assert ds.has_context_labels is True
    assert ds.meta["layout_original"] == 1107
    ids = {p.id for p in ds.corpus}
    assert len(ids) == len(ds.corpus) == ds.meta["passages"]
    # 1,100 records have 10 paragraphs, 7 fewer; shared paragraphs are merged, not repeated.
    assert 10_000 < len(ds.corpus) < 11_070
    assert all(len(ex.gold_passage_ids) >= 2 and set(ex.gold_passage_ids) <= ids for ex in ds.examples)
    assert all(len(ex.answers) == 1 for ex in ds.examples)
    splits = split_examples(ds.examples, seed=0)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (885, 111, 111)


@pytest.mark.parametrize("name", ["hotpotqa_train_sample.jsonl", "hotpotqa_train_sample_extra_amor.jsonl"])
def test_hotpotqa_train_samples(name: str) -> None:
    ds = load_dataset(f"hotpotqa:{sample(name)}")
    assert len(ds.examples) == 100
    assert ds.has_context_labels is True


def test_popqa_sample() -> None:
    ds = load_dataset(f"popqa:{sample('popqa_sample.jsonl')}")
    assert len(ds.examples) == 1000
    assert all(len(ex.gold_passage_ids) == 2 for ex in ds.examples)
    assert ds.meta["passages"] + ds.meta["passage_duplicates_merged"] == 2000
    assert ds.has_context_labels is True
    assert ds.examples[0].id == "0"


def test_popqa_longtail_sample_needs_a_corpus() -> None:
    ds = load_dataset(f"popqa:{sample('popqa_longtail_sample.jsonl')}")
    assert len(ds.examples) == 1399
    assert ds.corpus == []
    assert ds.has_context_labels is False
    assert ds.meta["needs_corpus"] is True
