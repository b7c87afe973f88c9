import numpy as np
import pytest
from tiny_models import LengthEmbedder

from rag_jobs.data.records import Passage
from rag_jobs.errors import ConfigError, DataError, IntegrityError
from rag_jobs.index import build_index, encode_texts, load_index
from rag_jobs.index.faiss_index import INDEX_FILE, write_index
from rag_jobs.models import load_embedder

PASSAGES = [
    Passage("p1", "", "a b c"),  # (3,0,0,0)
    Passage("p2", "", "aa bb"),  # (0,2,0,0)
    Passage("p3", "", "aaaa bbbbb"),  # (0,0,0,2)
    Passage("p4", "", "a bb"),  # (1,1,0,0)
]


def test_encode_keeps_input_order():
    vecs = encode_texts(LengthEmbedder(), [p.text for p in PASSAGES], batch_size=2)
    np.testing.assert_allclose(vecs[0], [1, 0, 0, 0])
    np.testing.assert_allclose(vecs[3], [2**-0.5, 2**-0.5, 0, 0], rtol=1e-6)


def test_build_search_and_vectors(tmp_path):
    meta = build_index(PASSAGES, LengthEmbedder(), tmp_path, embedder_name="length", batch_size=3)
    assert meta["size"] == 4 and meta["dim"] == 4
    r = load_index(tmp_path)
    res = r.search(np.array([[1, 0.1, 0, 0]], dtype=np.float32), k=2, with_vectors=True)
    assert res.ids == [["p1", "p4"]]
    assert res.vectors.shape == (1, 2, 4)
    np.testing.assert_allclose(res.vectors[0, 0], [1, 0, 0, 0])
    assert r.passages(["p3"])[0].text == "aaaa bbbbb"
    with pytest.raises(ConfigError):
        r.search(np.ones((1, 5), dtype=np.float32), k=1)
    with pytest.raises(ConfigError):
        r.search(np.ones((1, 4), dtype=np.float32), k=0)


def test_a_flat_index_is_exact_cosine_top_k_hand_computed(tmp_path):
    passages = [Passage("x", "", "x"), Passage("y", "", "y"), Passage("xy", "", "xy")]
    vectors = np.array([[1, 0], [0, 1], [2**-0.5, 2**-0.5]], dtype=np.float32)  # unit vectors, as encoded
    write_index(passages, vectors, tmp_path, embedder_name="x")
    res = load_index(tmp_path).search(np.array([[2, 0], [0, 3]], dtype=np.float32), k=2)  # queries need no norm
    assert res.ids == [["x", "xy"], ["y", "xy"]]
    np.testing.assert_allclose(res.scores, [[1, 2**-0.5], [1, 2**-0.5]], rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_query_vectors_are_refused(tmp_path, bad):
    build_index(PASSAGES, LengthEmbedder(), tmp_path, embedder_name="length")
    r = load_index(tmp_path)
    queries = np.ones((3, 4), dtype=np.float32)
    queries[1, 2] = bad
    with pytest.raises(ConfigError, match="row 1"):
        r.search(queries, k=2)
    assert r.search(queries[[0, 2]], k=2).ids[0][0] in {"p1", "p2", "p3", "p4"}


def test_corrupt_index_is_refused_before_faiss_reads_it(tmp_path):
    build_index(PASSAGES, LengthEmbedder(), tmp_path, embedder_name="length")
    path = tmp_path / INDEX_FILE
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(IntegrityError):
        load_index(tmp_path)


def test_empty_corpus_and_bad_factory(tmp_path):
    with pytest.raises(DataError):
        build_index([], LengthEmbedder(), tmp_path, embedder_name="x")
    with pytest.raises(ConfigError):
        build_index(PASSAGES, LengthEmbedder(), tmp_path, embedder_name="x", factory="NoSuchThing")


def test_ivf_factory_trains(tmp_path):
    rng = np.random.default_rng(0)
    words = ["a", "bb", "ccc", "dddd"]
    ps = [Passage(f"p{i}", "", " ".join(rng.choice(words, size=6))) for i in range(64)]
    meta = build_index(ps, LengthEmbedder(), tmp_path, embedder_name="x", factory="IVF4,Flat")
    assert meta["factory"] == "IVF4,Flat"
    assert len(load_index(tmp_path).search(np.ones((2, 4), dtype=np.float32), k=3).ids[0]) <= 3


def test_ivf_search_params_are_recorded_and_applied_on_load(tmp_path):
    import faiss

    rng = np.random.default_rng(0)
    words = ["a", "bb", "ccc", "dddd"]
    ps = [Passage(f"p{i}", "", " ".join(rng.choice(words, size=6))) for i in range(64)]
    meta = build_index(ps, LengthEmbedder(), tmp_path, embedder_name="x", factory="IVF4,Flat", search_params="nprobe=4")
    assert meta["search_params"] == "nprobe=4"
    r = load_index(tmp_path)
    assert faiss.extract_index_ivf(r.index).nprobe == 4
    exact = np.asarray(r.vectors) @ np.ones(4, dtype=np.float32)  # nprobe = nlist: the IVF search is exact
    assert r.search(np.ones((1, 4), dtype=np.float32), k=1).scores[0, 0] == pytest.approx(exact.max() / 2, abs=1e-5)
    with pytest.raises(ConfigError, match="search_params"):
        build_index(PASSAGES, LengthEmbedder(), tmp_path / "flat", embedder_name="x", search_params="nprobe=4")


def test_tiny_real_embedder_index(tmp_path, tiny_embedder):
    model = load_embedder(tiny_embedder)
    ps = [Passage(f"p{i}", f"T{i}", f"passage number {i} about topic {i % 3}") for i in range(20)]
    build_index(ps, model, tmp_path, embedder_name=tiny_embedder)
    r = load_index(tmp_path)
    q = encode_texts(model, [ps[7].content])
    assert r.search(q, k=1).ids == [["p7"]]


def test_an_ivf_search_that_finds_fewer_than_k_is_refused_not_misaligned(tmp_path):
    rng = np.random.default_rng(0)
    ps = [Passage(f"p{i}", "", " ".join(rng.choice(["a", "bb", "ccc", "dddd"], size=6))) for i in range(64)]
    build_index(ps, LengthEmbedder(), tmp_path, embedder_name="x", factory="IVF4,Flat", search_params="nprobe=1")
    r = load_index(tmp_path)
    with pytest.raises(ConfigError, match="fewer than k=60"):
        r.search(np.ones((2, 4), dtype=np.float32), k=60, with_vectors=True)
    res = r.search(np.ones((2, 4), dtype=np.float32), k=2, with_vectors=True)
    assert [len(x) for x in res.ids] == [2, 2] and res.vectors.shape == (2, 2, 4)


def test_the_training_sample_scales_with_the_centroids():
    """The paper's IVF65536,PQ64 needs 39 x 65,536 training vectors: a fixed 50,000 cap made FAISS refuse it."""
    import faiss

    from rag_jobs.index.faiss_index import training_sample_size

    def size(factory: str, n: int) -> int:
        return training_sample_size(faiss.index_factory(64, factory, faiss.METRIC_INNER_PRODUCT), n)

    assert size("IVF65536,PQ64", 29_900_000) == 39 * 65536
    assert size("IVF1024,PQ16", 1_000_000) == 50_000  # 39 x 1,024 is less than the floor
    assert size("IVF4096,Flat", 100_000) == 100_000  # all of them when fewer than 39 x 4,096
    assert size("PQ16", 10_000_000) == 50_000


def test_an_ivf_pq_index_trains_on_39_points_per_centroid(tmp_path):
    """IVF64,PQ4 at a reduced size: trained on min(n, max(50,000, 39 x 64)) vectors and searchable."""
    rng = np.random.default_rng(0)
    ps = [Passage(f"p{i}", "", "x" * int(rng.integers(1, 400))) for i in range(3000)]
    meta = build_index(ps, LengthEmbedder(), tmp_path, embedder_name="x", factory="IVF64,PQ4",
                       search_params="nprobe=64")
    assert meta["factory"] == "IVF64,PQ4" and meta["size"] == 3000
    hits = load_index(tmp_path).search(np.ones((1, 4), dtype=np.float32), 5)
    assert len(hits.ids[0]) == 5
