"""Cached phase 2: losses from the score pool equal the exact generator passes, with and without fallbacks."""

from __future__ import annotations

from types import SimpleNamespace

import faiss
import numpy as np
import pytest
import torch

from rag_jobs.config import JointConfig, ScorePoolConfig
from rag_jobs.data.records import Example, Passage
from rag_jobs.errors import ConfigError, IntegrityError
from rag_jobs.index import encode_texts
from rag_jobs.index.faiss_index import FaissRetriever
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.steps.joint import make_step_fn
from rag_jobs.steps.pool import POOL_KEYS, ScorePool, build_pool, write_pool

WORDS = ["river", "mountain", "castle", "violin", "comet", "harbour", "glacier", "orchard", "lantern", "meadow"]


@pytest.fixture(scope="module")
def setup(tiny_embedder, tiny_generator):
    torch.manual_seed(0)
    passages = [Passage(f"p{i}", f"Title {i}", f"The {WORDS[i % 10]} of {WORDS[(3 * i) % 10]} number {i} is here.")
                for i in range(24)]
    examples = [Example(f"q{i}", f"Which {WORDS[i]} is near the {WORDS[(i + 4) % 10]}?",
                        (f"{WORDS[(i + 2) % 10]} {'and more ' * (i % 3)}".strip(),)) for i in range(6)]
    emb = load_embedder(tiny_embedder, device="cpu").eval()
    vecs = encode_texts(emb, [p.content for p in passages])
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    retriever = FaissRetriever(index, vecs, passages, {"dim": vecs.shape[1], "embedder": tiny_embedder})
    gen, tok = load_generator(tiny_generator, device="cpu", quantization="none")
    gen.eval().requires_grad_(False)
    cfg = JointConfig(embed_lr=1e-3, train="embedder", loss="token", k=5, generator=tiny_generator,
                      max_prompt_tokens=128, max_answer_tokens=8)
    return SimpleNamespace(retriever=retriever, examples=examples, emb=emb, gen=gen, tok=tok, cfg=cfg)


def _pool(s, ids) -> ScorePool:
    tensors, meta = build_pool(s.examples, ids, lambda x: [p.content for p in s.retriever.passages(x)], s.gen, s.tok,
                               max_prompt_tokens=128, max_answer_tokens=8, device="cpu", batch_size=7)
    meta.update({key: getattr(s.cfg, key) for key in POOL_KEYS})
    return ScorePool(tensors["logprobs"], tensors["mask"], meta)


def _loss_and_grads(s, pool, loss: str):
    cfg = s.cfg.model_copy(update={"loss": loss})
    s.emb.zero_grad(set_to_none=True)
    out = make_step_fn(SimpleNamespace(cfg=cfg), s.retriever, s.emb, s.gen, s.tok, pool)(s.examples)
    out.backward()
    return out.detach(), [p.grad.clone() for p in s.emb.parameters() if p.grad is not None]


@pytest.mark.parametrize("loss", ["token", "sequence"])
def test_pooled_loss_equals_the_exact_generator_passes(setup, loss):
    s = setup
    top = s.retriever.search(encode_texts(s.emb, [e.question for e in s.examples]), 10).ids
    pool = _pool(s, top)
    exact, exact_grads = _loss_and_grads(s, None, loss)
    cached, cached_grads = _loss_and_grads(s, pool, loss)
    torch.testing.assert_close(cached, exact, atol=1e-5, rtol=1e-5)
    for a, b in zip(cached_grads, exact_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert pool.fallbacks == 0 and pool.hits == len(s.examples) * 5


def test_passages_outside_the_pool_fall_back_to_the_generator_and_are_counted(setup):
    s = setup
    top = s.retriever.search(encode_texts(s.emb, [e.question for e in s.examples]), 24).ids
    pool = _pool(s, [ids[3:13] for ids in top])  # the first three retrieved passages are never pooled
    exact, _ = _loss_and_grads(s, None, "token")
    cached, _ = _loss_and_grads(s, pool, "token")
    torch.testing.assert_close(cached, exact, atol=1e-5, rtol=1e-5)
    assert pool.fallbacks == 3 * len(s.examples) and pool.hits == 2 * len(s.examples)
    assert pool.stats()["pool_fallback_rate"] == pytest.approx(0.6)


def test_pool_round_trip_and_compatibility(setup, tmp_path):
    s = setup
    top = s.retriever.search(encode_texts(s.emb, [e.question for e in s.examples]), 5).ids
    tensors, meta = build_pool(s.examples, top, lambda x: [p.content for p in s.retriever.passages(x)], s.gen, s.tok,
                               max_prompt_tokens=128, max_answer_tokens=8, device="cpu")
    meta.update({key: getattr(s.cfg, key) for key in POOL_KEYS})
    write_pool(tmp_path, tensors, meta)
    pool = ScorePool.load(tmp_path)
    assert torch.equal(pool.logprobs, tensors["logprobs"]) and pool.meta["passage_ids"] == [list(i) for i in top]
    pool.check_compatible(s.cfg.model_dump(), s.examples)
    with pytest.raises(ConfigError, match="max_prompt_tokens"):
        pool.check_compatible({**s.cfg.model_dump(), "max_prompt_tokens": 64}, s.examples)
    with pytest.raises(ConfigError, match="lacks 1 training questions"):
        pool.check_compatible(s.cfg.model_dump(), [*s.examples, Example("new", "?", ("a",))])
    (tmp_path / "pool.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(IntegrityError):
        ScorePool.load(tmp_path)


def test_score_pool_config_needs_pool_at_least_k():
    with pytest.raises(ValueError, match="must be >= k"):
        ScorePoolConfig(pool=3, k=5)
    assert ScorePoolConfig(pool=5, k=5).pool == 5
    assert np.isfinite(JointConfig(embed_lr=1e-5, train="embedder").tau)


def test_known_answers_are_reused_only_where_the_retrieved_passages_match(setup):
    from rag_jobs.steps.scoring import score_examples

    s = setup
    kw = {"k": 3, "recall_k": 3, "max_prompt_tokens": 128, "batch_size": 4, "max_new_tokens": 4}
    rows, metrics = score_examples(s.retriever, s.examples, s.emb, (s.gen, s.tok), **kw)
    known = {r["id"]: {"ids": r["retrieved"], "prediction": "CACHED"} for r in rows}
    known[rows[0]["id"]]["ids"] = ["p999"]  # this question now retrieves other passages: generate it again
    again, m2 = score_examples(s.retriever, s.examples, s.emb, (s.gen, s.tok), known_answers=known, **kw)
    assert m2["answers_reused"] == len(rows) - 1 and "answers_reused" not in metrics
    assert again[0]["prediction"] == rows[0]["prediction"]
    assert [r["prediction"] for r in again[1:]] == ["CACHED"] * (len(rows) - 1)
