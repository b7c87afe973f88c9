"""Recorded losses (DESIGN convention 7): two optimizer steps of every training step kind on the tiny models,
through the one training loop, compared with `torch.testing.assert_close` against the values recorded in
golden/losses.json. A change of these numbers is a change of what a step computes: review it, bump the
kind's version in rag_jobs/jobs/registry.py, then REGENERATE_GOLDEN=1 rewrites the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import faiss
import pytest
import torch

from rag_jobs.config import FinetuneEmbedConfig, JointConfig
from rag_jobs.data.records import Example, Passage
from rag_jobs.index import encode_texts
from rag_jobs.index.faiss_index import FaissRetriever
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.models.lora import add_lora
from rag_jobs.steps import embed, generate, joint
from rag_jobs.steps.pool import POOL_KEYS, ScorePool, build_pool
from rag_jobs.steps.training import group, trainable_state
from rag_jobs.training import LoopConfig, train
from rag_jobs.training.loop import seed_everything

GOLDEN = Path(__file__).parent / "golden" / "losses.json"
REGENERATE = os.environ.get("REGENERATE_GOLDEN") == "1"
WORDS = ["river", "mountain", "castle", "violin", "comet", "harbour", "glacier", "orchard", "lantern", "meadow"]
LR = 1e-3


@pytest.fixture(scope="module")
def world(tiny_embedder, tiny_generator):
    """16 passages, 8 questions whose gold passage is passage 2i; a Flat index of the starting embedder."""
    passages = [Passage(f"p{i}", f"Title {i}", f"The {WORDS[i % 10]} by the {WORDS[(3 * i + 1) % 10]} is number {i}.")
                for i in range(16)]
    examples = [Example(f"q{i}", f"Which {WORDS[(2 * i) % 10]} is by the {WORDS[(6 * i + 1) % 10]}?",
                        (f"number {2 * i}",), (f"p{2 * i}",)) for i in range(8)]
    emb = load_embedder(tiny_embedder, device="cpu").eval()
    vecs = encode_texts(emb, [p.content for p in passages])
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    retriever = FaissRetriever(index, vecs, passages, {"dim": vecs.shape[1], "embedder": tiny_embedder})
    return SimpleNamespace(retriever=retriever, examples=examples, embedder=tiny_embedder, generator=tiny_generator)


def _two_steps(module, items, step_fn, groups, *, full_batch: bool = False) -> list[float]:
    state, load = trainable_state(module)
    cfg = LoopConfig(batch_size=4, max_steps=2, log_every=1, seed=0)
    result = train(label="golden", items=items, step_fn=step_fn, groups=groups, cfg=cfg, trainable_state=state,
                   load_trainable=load, full_batch=full_batch)
    return result.losses


def _embed(w, *, cached: bool) -> list[float]:
    seed_everything(0)
    model = load_embedder(w.embedder, device="cpu")
    cfg = FinetuneEmbedConfig(lr=LR, cached=cached, mini_batch_size=2, hard_negatives=1 if cached else 0)
    pairs = embed.training_pairs(w.retriever, model, w.examples, cfg.hard_negatives)
    model.train()
    return _two_steps(model, pairs, embed.make_step_fn(model, cfg), [group("embedder", model, LR)], full_batch=True)


def _generator(w):
    seed_everything(0)
    model, tok = load_generator(w.generator, device="cpu", quantization="none")
    return model, tok


def _gen_nll(w) -> list[float]:
    model, tok = _generator(w)
    embedder = load_embedder(w.embedder, device="cpu").eval()
    items = generate.prompt_items(w.retriever, embedder, tok, w.examples, k=3, max_prompt_tokens=128)
    model = add_lora(model, r=4, alpha=8, dropout=0.0)
    model.train()
    step_fn = generate.make_step_fn(model, tok, max_answer_tokens=8)
    return _two_steps(model, items, step_fn, [group("generator", model, LR)])


def _joint_cfg(**kw) -> JointConfig:
    return JointConfig(k=3, max_prompt_tokens=128, max_answer_tokens=8, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                       **kw)


def _joint(w, cfg: JointConfig, pool: ScorePool | None = None) -> list[float]:
    generator, tok = _generator(w)
    embedder = load_embedder(w.embedder, device="cpu")
    ctx = SimpleNamespace(cfg=cfg, spec=SimpleNamespace(name="golden"))
    generator, groups = joint.set_trainable(ctx, embedder, generator, None, cfg.embed_lr, cfg.gen_lr)
    step_fn = joint.make_step_fn(ctx, w.retriever, embedder, generator, tok, pool)
    return _two_steps(joint.JointModel(embedder, generator), w.examples, step_fn, groups)


def _score_pool(w) -> tuple[ScorePool, list[float]]:
    generator, tok = _generator(w)
    generator.eval()
    embedder = load_embedder(w.embedder, device="cpu").eval()
    ids = w.retriever.search(encode_texts(embedder, [e.question for e in w.examples]), 6).ids
    tensors, meta = build_pool(w.examples, ids, lambda x: [p.content for p in w.retriever.passages(x)], generator,
                               tok, max_prompt_tokens=128, max_answer_tokens=8, device="cpu", batch_size=12)
    cfg = _joint_cfg(train="embedder", embed_lr=LR)
    meta.update({key: getattr(cfg, key) for key in POOL_KEYS})
    lp, mask = tensors["logprobs"], tensors["mask"].bool()
    per_question = (lp * mask[:, None, :]).sum(-1).mean(-1)  # (N,) mean over the pool of log p(answer)
    return ScorePool(lp, tensors["mask"], meta), per_question.tolist()


CASES = {
    "finetune-embed (MNRL)": lambda w: _embed(w, cached=False),
    "finetune-embed (cached MNRL, 1 hard negative)": lambda w: _embed(w, cached=True),
    "finetune-gen (answer NLL, LoRA)": _gen_nll,
    "joint RAG-Token (both)": lambda w: _joint(w, _joint_cfg(train="both", loss="token", embed_lr=LR, gen_lr=LR)),
    "joint RAG-Sequence (both)": lambda w: _joint(w, _joint_cfg(train="both", loss="sequence", embed_lr=LR,
                                                                gen_lr=LR)),
    "joint phase 1 (generator)": lambda w: _joint(w, _joint_cfg(train="generator", gen_lr=LR)),
    "score-pool (log p(answer) per question)": lambda w: _score_pool(w)[1],
    "joint phase 2 (embedder, cached pool)": lambda w: _joint(w, _joint_cfg(train="embedder", embed_lr=LR),
                                                              _score_pool(w)[0]),
}


@pytest.fixture(scope="module")
def recorded():
    data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    yield data
    if REGENERATE:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_losses_match_the_recorded_values(world, recorded, case):
    values = CASES[case](world)
    assert all(torch.isfinite(torch.tensor(values)))
    if REGENERATE:
        recorded[case] = values
    assert case in recorded, f"no recorded values for {case!r}: run with REGENERATE_GOLDEN=1"
    torch.testing.assert_close(torch.tensor(values), torch.tensor(recorded[case]), rtol=1e-4, atol=1e-5)
