"""The docs: chunker against LangChain's own RecursiveCharacterTextSplitter output (MedRAG's 1000 / 200)."""

from __future__ import annotations

import itertools
import re

import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag_jobs.corpus.chunking import chunk_document, make_splitter
from rag_jobs.errors import ConfigError

TEXT = ("Paris is the capital of France.\n\n" + "It has many museums, bridges and  parks.  " * 60 + "\n"
        + "The Seine flows through it.\n\n\n" + "Long " * 400)


def test_chunks_equal_langchains_with_white_space_collapsed():
    ours = chunk_document(make_splitter(), "42", "Paris", TEXT)
    theirs = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_text(TEXT.strip())
    assert [p.text for p in ours] == [re.sub(r"\s+", " ", c).strip() for c in theirs]
    assert [p.id for p in ours] == [f"42_{j}" for j in range(len(theirs))]
    assert len(ours) > 3 and all(len(p.text) <= 1000 for p in ours)


def test_consecutive_chunks_overlap():
    ours = chunk_document(make_splitter(300, 100), "d", "T", "alpha beta gamma delta " * 60)
    assert all(a.text[-20:].split()[-1] in b.text[:150] for a, b in itertools.pairwise(ours))


def test_overlap_must_be_smaller_than_size():
    with pytest.raises(ConfigError, match="--chunk-size 100 / --chunk-overlap 100"):
        make_splitter(100, 100)
