"""PopQA reader: with and without passages, answer encodings, attaching a corpus, malformed input."""

from __future__ import annotations

import json

import pytest

from rag_jobs.data import Example, Passage, attach_corpus, load_dataset, passage_id, read_popqa
from rag_jobs.errors import DataError

RANKIN = {"title": "Ada Rankin", "text": "Ada Rankin was a fictional engineer.", "is_supporting": True}
ENGINEER = {"title": "Engineer", "text": "An engineer designs things.", "is_supporting": True}
NOISE = {"title": "Noise", "text": "Unrelated words.", "is_supporting": False}

WITH_PASSAGES = [
    {
        "id": 0,
        "question": "What is Ada Rankin's occupation?",
        "possible_answers": ["engineer", "engineers", " engineer ", ""],
        "subj": "Ada Rankin",
        "passages": [RANKIN, ENGINEER, NOISE],
    },
    {
        "id": 1,
        "question": "What is Bo Lind's occupation?",
        "possible_answers": '["engineer", "technician"]',
        "passages": [{"title": "Bo Lind", "text": "Bo Lind is a made-up technician."}, ENGINEER],
    },
]


def p(entry: dict) -> Passage:
    return Passage(passage_id(entry["title"], entry["text"]), entry["title"], entry["text"])


def test_reads_passages_and_supporting_gold(jsonl_file) -> None:
    ds = read_popqa(jsonl_file(WITH_PASSAGES))
    bo_lind = p({"title": "Bo Lind", "text": "Bo Lind is a made-up technician."})
    assert ds.examples == [
        Example(
            "0", "What is Ada Rankin's occupation?", ("engineer", "engineers"), (p(RANKIN).id, p(ENGINEER).id),
            gold_titles=("Ada Rankin", "Engineer"),
        ),
        # No is_supporting flag on Bo Lind: not gold (nor its title, while a supporting passage has one).
        Example("1", "What is Bo Lind's occupation?", ("engineer", "technician"), (p(ENGINEER).id,),
                gold_titles=("Engineer",)),
    ]
    assert ds.corpus == [p(RANKIN), p(ENGINEER), p(NOISE), bo_lind]
    assert ds.has_context_labels is True
    assert ds.meta["passage_duplicates_merged"] == 1
    assert ds.meta["needs_corpus"] is False


def test_paragraphs_and_answers_are_accepted_names(jsonl_file) -> None:
    row = {"id": "x", "question": "Q?", "answers": ["a"], "paragraphs": [RANKIN]}
    ds = read_popqa(jsonl_file([row]))
    assert ds.examples == [Example("x", "Q?", ("a",), (p(RANKIN).id,), gold_titles=("Ada Rankin",))]


def test_the_subject_page_is_the_gold_title(jsonl_file) -> None:
    rows = [{"id": 1, "question": "Q?", "possible_answers": ["a"], "s_wiki_title": "Henry Feilden (politician)",
             "passages": [RANKIN]},
            {"id": 2, "question": "Q?", "possible_answers": ["a"], "passages": [NOISE]}]
    ds = read_popqa(jsonl_file(rows))
    assert [e.gold_titles for e in ds.examples] == [("Henry Feilden (politician)",), ("Noise",)]


def test_without_passages_gives_an_empty_corpus(jsonl_file) -> None:
    rows = [
        {
            "id": 4382392,
            "question": "What is X's occupation?",
            "possible_answers": ["politician"],
            "s_pop": 5,
        },
        {"id": 17, "question": "Where was Y born?", "possible_answers": '["Oslo"]', "passages": None},
    ]
    ds = load_dataset(f"popqa:{jsonl_file(rows)}")
    assert ds.corpus == []
    assert ds.has_context_labels is False
    assert ds.meta["needs_corpus"] is True
    assert [ex.id for ex in ds.examples] == ["4382392", "17"]
    assert ds.examples[1].answers == ("Oslo",)


def test_attach_corpus_from_jsonl(jsonl_file, data_error) -> None:
    questions = jsonl_file([{"id": 1, "question": "Q?", "possible_answers": ["a"]}], name="q.jsonl")
    corpus = jsonl_file(
        [
            {"id": "c1", "title": "T1", "text": "one"},
            {"id": "c2", "text": "two"},
            {"id": "c3", "title": "T3", "text": "  "},
        ],
        name="corpus.jsonl",
    )
    ds = load_dataset(f"popqa:{questions}", corpus=corpus)
    assert ds.corpus == [Passage("c1", "T1", "one"), Passage("c2", "", "two")]
    assert ds.has_context_labels is False
    assert ds.meta["attached_corpus"] == str(corpus)
    assert ds.meta["attached_passages"] == 2
    assert ds.meta["attached_dropped_empty"] == 1
    assert ds.meta["needs_corpus"] is False
    assert ds.meta["passages"] == 2

    # A dataset with its own corpus gains the extra passages; an identical passage is kept once.
    own = read_popqa(jsonl_file(WITH_PASSAGES, name="own.jsonl"))
    same = p(RANKIN)
    extra = jsonl_file(
        [{"id": same.id, "title": same.title, "text": same.text}, {"id": "z", "text": "zzz"}],
        name="extra.jsonl",
    )
    merged = attach_corpus(own, extra)
    assert len(merged.corpus) == len(own.corpus) + 1
    assert merged.has_context_labels is True
    assert merged.meta["attached_duplicates_merged"] == 1
    assert len(own.corpus) == 4  # the original is not modified

    clash = jsonl_file([{"id": "z", "text": "a"}, {"id": same.id, "text": "other"}], name="clash.jsonl")
    with pytest.raises(DataError) as exc:
        attach_corpus(own, clash)
    data_error(exc.value, f"{clash}:2:", "already in the dataset with another text")

    dup = jsonl_file([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], name="dup.jsonl")
    with pytest.raises(DataError) as exc:
        attach_corpus(own, dup)
    data_error(exc.value, f"{dup}:2:", "duplicate passage id 'a'")

    empty = jsonl_file([{"id": "a", "text": ""}], name="empty.jsonl")
    with pytest.raises(DataError) as exc:
        load_dataset(f"popqa:{questions}", corpus=empty)
    data_error(exc.value, str(empty), "empty corpus")

    with pytest.raises(DataError) as exc:
        load_dataset(f"popqa:{questions}", corpus=empty.parent / "missing.jsonl")
    data_error(exc.value, "missing.jsonl", "no such corpus file")


def _row(**changes: object) -> dict:
    row = json.loads(json.dumps(WITH_PASSAGES[0]))
    for key, value in changes.items():
        if value is ...:
            del row[key]
        else:
            row[key] = value
    return row


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        (_row(id=...), "missing field 'id' (expected a PopQA record)"),
        (_row(id=True), "field 'id' must be a string or an integer, got a boolean"),
        (_row(question=...), "missing field 'question'"),
        (_row(question=""), "field 'question' is empty"),
        (_row(possible_answers=...), "missing field 'possible_answers' or 'answers'"),
        (_row(possible_answers="not json"), "is a string but not a JSON list"),
        (_row(possible_answers='{"a": 1}'), "field 'possible_answers' must be a list, got a object"),
        (_row(possible_answers=["", " "]), "field 'possible_answers' has no non-empty answer"),
        (_row(possible_answers=["a", 3]), "field 'possible_answers' item 1 must be a string"),
        (_row(passages={"title": "x"}), "field 'passages' must be a list"),
        (_row(passages=["x"]), "field 'passages[0]' must be an object"),
        (_row(passages=[{"title": "x"}]), "missing field 'text' in passages[0]"),
        (_row(passages=[{"title": "x", "text": 5}]), "field 'passages[0].text' must be a string"),
        (
            _row(passages=[{"text": "x", "is_supporting": "yes"}]),
            "'passages[0].is_supporting' must be true or false",
        ),
        (_row(passages=[{"title": "x", "text": "a\u0000"}]), "'passages[0].text' contains a NUL character"),
        (_row(question="Who\ud800?"), "field 'question' contains an unpaired surrogate"),
    ],
)
def test_malformed_rows(jsonl_file, data_error, row: dict, fragment: str) -> None:
    path = jsonl_file([WITH_PASSAGES[1], row])
    with pytest.raises(DataError) as exc:
        load_dataset(f"popqa:{path}")
    data_error(exc.value, f"{path}:2:", fragment)


def test_empty_passage_dropped_and_gold_reference_removed(jsonl_file) -> None:
    row = _row(passages=[{"title": "Blank", "text": " ", "is_supporting": True}, RANKIN])
    ds = read_popqa(jsonl_file([row]))
    assert ds.corpus == [p(RANKIN)]
    assert ds.examples[0].gold_passage_ids == (p(RANKIN).id,)
    assert ds.meta["passages_dropped_empty"] == 1
    assert ds.meta["gold_ids_dropped_empty"] == 1


def test_duplicate_ids_across_int_and_string(jsonl_file, data_error) -> None:
    path = jsonl_file([_row(id=7), _row(id="7")])
    with pytest.raises(DataError) as exc:
        read_popqa(path)
    data_error(exc.value, f"{path}:2:", "duplicate question id '7'")
