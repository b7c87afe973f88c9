"""The memory-mapped passage store: ids by binary search, float16 vectors, integrity once, a resumable build."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag_jobs.data.records import Passage
from rag_jobs.errors import DataError, IntegrityError
from rag_jobs.index import load_index
from rag_jobs.index.faiss_index import INDEX_FILE, META_FILE, VECTORS_FILE, write_index, write_store
from rag_jobs.index.store import ID_ORDER_FILE, IDS_FILE, MappedPassages


def _unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


IDS = ["b", "a", "Zürich_0", "c" * 40, "12", "é", "a_1", "x y"]


def _index(tmp_path, ids=IDS, **kw):
    passages = [Passage(i, f"title {i}", f"text of {i}") for i in ids]
    vecs = _unit(len(ids))
    write_index(passages, vecs, tmp_path, embedder_name="x", **kw)
    return load_index(tmp_path), passages, vecs


def test_ids_map_to_rows_without_a_dict(tmp_path):
    r, passages, vecs = _index(tmp_path)
    assert isinstance(r.store, MappedPassages)
    assert np.load(tmp_path / IDS_FILE).dtype == np.dtype("S40")  # width = the longest id, in UTF-8 bytes
    assert np.load(tmp_path / ID_ORDER_FILE).tolist() == sorted(range(len(IDS)), key=lambda i: IDS[i].encode())
    shuffled = ["é", "c" * 40, "b", "Zürich_0"]
    assert [p.id for p in r.passages(shuffled)] == shuffled
    assert r.passages(["x y"])[0] == passages[IDS.index("x y")]
    np.testing.assert_array_equal(r.vectors_for(shuffled), vecs[[IDS.index(i) for i in shuffled]])
    assert r.contains(["a", "zz", "c" * 41, "c" * 39, "a_1", ""]) == [True, False, False, False, True, False]
    assert "Zürich_0" in r and "Zurich_0" not in r
    with pytest.raises(KeyError, match="nope"):
        r.passages(["a", "nope"])
    res = r.search(vecs[[3, 5]], k=1)
    assert res.ids == [[IDS[3]], [IDS[5]]]


def test_duplicate_ids_are_refused_with_their_rows(tmp_path):
    from rag_jobs.corpus.shards import CorpusShards, ShardWriter

    w = ShardWriter(tmp_path, shard_rows=3)  # the duplicate sits in another Arrow file
    for i in ["a", "b", "c", "d", "b"]:
        w.add(Passage(i, "", i))
    w.close()
    with pytest.raises(DataError, match=r"duplicate passage ids: 'b' at rows 1 and 4"):
        write_store(CorpusShards(tmp_path), tmp_path / "ix", lambda: iter([_unit(5)]), 8, embedder_name="x")


def test_float16_vectors_halve_the_store_and_read_back_as_float32(tmp_path):
    r32, _, vecs = _index(tmp_path / "f32")
    r16, _, _ = _index(tmp_path / "f16", vectors_dtype="float16")
    assert r16.vectors.dtype == np.float16 and r16.meta["vectors"] == "float16"
    header = (tmp_path / "f32" / VECTORS_FILE).stat().st_size - vecs.nbytes
    assert (tmp_path / "f16" / VECTORS_FILE).stat().st_size - header == vecs.nbytes // 2
    got = r16.vectors_for(IDS)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, vecs.astype(np.float16).astype(np.float32))
    res16, res32 = r16.search(vecs, k=3, with_vectors=True), r32.search(vecs, k=3, with_vectors=True)
    assert res16.ids == res32.ids
    np.testing.assert_allclose(res16.scores, res32.scores, atol=2e-3)  # FAISS holds the stored (rounded) values
    np.testing.assert_allclose(np.einsum("qd,qkd->qk", vecs, res16.vectors), res16.scores, atol=1e-5)


def test_an_old_format_index_is_refused_with_what_to_do(tmp_path):
    _index(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    (tmp_path / META_FILE).write_text(json.dumps({**meta, "format": 1}))
    with pytest.raises(IntegrityError, match=r"format 1.*rebuild it"):
        load_index(tmp_path)


def test_files_are_hashed_once_and_a_truncated_one_is_refused_before_it_is_mapped(tmp_path, monkeypatch):
    import rag_jobs.artifacts.digests as digests

    _index(tmp_path)
    calls = []
    real = digests.hash_file
    monkeypatch.setattr(digests, "hash_file", lambda p: calls.append(p.name) or real(p))
    load_index(tmp_path)
    load_index(tmp_path)
    assert calls == []  # written and hashed by write_index: trusted while unchanged
    path = tmp_path / VECTORS_FILE
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(IntegrityError, match=r"vectors.npy has \d+ bytes, \d+ recorded \(truncated"):
        load_index(tmp_path)
    assert calls == []  # refused on its size alone


def test_a_rewritten_file_of_the_same_size_is_hashed_again_and_refused(tmp_path):
    _index(tmp_path)
    path = tmp_path / IDS_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.unlink()  # a new inode: not the file that was verified
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match its recorded sha256"):
        load_index(tmp_path)


def test_an_index_referencing_its_corpus_needs_it(tmp_path):
    from rag_jobs.corpus.shards import CorpusShards, ShardWriter

    w = ShardWriter(tmp_path / "corpus", shard_rows=2)
    (tmp_path / "corpus").mkdir()
    for i in "abcde":
        w.add(Passage(i, i.upper(), f"text {i}"))
    w.close()
    corpus = CorpusShards(tmp_path / "corpus")
    write_store(corpus, tmp_path / "ix", lambda: iter([_unit(5)]), 8, embedder_name="x")
    assert not list((tmp_path / "ix").glob("*.arrow"))  # texts are referenced, not copied
    with pytest.raises(DataError, match="give that corpus folder too"):
        load_index(tmp_path / "ix")
    r = load_index(tmp_path / "ix", tmp_path / "corpus")
    assert [p.title for p in r.passages(["e", "a", "c"])] == ["E", "A", "C"]
    (tmp_path / "corpus" / "passages-00001.arrow").write_bytes(b"")
    with pytest.raises(IntegrityError, match=r"corpus file .*passages-00001.arrow has 0 bytes"):
        load_index(tmp_path / "ix", tmp_path / "corpus")


def test_a_killed_build_resumes_from_its_checkpoint_to_the_same_index(tmp_path, monkeypatch):
    import faiss

    import rag_jobs.index.faiss_index as fi
    from rag_jobs.corpus.shards import CorpusShards, ShardWriter

    monkeypatch.setattr(fi, "ADD_CHUNK", 100)
    (tmp_path / "corpus").mkdir()
    w = ShardWriter(tmp_path / "corpus", shard_rows=1000)
    n = 2500
    for i in range(n):
        w.add(Passage(f"p{i}", "", str(i)))
    w.close()
    corpus, vecs = CorpusShards(tmp_path / "corpus"), _unit(n)
    kw = {"embedder_name": "x", "factory": "IVF8,PQ4", "seed": 3}
    write_store(corpus, tmp_path / "whole", lambda: iter([vecs]), 8, **kw)

    saved = []

    class Killed(Exception):
        pass

    def save_then_die(index, rows):
        saved.append((faiss.serialize_index(index), rows))
        if rows >= 1000:
            raise Killed

    monkeypatch.setattr(fi, "CHECKPOINT_ROWS", 1000)
    with pytest.raises(Killed):
        write_store(corpus, tmp_path / "resumed", lambda: iter([vecs]), 8, on_added=save_then_die, **kw)
    assert [rows for _, rows in saved] == [0, 1000]  # trained, then the first 1,000 rows
    index = faiss.deserialize_index(saved[-1][0])
    write_store(corpus, tmp_path / "resumed", lambda: iter([vecs]), 8, index=index, added=1000, **kw)
    assert (tmp_path / "resumed" / INDEX_FILE).read_bytes() == (tmp_path / "whole" / INDEX_FILE).read_bytes()
