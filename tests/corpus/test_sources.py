"""Every corpus format read into passages, with bad rows named by file and line (rag_jobs.corpus.sources)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from rag_jobs.corpus.sources import check_corpus_spec, iter_source, parse_corpus_spec, source_digest
from rag_jobs.errors import DataError


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(spec, size=1000, overlap=200):
    return [p for _, p in iter_source(spec, chunk_size=size, chunk_overlap=overlap)]


def test_medrag_folder_of_many_files_is_read_in_sorted_order(tmp_path):
    _write_jsonl(tmp_path / "chunk" / "wiki_b.jsonl",
                 [{"id": "B_0", "title": "B", "content": "bee", "contents": "B. bee"}])
    _write_jsonl(tmp_path / "chunk" / "wiki_a.jsonl", [{"id": "A_0", "title": "A", "content": "ay"},
                                                       {"id": "A_1", "title": "A", "content": "ay two"}])
    got = _read(f"medrag:{tmp_path}")
    assert [(p.id, p.title, p.text) for p in got] == [("A_0", "A", "ay"), ("A_1", "A", "ay two"), ("B_0", "B", "bee")]


def test_medrag_without_a_chunk_folder_reads_the_folder_itself(tmp_path):
    _write_jsonl(tmp_path / "x.jsonl", [{"id": 7, "title": "T", "content": "text"}])
    assert [(p.id, p.text) for p in _read(f"medrag:{tmp_path}")] == [("7", "text")]


def test_jsonl_file_and_folder(tmp_path):
    f = _write_jsonl(tmp_path / "c" / "p.jsonl", [{"id": "p1", "title": "T", "text": "hello"}])
    assert [p.id for p in _read(f"jsonl:{f}")] == ["p1"]
    assert [p.id for p in _read(f"jsonl:{f.parent}")] == ["p1"]


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a", "b"], "title": ["T", "U"], "text": ["one", "two"]}), tmp_path / "c.parquet")
    assert [(p.id, p.title, p.text) for p in _read(f"parquet:{tmp_path / 'c.parquet'}")] == [("a", "T", "one"),
                                                                                          ("b", "U", "two")]


def test_parquet_missing_column_is_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a"]}), tmp_path / "c.parquet")
    with pytest.raises(DataError, match=r"c.parquet: missing column 'content'"):
        _read(f"parquet:{tmp_path / 'c.parquet'}")


def test_docs_are_chunked_with_ids_per_document(tmp_path):
    text = " ".join(f"word{i}" for i in range(120))  # ~ 800 characters
    f = _write_jsonl(tmp_path / "docs.jsonl", [{"id": "d1", "title": "Doc", "text": text}])
    got = _read(f"docs:{f}", size=300, overlap=60)
    assert [p.id for p in got] == [f"d1_{j}" for j in range(len(got))] and len(got) >= 3
    assert all(p.title == "Doc" and len(p.text) <= 300 for p in got)


def test_bad_row_names_file_and_line(tmp_path):
    _write_jsonl(tmp_path / "chunk" / "w.jsonl", [{"id": "a", "title": "T", "content": "x"}, {"title": "T"}])
    with pytest.raises(DataError, match=r"w.jsonl:2: missing field 'id'"):
        _read(f"medrag:{tmp_path}")
    (tmp_path / "chunk" / "w.jsonl").write_text('{"id": "a", "content": 3}\n')
    with pytest.raises(DataError, match=r"w.jsonl:1: field 'content' must be a string"):
        _read(f"medrag:{tmp_path}")


@pytest.mark.parametrize("spec, message", [
    ("", "empty corpus spec"),
    ("wiki:/x", "unknown corpus spec 'wiki:/x'"),
    ("medrag:", "missing the path"),
    ("hf:a@", "expected hf:NAME"),
])
def test_bad_specs(spec, message):
    with pytest.raises(DataError, match=message):
        parse_corpus_spec(spec)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        check_corpus_spec(f"jsonl:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match=r"holds no \.jsonl files"):
        check_corpus_spec(f"medrag:{tmp_path}")


def test_digest_follows_content_not_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    a = _write_jsonl(tmp_path / "a" / "p.jsonl", [{"id": "p1", "title": "T", "text": "hello"}])
    b = _write_jsonl(tmp_path / "b" / "p.jsonl", [{"id": "p1", "title": "T", "text": "hello"}])
    assert source_digest(f"jsonl:{a.parent}") == source_digest(f"jsonl:{b.parent}")
    _write_jsonl(b, [{"id": "p1", "title": "T", "text": "changed"}])
    assert source_digest(f"jsonl:{a.parent}") != source_digest(f"jsonl:{b.parent}")
    assert source_digest("hf:MedRAG/wikipedia") is None


def test_hub_rows_stream_through_the_same_converter(monkeypatch):
    """The hub path: datasets.load_dataset(name, config, split=..., streaming=True) rows in MedRAG's layout."""
    calls = []

    def load_dataset(name, config, split, streaming):
        calls.append((name, config, split, streaming))
        return iter([{"id": "Anarchism_0", "title": "Anarchism", "content": "Anarchism is ...",
                      "contents": "Anarchism. Anarchism is ..."}, {"id": "x", "title": "T", "content": 5}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    rows = iter_source("hf:MedRAG/wikipedia", chunk_size=1000, chunk_overlap=200)
    first = next(rows)[1]
    assert (first.id, first.title, first.text) == ("Anarchism_0", "Anarchism", "Anarchism is ...")
    with pytest.raises(DataError, match=r"hf:MedRAG/wikipedia row 1: field 'content' must be a string"):
        next(rows)
    assert calls == [("MedRAG/wikipedia", None, "train", True)]


def test_the_digest_cache_is_bounded_and_survives_a_broken_file(tmp_path, monkeypatch):
    import rag_jobs.artifacts.digests as digests

    monkeypatch.setenv("RAG_JOBS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(digests, "CACHE_ENTRIES", 3)
    cache = tmp_path / "cache" / "file-digests.json"
    cache.parent.mkdir(parents=True)
    cache.write_text("[1, 2]")  # not what it should hold: ignored and rewritten
    digests = [source_digest(f"jsonl:{_write_jsonl(tmp_path / f'c{i}.jsonl', [{'id': 'p', 'text': str(i)}])}")
               for i in range(5)]
    assert len(set(digests)) == 5
    assert len(json.loads(cache.read_text())) == 3
