"""Hub loading: rows in the HF layout go through the file readers' converters; no network is used."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from rag_jobs.data import load_dataset, load_from_hub, read_hotpotqa
from rag_jobs.data.hub import convert_hub_rows
from rag_jobs.errors import DataError, TransientError

HF_ROWS = [
    {
        "id": "5a8b57f25542995d1e6f1371",
        "question": "Which river is longer?",
        "answer": "Aa",
        "type": "comparison",
        "level": "hard",
        "supporting_facts": {"title": ["Aa", "Bb"], "sent_id": [0, 0]},
        "context": {
            "title": ["Aa", "Bb", "Cc"],
            "sentences": [["Aa is a river.", " It is long."], ["Bb is a brook."], ["Cc is a lake."]],
        },
    },
    {
        "id": "5a8b57f25542995d1e6f1372",
        "question": "What is Bb?",
        "answer": "a brook",
        "type": "bridge",
        "level": "easy",
        "supporting_facts": {"title": ["Bb"], "sent_id": [0]},
        "context": {"title": ["Bb", "Dd"], "sentences": [["Bb is a brook."], ["Dd is a dune."]]},
    },
]
POPQA_ROWS = [
    {"id": 4222362, "question": "What is Ziv's occupation?", "possible_answers": '["writer", "author"]'},
    {"id": 1, "question": "Where was Ann born?", "possible_answers": '["Bergen"]'},
]


def test_hub_rows_convert_like_a_file_in_hf_layout(jsonl_file) -> None:
    from_file = read_hotpotqa(jsonl_file(HF_ROWS))
    from_rows = convert_hub_rows(HF_ROWS, source="hf:hotpot_qa:distractor@validation")
    assert from_rows.examples == from_file.examples
    assert from_rows.corpus == from_file.corpus
    assert len(from_rows.corpus) == 4
    assert from_rows.examples[0].gold_passage_ids == (from_rows.corpus[0].id, from_rows.corpus[1].id)
    assert from_rows.meta["layout_hf"] == 2
    assert from_rows.meta["source"] == "hf:hotpot_qa:distractor@validation"


def test_popqa_rows() -> None:
    ds = convert_hub_rows(POPQA_ROWS, source="hf:akariasai/PopQA@test")
    assert [ex.answers for ex in ds.examples] == [("writer", "author"), ("Bergen",)]
    assert ds.corpus == []
    assert ds.has_context_labels is False
    assert ds.meta["needs_corpus"] is True


def test_row_errors_name_the_row(data_error) -> None:
    bad = dict(HF_ROWS[1], question="")
    with pytest.raises(DataError) as exc:
        convert_hub_rows([HF_ROWS[0], bad], source="hf:x")
    data_error(exc.value, "hf:x row 1:", "field 'question' is empty")
    with pytest.raises(DataError) as exc:
        convert_hub_rows([{"foo": 1}], source="hf:x")
    data_error(exc.value, "hf:x row 0:", "cannot tell the dataset kind")
    with pytest.raises(DataError) as exc:
        convert_hub_rows([], source="hf:x")
    data_error(exc.value, "hf:x", "no rows")


def test_missing_datasets_package_is_a_data_error(monkeypatch: pytest.MonkeyPatch, data_error) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(DataError) as exc:
        load_dataset("hf:hotpot_qa:distractor")
    data_error(exc.value, "hf:hotpot_qa:distractor", "pip install datasets")


class _FakeDatasets(types.ModuleType):
    """Stands in for the `datasets` package: records the call, returns the given rows or splits."""

    def __init__(self, result: object) -> None:
        super().__init__("datasets")
        self.result = result
        self.calls: list[tuple] = []

    def load_dataset(self, name: str, config: str | None = None, split: str | None = None) -> object:
        self.calls.append((name, config, split))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_hf_spec_parsing_and_split_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeDatasets({"train": HF_ROWS[:1], "validation": HF_ROWS})
    monkeypatch.setitem(sys.modules, "datasets", fake)
    ds = load_dataset("hf:hotpot_qa:distractor")
    assert fake.calls == [("hotpot_qa", "distractor", None)]
    assert len(ds.examples) == 2  # validation preferred over train
    assert ds.meta["hub_split"] == "validation"
    assert ds.meta["source"] == "hf:hotpot_qa:distractor@validation"

    fake.result = POPQA_ROWS
    ds = load_dataset("hf:akariasai/PopQA@test")
    assert fake.calls[-1] == ("akariasai/PopQA", None, "test")
    assert ds.name == "popqa"
    assert len(ds.examples) == 2


def test_hub_failures(monkeypatch: pytest.MonkeyPatch, data_error) -> None:
    fake = _FakeDatasets(ConnectionError("network is unreachable"))
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(TransientError) as exc:
        load_from_hub("hotpot_qa", "distractor")
    assert exc.value.exit_code == 1
    fake.result = FileNotFoundError("Dataset 'nope' doesn't exist on the Hub")
    with pytest.raises(DataError) as exc:
        load_from_hub("nope")
    data_error(exc.value, "hf:nope", "not found on the hub")
    fake.result = {"a": [], "b": []}
    with pytest.raises(DataError) as exc:
        load_from_hub("two_splits")
    data_error(exc.value, "several splits", "@SPLIT")


@pytest.mark.parametrize("spec", ["hf:", "hf::cfg", "hf:name@", "hf:a:b:c"])
def test_malformed_hf_specs(spec: str, data_error) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(spec)
    data_error(exc.value, "hf:NAME[:CONFIG][@SPLIT]")


def test_convert_hub_rows_needs_no_files(tmp_path: Path) -> None:
    convert_hub_rows(iter(HF_ROWS), source="hf:x")
    assert list(tmp_path.iterdir()) == []
