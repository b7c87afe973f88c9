"""HotPotQA reader: both layouts, both file shapes, hand-computed records, malformed input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rag_jobs.data import Example, Passage, load_dataset, passage_id, read_hotpotqa
from rag_jobs.errors import DataError


def pid(title: str, text: str, slug: str) -> str:
    """The documented id: slug of the title, then 12 hex digits of sha1(title + US + text)."""
    digest = hashlib.sha1((title + "\x1f" + text).encode()).hexdigest()
    return f"{slug}-{digest[:12]}"


ALPHA_TEXT = "Alpha was built in 1900. It is old."
BETA_TEXT = "Beta was built in 1950. It is newer."
ALPHA = Passage(pid("Alpha", ALPHA_TEXT, "alpha"), "Alpha", ALPHA_TEXT)
BETA = Passage(pid("Beta", BETA_TEXT, "beta"), "Beta", BETA_TEXT)
GAMMA_1 = Passage(pid("Gamma", "Gamma is a letter.", "gamma"), "Gamma", "Gamma is a letter.")
GAMMA_2 = Passage(pid("Gamma", "Gamma is a ray.", "gamma"), "Gamma", "Gamma is a ray.")
DELTA = Passage(pid("Delta", "Delta is a river mouth.", "delta"), "Delta", "Delta is a river mouth.")

ORIGINAL_Q1 = {
    "_id": "q1",
    "answer": "Alpha",
    "question": "Which is older, Alpha or Beta?",
    "supporting_facts": [["Alpha", 0], ["Beta", 0], ["Alpha", 1]],
    "context": [
        ["Gamma", ["Gamma is a letter."]],
        ["Alpha", ["Alpha was built in 1900.", " It is old."]],
        ["Beta", ["Beta was built in 1950.", " It is newer."]],
    ],
    "type": "comparison",
    "level": "hard",
}
ORIGINAL_Q2 = {
    "_id": "q2",
    "answer": "1950",
    "question": "When was Beta built?",
    "supporting_facts": [["Beta", 0]],
    "context": [
        ["Beta", ["Beta was built in 1950.", " It is newer."]],
        ["Gamma", ["Gamma is a ray.", "  "]],
    ],
}
HF_Q3 = {
    "id": "q3",
    "question": "Where does the Delta end?",
    "answer": "the sea",
    "type": "bridge",
    "level": "easy",
    "supporting_facts": {"title": ["Delta", "Alpha"], "sent_id": [0, 0]},
    "context": {
        "title": ["Alpha", "Delta"],
        "sentences": [["Alpha was built in 1900.", " It is old."], ["Delta is a river ", "mouth. "]],
    },
}

# The supporting titles and sentences are kept: the labels against an external corpus are derived from them.
EXPECTED_EXAMPLES = [
    Example("q1", "Which is older, Alpha or Beta?", ("Alpha",), (ALPHA.id, BETA.id), gold_titles=("Alpha", "Beta"),
            support=(("Alpha", "Alpha was built in 1900."), ("Beta", "Beta was built in 1950."),
                     ("Alpha", "It is old."))),
    Example("q2", "When was Beta built?", ("1950",), (BETA.id,), gold_titles=("Beta",),
            support=(("Beta", "Beta was built in 1950."),)),
    Example("q3", "Where does the Delta end?", ("the sea",), (DELTA.id, ALPHA.id), gold_titles=("Delta", "Alpha"),
            support=(("Delta", "Delta is a river"), ("Alpha", "Alpha was built in 1900."))),
]
EXPECTED_CORPUS = [GAMMA_1, ALPHA, BETA, GAMMA_2, DELTA]


def test_passage_id_is_pinned_and_readable() -> None:
    assert passage_id("Alpha", ALPHA_TEXT) == "alpha-ba8d1972c4b3"
    assert passage_id("Alpha", ALPHA_TEXT) == ALPHA.id
    assert passage_id("Café Zürich (bar)", "x").startswith("cafe-zurich-bar-")
    assert passage_id("東京", "x").startswith("p-")
    assert passage_id("Gamma", "one") != passage_id("Gamma", "two")


def test_reads_original_and_hf_layouts_mixed_in_jsonl(jsonl_file) -> None:
    path = jsonl_file([ORIGINAL_Q1, ORIGINAL_Q2, HF_Q3])
    ds = read_hotpotqa(path)
    assert ds.name == "hotpotqa"
    assert ds.examples == EXPECTED_EXAMPLES
    assert ds.corpus == EXPECTED_CORPUS
    assert ds.has_context_labels is True
    assert ds.meta["source"] == str(path)
    assert ds.meta["records"] == 3
    assert ds.meta["layout_original"] == 2
    assert ds.meta["layout_hf"] == 1
    # Beta (q2) and Alpha (q3) were seen before: merged, not duplicated.
    assert ds.meta["passage_duplicates_merged"] == 2
    assert ds.meta["passages"] == 5
    assert ds.meta["examples"] == 3


def test_reads_a_json_list_file_the_same(tmp_path: Path) -> None:
    path = tmp_path / "hotpot_dev_distractor_v1.json"
    path.write_text(json.dumps([ORIGINAL_Q1, ORIGINAL_Q2, HF_Q3], indent=2), encoding="utf-8")
    ds = read_hotpotqa(path)
    assert ds.examples == EXPECTED_EXAMPLES
    assert ds.corpus == EXPECTED_CORPUS


def test_json_list_errors_name_the_line_of_the_record(tmp_path: Path, data_error) -> None:
    bad = dict(ORIGINAL_Q2)
    del bad["question"]
    path = tmp_path / "list.json"
    path.write_text(json.dumps([ORIGINAL_Q1, bad], indent=1), encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    line = text[: text.index('"_id": "q2"')].count("\n")  # the record's '{' is on the line before
    with pytest.raises(DataError) as exc:
        read_hotpotqa(path)
    data_error(exc.value, f"{path}:{line}:", "missing field 'question'")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[{"_id": "a"}', ":1: missing field 'question'"),
        ("[] trailing", "extra data after the list"),
        ("[\n" + json.dumps(ORIGINAL_Q1) + "\n x]", ":3: bad JSON: expected ',' or ']'"),
        ("[" + json.dumps(ORIGINAL_Q1), ":1: bad JSON: the list is not closed"),
        ("[\n" + json.dumps(ORIGINAL_Q1) + ",\n{nope}]", ":3: bad JSON: Expecting property name"),
        ("[1, 2]", "expected a list of JSON objects"),
    ],
)
def test_malformed_json_list(tmp_path: Path, data_error, text: str, fragment: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as exc:
        read_hotpotqa(path)
    data_error(exc.value, str(path), fragment)


def test_empty_paragraph_is_dropped_and_counted(jsonl_file) -> None:
    record = {
        "_id": "e1",
        "question": "Q?",
        "answer": "A",
        "supporting_facts": [["Full", 0]],
        "context": [["Empty", ["  ", ""]], ["Full", ["Some text."]]],
    }
    ds = read_hotpotqa(jsonl_file([record]))
    assert [p.title for p in ds.corpus] == ["Full"]
    assert ds.meta["passages_dropped_empty"] == 1


def test_gold_reference_to_an_empty_paragraph_is_dropped(jsonl_file) -> None:
    record = {
        "_id": "e1",
        "question": "Q?",
        "answer": "A",
        "supporting_facts": [["Empty", 0], ["Full", 0]],
        "context": [["Empty", [" "]], ["Full", ["Some text."]]],
    }
    ds = read_hotpotqa(jsonl_file([record]))
    assert ds.examples[0].gold_passage_ids == (passage_id("Full", "Some text."),)
    assert ds.meta["gold_ids_dropped_empty"] == 1


def _with(**changes: object) -> dict:
    record = json.loads(json.dumps(ORIGINAL_Q2))
    for key, value in changes.items():
        if value is ...:
            del record[key]
        else:
            record[key] = value
    return record


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (_with(question=...), "missing field 'question'"),
        (_with(answer=...), "missing field 'answer'"),
        (_with(_id=...), "missing field '_id' or 'id'"),
        (_with(context=...), "missing field 'context' (expected a HotPotQA record)"),
        (_with(question="   "), "field 'question' is empty"),
        (_with(answer=1950), "field 'answer' must be a string, got a number"),
        (_with(_id=["x"]), "field '_id' must be a string or an integer"),
        (_with(context="Beta"), "field 'context' must be a list or an object"),
        (_with(context=[["Beta"]]), "'context' item 0 must be a [title, sentences] pair"),
        (_with(context=[["Beta", "one string"]]), "field 'context[0][1]' must be a list"),
        (_with(context=[["Beta", [1]]]), "field 'context[0][1]' item 0 must be a string"),
        (_with(supporting_facts=[["Nope", 0]]), "supporting fact title 'Nope' is not a title in the context"),
        (_with(supporting_facts=[["Beta", -1]]), "must hold non-negative integers"),
        (_with(supporting_facts="Beta"), "field 'supporting_facts' must be a list or an object"),
        (_with(question="What\u0000?"), "field 'question' contains a NUL character"),
        (_with(context=[["Beta", ["a\u0000b"]]]), "field 'context' contains a NUL character"),
    ],
)
def test_malformed_records(jsonl_file, data_error, record: dict, fragment: str) -> None:
    path = jsonl_file([ORIGINAL_Q1, record])
    with pytest.raises(DataError) as exc:
        load_dataset(f"hotpotqa:{path}")
    data_error(exc.value, f"{path}:2:", fragment)


@pytest.mark.parametrize(
    ("context", "facts", "fragment"),
    [
        ({"title": ["A"], "sentences": []}, {"title": [], "sent_id": []}, "1 titles but 0 sentence lists"),
        (
            {"title": ["A"], "sentences": [["x"]]},
            {"title": ["A"], "sent_id": []},
            "1 titles but 0 sentence ids",
        ),
        ({"sentences": [["x"]]}, {"title": [], "sent_id": []}, "missing field 'title' in 'context'"),
        ({"title": ["A"], "sentences": [["x"]]}, {"title": ["A"], "sent_id": ["0"]}, "non-negative integers"),
    ],
)
def test_malformed_hf_layout(jsonl_file, data_error, context: dict, facts: dict, fragment: str) -> None:
    record = {"id": "h", "question": "Q?", "answer": "A", "context": context, "supporting_facts": facts}
    path = jsonl_file([record])
    with pytest.raises(DataError) as exc:
        read_hotpotqa(path)
    data_error(exc.value, f"{path}:1:", fragment)


def test_duplicate_question_ids(jsonl_file, data_error) -> None:
    path = jsonl_file([ORIGINAL_Q1, ORIGINAL_Q2, dict(ORIGINAL_Q2)])
    with pytest.raises(DataError) as exc:
        read_hotpotqa(path)
    data_error(exc.value, f"{path}:3:", "duplicate question id 'q2' (first at", f"{path}:2)")


def test_bad_json_line_and_non_object_line(jsonl_file, data_error) -> None:
    path = jsonl_file([ORIGINAL_Q1, '{"_id": "q2", "question": '])
    with pytest.raises(DataError) as exc:
        read_hotpotqa(path)
    data_error(exc.value, f"{path}:2:", "bad JSON")
    path = jsonl_file([ORIGINAL_Q1, "[1, 2]"], name="list_line.jsonl")
    with pytest.raises(DataError) as exc:
        read_hotpotqa(path)
    data_error(exc.value, f"{path}:2:", "expected a JSON object per line, got a list")


def test_invalid_utf8_names_the_line(tmp_path: Path, data_error) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(ORIGINAL_Q1).encode()
    path.write_bytes(good + b"\n\n" + b'{"_id": "q\xff"}\n')
    with pytest.raises(DataError) as exc:
        read_hotpotqa(path)
    data_error(exc.value, f"{path}:3:", "invalid UTF-8")
    listed = tmp_path / "bad.json"
    listed.write_bytes(b'[\n{"_id": "q\xfe"}\n]')
    with pytest.raises(DataError) as exc:
        read_hotpotqa(listed)
    data_error(exc.value, f"{listed}:2:", "invalid UTF-8")


def test_blank_lines_and_bom_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ORIGINAL_Q1).encode() + b"\n\n  \n")
    assert [ex.id for ex in read_hotpotqa(path).examples] == ["q1"]


def test_empty_file_has_no_questions(jsonl_file, data_error) -> None:
    path = jsonl_file([])
    with pytest.raises(DataError) as exc:
        read_hotpotqa(path)
    data_error(exc.value, str(path), "no questions")


def test_missing_file_and_directory(tmp_path: Path, data_error) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(f"hotpotqa:{tmp_path / 'nope.json'}")
    data_error(exc.value, str(tmp_path / "nope.json"), "no such file")
    with pytest.raises(DataError) as exc:
        load_dataset(f"hotpotqa:{tmp_path}")
    data_error(exc.value, str(tmp_path), "not a file")
