"""finetune-embed's step functions: cached (GradCache) equals plain MNRL; rank halves add up to the whole batch;
hard negatives join the in-batch ones and are picked from the starting embedder's ranking, never gold."""

from __future__ import annotations

import pytest
import torch
from tiny_models import LengthEmbedder

from rag_jobs.config import FinetuneEmbedConfig
from rag_jobs.core.losses import mnrl_loss
from rag_jobs.data.records import Example, Passage
from rag_jobs.index import build_index, load_index
from rag_jobs.models import load_embedder
from rag_jobs.models.embedder import embed_with_grad
from rag_jobs.steps.embed import hard_negatives, make_step_fn


@pytest.fixture(scope="module")
def setup(tiny_embedder):
    model = load_embedder(tiny_embedder, device="cpu").eval()  # eval: no dropout, so passes are comparable
    g = torch.Generator().manual_seed(0)
    docs = torch.nn.functional.normalize(torch.randn(6, model.get_sentence_embedding_dimension(), generator=g), dim=-1)
    none = torch.zeros((0, docs.shape[1]))
    batch = [(f"question number {i} about {'rivers ' * i}", docs[i], none) for i in range(6)]
    return model, batch


def _grads(model, fn, batch, whole, scale=1.0):
    model.zero_grad(set_to_none=True)
    loss = fn(batch, whole)
    (loss * scale).backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_cached_mnrl_gives_the_plain_loss_and_gradients(setup):
    model, batch = setup
    plain = make_step_fn(model, FinetuneEmbedConfig(lr=1e-5))
    cached = make_step_fn(model, FinetuneEmbedConfig(lr=1e-5, cached=True, mini_batch_size=2))
    loss_p, grads_p = _grads(model, plain, batch, batch)
    loss_c, grads_c = _grads(model, cached, batch, batch, scale=0.5)  # the loop scales losses: so must replay
    torch.testing.assert_close(loss_c, loss_p, atol=1e-6, rtol=1e-5)
    assert len(grads_c) == len(grads_p) > 0
    for a, b in zip(grads_c, grads_p):
        torch.testing.assert_close(a, 0.5 * b, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("cached", [False, True])
def test_two_ranks_see_the_whole_batch_as_negatives(setup, cached):
    """Each rank's questions against all the micro-batch's documents: the mean of the ranks' gradients (what
    torchrun's all-reduce computes) is the gradient of one process on the whole micro-batch."""
    model, batch = setup
    fn = make_step_fn(model, FinetuneEmbedConfig(lr=1e-5, cached=cached, mini_batch_size=2))
    loss, full = _grads(model, fn, batch, batch)
    halves = [_grads(model, fn, batch[r::2], batch) for r in (0, 1)]
    torch.testing.assert_close((halves[0][0] + halves[1][0]) / 2, loss, atol=1e-6, rtol=1e-5)
    for a, b, c in zip(halves[0][1], halves[1][1], full):
        torch.testing.assert_close((a + b) / 2, c, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("cached", [False, True])
def test_hard_negatives_are_extra_columns_of_the_loss(setup, cached):
    model, batch = setup
    g = torch.Generator().manual_seed(1)
    negs = [torch.nn.functional.normalize(torch.randn(2, b[1].shape[0], generator=g), dim=-1) for b in batch]
    hard = [(b[0], b[1], n) for b, n in zip(batch, negs)]
    cfg = FinetuneEmbedConfig(lr=1e-5, hard_negatives=2, cached=cached, mini_batch_size=2)
    got = make_step_fn(model, cfg)(hard[:3], hard).detach()  # the cached variant needs autograd for its replay
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        q = embed_with_grad(model, [b[0] for b in hard[:3]])
        docs = torch.cat([torch.stack([b[1] for b in hard[:3]] + [b[1] for b in hard[3:]]), *negs])  # (6 + 12, D)
        want = mnrl_loss(q, docs, scale=cfg.scale)
        without = make_step_fn(model, FinetuneEmbedConfig(lr=1e-5))(batch[:3], batch)  # plain: no replay
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    assert got > without  # more negatives: a harder classification


def test_hard_negatives_are_the_best_ranked_passages_that_are_not_gold(tmp_path):
    ps = [Passage("a", "", "x y z"), Passage("b", "", "x y zz"), Passage("c", "", "x yy zz"),
          Passage("d", "", "xxxx yyyy")]
    build_index(ps, LengthEmbedder(), tmp_path, embedder_name="lengths")
    r = load_index(tmp_path)
    ex = [Example("q1", "p q r", ("x",), ("a",)), Example("q2", "pppp qqqq", ("y",), ("d", "c"))]
    got = hard_negatives(r, LengthEmbedder(), ex, 2)
    torch.testing.assert_close(got["q1"], torch.from_numpy(r.vectors_for(["b", "c"])))  # ranked 2nd and 3rd
    # q1 = (1, 0, 0, 0): a (gold) 1.0, b 0.89, c 0.45, d 0.0
    assert got["q2"].shape == (2, 4)
    assert not any(torch.equal(row, torch.from_numpy(r.vectors_for([g])[0])) for row in got["q2"] for g in "cd")
    assert hard_negatives(r, LengthEmbedder(), ex, 0)["q1"].shape == (0, 4)


def test_cached_mnrl_in_train_mode_replays_each_chunk_with_its_first_dropout_masks(setup, tiny_embedder,
                                                                                   monkeypatch):
    """GradCache with dropout on: each replayed chunk must give the embeddings of its first pass (the same
    dropout masks), so the gradient is plain MNRL's over those embeddings. A replay that drew new masks would
    give the gradient of other embeddings."""
    from rag_jobs.steps import embed as embed_module

    _, batch = setup
    model = load_embedder(tiny_embedder, device="cpu").train()  # dropout 0.1 on
    cfg = FinetuneEmbedConfig(lr=1e-5, cached=True, mini_batch_size=2)
    texts = [b[0] for b in batch]
    docs = torch.stack([b[1] for b in batch])
    chunks = [texts[i : i + 2] for i in range(0, len(texts), 2)]

    torch.manual_seed(7)  # the reference: the same chunks from the same RNG state, with grad, plain MNRL
    model.zero_grad(set_to_none=True)
    loss_ref = mnrl_loss(torch.cat([embed_with_grad(model, c) for c in chunks]), docs, scale=cfg.scale)
    loss_ref.backward()
    grads_ref = [p.grad.clone() for p in model.parameters() if p.grad is not None]

    seen = []

    def recording(m, c):
        out = embed_with_grad(m, c)
        seen.append(out.detach().clone())
        return out

    monkeypatch.setattr(embed_module, "embed_with_grad", recording)
    torch.manual_seed(7)
    model.zero_grad(set_to_none=True)
    loss = make_step_fn(model, cfg)(batch, batch)
    loss.backward()
    first, replayed = seen[: len(chunks)], seen[len(chunks) :]
    assert len(replayed) == len(chunks)
    for a, b in zip(first, replayed):
        torch.testing.assert_close(b, a, atol=0, rtol=0)
    with torch.no_grad():  # dropout really was on: the first pass differs from the model without it
        assert not torch.allclose(first[0], embed_with_grad(model.eval(), chunks[0]))
    torch.testing.assert_close(loss.detach(), loss_ref.detach(), atol=1e-6, rtol=1e-5)
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert len(grads) == len(grads_ref) > 0
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
