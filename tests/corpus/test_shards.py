"""The committed corpus as Arrow IPC shards: fixed row counts, boundaries, slices that read only their files."""

from __future__ import annotations

import json

import pytest

from rag_jobs.corpus.shards import CORPUS_META, CorpusShards, ShardWriter
from rag_jobs.data.records import Passage
from rag_jobs.errors import IntegrityError


def _write(tmp_path, n, shard_rows):
    w = ShardWriter(tmp_path, shard_rows)
    for i in range(n):
        w.add(Passage(f"p{i}", f"T{i % 7}", f"text {i}"))
    return w.close(source="test")


@pytest.mark.parametrize("n, shard_rows, sizes", [(10, 4, [4, 4, 2]), (8, 4, [4, 4]), (3, 10, [3]),
                                                  (20000, 9000, [9000, 9000, 2000])])
def test_shard_boundaries(tmp_path, n, shard_rows, sizes):
    desc = _write(tmp_path, n, shard_rows)
    assert [f["rows"] for f in desc["files"]] == sizes and desc["rows"] == n
    corpus = CorpusShards(tmp_path)
    assert len(corpus) == n
    assert [p.id for p in corpus.passages()] == [f"p{i}" for i in range(n)]


def test_slices_across_file_boundaries(tmp_path):
    _write(tmp_path, 10, 4)
    corpus = CorpusShards(tmp_path)
    for lo, hi in [(0, 4), (3, 5), (4, 8), (7, 10), (2, 2), (9, 50)]:
        assert [p.id for p in corpus.passages(lo, hi)] == [f"p{i}" for i in range(lo, min(hi, 10))]


def test_a_slice_opens_only_its_files(tmp_path, monkeypatch):
    _write(tmp_path, 10, 4)
    corpus = CorpusShards(tmp_path)
    opened = []
    real = corpus._table
    monkeypatch.setattr(corpus, "_table", lambda i: opened.append(i) or real(i))
    corpus.passages(5, 7)
    assert opened == [1]


def test_titles_select_rows_with_normalised_titles(tmp_path):
    w = ShardWriter(tmp_path, 2)
    for p in [Passage("a", "Caf\u00e9", "x"), Passage("b", "Cafe\u0301", "y"), Passage("c", "Other", "z"),
              Passage("d", " Café ", "w")]:
        w.add(p)
    w.close()
    assert sorted(p.id for p in CorpusShards(tmp_path).with_titles(["Café"])) == ["a", "b", "d"]


def test_a_file_that_disagrees_with_the_manifest_is_refused(tmp_path):
    _write(tmp_path, 10, 4)
    meta = json.loads((tmp_path / CORPUS_META).read_text())
    meta["files"][0]["rows"] = 5
    (tmp_path / CORPUS_META).write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="4 rows"):
        CorpusShards(tmp_path).passages()
