"""The plain format: reading, writing (round trip) and malformed directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_jobs.data import Dataset, Example, Passage, load_dataset, read_jsonl_dataset, write_jsonl_dataset
from rag_jobs.errors import DataError

CORPUS = [
    {"id": "p1", "title": "Oslo", "text": "Oslo is the capital of Norway."},
    {"id": "p2", "title": "", "text": "Bergen is on the west coast."},
    {"id": 3, "text": "Tromsø lies in the north."},
    {"id": "p4", "title": "Blank", "text": "   "},
]
QUESTIONS = [
    {
        "id": "q1",
        "question": "What is the capital of Norway?",
        "answers": ["Oslo"],
        "gold_passage_ids": ["p1"],
    },
    {
        "id": 2,
        "question": " Where is Tromsø? ",
        "answers": ["the north", "North"],
        "gold_passage_ids": [3, "3"],
    },
    {"id": "q3", "question": "Which city is on the coast?", "answers": ["Bergen"]},
    {"id": "q4", "question": "Blank?", "answers": ["x"], "gold_passage_ids": ["p4", "p2"]},
]


@pytest.fixture
def dataset_dir(tmp_path: Path, jsonl_file) -> Path:
    jsonl_file(CORPUS, name="ds/corpus.jsonl")
    jsonl_file(QUESTIONS, name="ds/questions.jsonl")
    return tmp_path / "ds"


def test_reads_the_plain_format(dataset_dir: Path) -> None:
    ds = load_dataset(f"jsonl:{dataset_dir}")
    assert ds.name == "ds"
    assert ds.corpus == [
        Passage("p1", "Oslo", "Oslo is the capital of Norway."),
        Passage("p2", "", "Bergen is on the west coast."),
        Passage("3", "", "Tromsø lies in the north."),
    ]
    assert ds.examples == [
        Example("q1", "What is the capital of Norway?", ("Oslo",), ("p1",)),
        Example("2", "Where is Tromsø?", ("the north", "North"), ("3",)),
        Example("q3", "Which city is on the coast?", ("Bergen",), ()),
        Example("q4", "Blank?", ("x",), ("p2",)),  # p4 had empty text: dropped with its gold reference
    ]
    assert ds.has_context_labels is True  # 3 of 4 questions name a gold passage (q3 does not): most are labelled
    assert ds.meta["passages_dropped_empty"] == 1
    assert ds.meta["gold_ids_dropped_empty"] == 1
    assert ds.meta["examples_with_gold"] == 3
    assert ds.meta["spec"] == f"jsonl:{dataset_dir}"


def test_round_trip(tmp_path: Path, dataset_dir: Path) -> None:
    ds = read_jsonl_dataset(dataset_dir)
    out = write_jsonl_dataset(ds, tmp_path / "export" / "nested")
    assert sorted(x.name for x in out.iterdir()) == ["corpus.jsonl", "questions.jsonl"]
    again = read_jsonl_dataset(out)
    assert again.examples == ds.examples
    assert again.corpus == ds.corpus
    # Written as UTF-8, not escaped.
    assert "Tromsø" in (out / "corpus.jsonl").read_text(encoding="utf-8")


def test_round_trip_of_a_labelled_dataset(tmp_path: Path) -> None:
    ds = Dataset(
        name="tiny",
        examples=[Example("a", "Q?", ("x", "y"), ("p",))],
        corpus=[Passage("p", "T", 'text with "quotes" and a\nnewline')],
        has_context_labels=True,
    )
    again = read_jsonl_dataset(write_jsonl_dataset(ds, tmp_path / "tiny"))
    assert (again.examples, again.corpus, again.has_context_labels) == (ds.examples, ds.corpus, True)


def test_writing_an_empty_corpus_is_refused(tmp_path: Path, data_error) -> None:
    ds = Dataset(name="e", examples=[Example("a", "Q?", ("x",))], corpus=[], has_context_labels=False)
    with pytest.raises(DataError) as exc:
        write_jsonl_dataset(ds, tmp_path / "e")
    data_error(exc.value, "empty corpus")


@pytest.mark.parametrize(
    ("corpus", "questions", "where", "fragment"),
    [
        (
            CORPUS,
            [*QUESTIONS, {"id": "q9", "question": "Q?", "answers": ["a"], "gold_passage_ids": ["zz"]}],
            "questions.jsonl:5:",
            "gold passage id 'zz' of question 'q9' is not in the corpus",
        ),
        ([*CORPUS, {"id": "p1", "text": "again"}], QUESTIONS, "corpus.jsonl:5:", "duplicate passage id 'p1'"),
        ([{"id": "a", "text": ""}], QUESTIONS[2:3], "corpus.jsonl", "empty corpus"),
        ([], QUESTIONS[2:3], "corpus.jsonl", "empty corpus"),
        (CORPUS, [*QUESTIONS, QUESTIONS[0]], "questions.jsonl:5:", "duplicate question id 'q1'"),
        (
            CORPUS,
            [{"id": "q", "question": "Q?", "answers": "Oslo"}],
            "questions.jsonl:1:",
            "field 'answers' must be a list, got a string",
        ),
        (CORPUS, [{"id": "q", "question": "Q?", "answers": []}], "questions.jsonl:1:", "no non-empty answer"),
        (CORPUS, [{"id": "q", "question": "Q?"}], "questions.jsonl:1:", "missing field 'answers'"),
        (
            CORPUS,
            [{"id": "q", "question": "Q?", "answers": ["a"], "gold_passage_ids": "p1"}],
            "questions.jsonl:1:",
            "field 'gold_passage_ids' must be a list",
        ),
        (
            [{"id": "a", "title": 5, "text": "x"}],
            QUESTIONS[2:3],
            "corpus.jsonl:1:",
            "field 'title' must be a string",
        ),
        ([{"id": "a", "title": "x"}], QUESTIONS[2:3], "corpus.jsonl:1:", "missing field 'text'"),
        ([{"id": "a", "text": "nul\u0000"}], QUESTIONS[2:3], "corpus.jsonl:1:", "contains a NUL character"),
        (CORPUS, [], "", "no questions"),
    ],
)
def test_malformed_directories(
    tmp_path: Path, jsonl_file, data_error, corpus: list, questions: list, where: str, fragment: str
) -> None:
    jsonl_file(corpus, name="bad/corpus.jsonl")
    jsonl_file(questions, name="bad/questions.jsonl")
    with pytest.raises(DataError) as exc:
        load_dataset(f"jsonl:{tmp_path / 'bad'}")
    data_error(exc.value, where, fragment)


def test_missing_directory_and_files(tmp_path: Path, jsonl_file, data_error) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(f"jsonl:{tmp_path / 'absent'}")
    data_error(exc.value, str(tmp_path / "absent"), "no such dataset directory")
    jsonl_file(CORPUS, name="only_corpus/corpus.jsonl")
    with pytest.raises(DataError) as exc:
        load_dataset(f"jsonl:{tmp_path / 'only_corpus'}")
    data_error(exc.value, str(tmp_path / "only_corpus" / "questions.jsonl"), "no such file")
    file = jsonl_file(CORPUS, name="a_file.jsonl")
    with pytest.raises(DataError) as exc:
        load_dataset(f"jsonl:{file}")
    data_error(exc.value, str(file), "not a directory")


def test_invalid_utf8_in_the_corpus(tmp_path: Path, jsonl_file, data_error) -> None:
    jsonl_file(QUESTIONS[2:3], name="u/questions.jsonl")
    (tmp_path / "u" / "corpus.jsonl").write_bytes(
        b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "\xc3("}\n'
    )
    with pytest.raises(DataError) as exc:
        read_jsonl_dataset(tmp_path / "u")
    data_error(exc.value, "corpus.jsonl:2:", "invalid UTF-8")
