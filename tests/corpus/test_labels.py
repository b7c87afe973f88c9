"""Context labels against an external corpus: every rule on hand-made cases (rag_jobs.corpus.labels)."""

from __future__ import annotations

import math

from rag_jobs.core.metrics import group_recall_at_k, recall_at_k
from rag_jobs.corpus.labels import derive_labels
from rag_jobs.corpus.shards import CorpusShards, ShardWriter
from rag_jobs.data.records import Example, Passage

CHUNKS = [
    Passage("Paris_0", "Paris", "Paris is the capital of France. It is large."),
    Passage("Paris_1", "Paris", "The Seine flows   through Paris.\nIt has bridges."),
    Passage("Paris_2", "Paris", "Paris hosted the Olympics."),
    Passage("Lyon_0", "Lyon", "Lyon is a city in France."),
    Passage("Lyon_1", "Lyon", "Lyon is known for food."),
    Passage("Henry_0", "Henry Feilden (Conservative politician)", "He was a politician and landowner."),
    Passage("Henry_1", "Henry Feilden (Conservative politician)", "He was born in 1818."),
]


def _corpus(tmp_path) -> CorpusShards:
    w = ShardWriter(tmp_path, 3)
    for p in CHUNKS:
        w.add(p)
    w.close()
    return CorpusShards(tmp_path)


def test_hotpotqa_sentence_match_title_fallback_and_unmatched(tmp_path):
    examples = [
        # sentence found in a chunk, white space and newlines normalised
        Example("q1", "?", ("x",), gold_titles=("Paris",), support=(("Paris", "The Seine flows through Paris."),)),
        # the sentence is in no chunk of the title (cut by the chunking): every Lyon chunk counts for recall
        Example("q2", "?", ("x",), gold_titles=("Lyon",), support=(("Lyon", "Lyon is old and also a city."),)),
        # a title the corpus lacks
        Example("q3", "?", ("x",), gold_titles=("Atlantis",), support=(("Atlantis", "It sank."),)),
        # two titles: one sentence-matched, one title-only
        Example("q4", "?", ("x",), gold_titles=("Paris", "Lyon"),
                support=(("Paris", "Paris hosted the Olympics."), ("Lyon", "Not there."))),
    ]
    out, counts = derive_labels(examples, _corpus(tmp_path), "hotpotqa")
    q1, q2, q3, q4 = out
    assert q1.gold_passage_ids == ("Paris_1",) and q1.gold_groups == (("Paris_1",),)
    assert q2.gold_passage_ids == () and q2.gold_groups == (("Lyon_0", "Lyon_1"),)  # title only: no positive
    assert q3.gold_passage_ids == () and q3.gold_groups == () and not q3.labelled
    assert q4.gold_passage_ids == ("Paris_2",) and q4.gold_groups == (("Paris_2",), ("Lyon_0", "Lyon_1"))
    assert counts == {"questions_matched_by_sentence": 2, "questions_matched_by_title_only": 1,
                      "questions_unmatched": 1, "gold_titles": 5, "gold_titles_not_in_corpus": 1}


def test_a_sentence_only_matches_chunks_of_its_own_title(tmp_path):
    ex = Example("q", "?", ("x",), gold_titles=("Lyon",), support=(("Paris", "Paris hosted the Olympics."),))
    (out,), _ = derive_labels([ex], _corpus(tmp_path), "hotpotqa")
    assert out.gold_passage_ids == () and out.gold_groups == (("Lyon_0", "Lyon_1"),)


def test_popqa_subject_page_counts_for_recall_answer_chunks_are_positives(tmp_path):
    ex = Example("p", "What is Henry Feilden's occupation?", ("politician", "pol"),
                 gold_titles=("Henry Feilden (Conservative politician)",))
    (out,), counts = derive_labels([ex], _corpus(tmp_path), "popqa")
    assert out.gold_groups == (("Henry_0", "Henry_1"),)
    assert out.gold_passage_ids == ("Henry_0",)  # 'pol' alone is not a word of chunk 1
    assert counts["questions_matched_by_answer"] == 1


def test_recall_counts_titles_found_so_chunking_keeps_the_denominator():
    groups = (("Paris_2",), ("Lyon_0", "Lyon_1"))
    assert group_recall_at_k(["Lyon_1", "z"], groups, 5) == 0.5
    assert group_recall_at_k(["Lyon_1", "Lyon_0", "Paris_2"], groups, 5) == 1.0
    assert group_recall_at_k(["Paris_2"], groups, 5) == 0.5
    assert math.isnan(group_recall_at_k(["a"], (), 5))
    # one passage per group is the dataset's own paragraphs: unchanged
    assert group_recall_at_k(["a", "b", "c"], (("a",), ("d",)), 2) == recall_at_k(["a", "b", "c"], ["a", "d"], 2)
