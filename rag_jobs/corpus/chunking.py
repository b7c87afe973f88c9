"""Whole documents cut into passages as MedRAG cut Wikipedia: LangChain's RecursiveCharacterTextSplitter with
chunk_size=1000 and chunk_overlap=200 (characters), white space collapsed in each chunk, ids `<doc id>_<j>`."""

from __future__ import annotations

import re

from rag_jobs.data.records import Passage
from rag_jobs.errors import ConfigError

MEDRAG_CHUNK_SIZE = 1000
MEDRAG_CHUNK_OVERLAP = 200
_WS = re.compile(r"\s+")


def make_splitter(chunk_size: int = MEDRAG_CHUNK_SIZE, chunk_overlap: int = MEDRAG_CHUNK_OVERLAP):
    """The LangChain splitter MedRAG used (imported here only: the `docs:` corpus format needs it)."""
    if chunk_size <= 0 or chunk_overlap < 0 or chunk_overlap >= chunk_size:
        raise ConfigError(f"--chunk-size {chunk_size} / --chunk-overlap {chunk_overlap}: the overlap must be "
                          ">= 0 and smaller than the chunk size")
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def chunk_document(splitter, doc_id: str, title: str, text: str) -> list[Passage]:
    """A document's passages: the splitter's chunks of its text, white space collapsed, empty chunks left out."""
    chunks = (_WS.sub(" ", c).strip() for c in splitter.split_text(text.strip()))
    return [Passage(f"{doc_id}_{j}", title, c) for j, c in enumerate(c for c in chunks if c)]
