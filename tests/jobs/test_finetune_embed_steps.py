"""finetune-embed's step functions: cached (GradCache) equals plain MNRL; rank halves add up to the whole batch."""

from __future__ import annotations

import pytest
import torch

from rag_jobs.config import FinetuneEmbedConfig
from rag_jobs.jobs.finetune_embed import make_step_fn
from rag_jobs.models import load_embedder


@pytest.fixture(scope="module")
def setup(tiny_embedder):
    model = load_embedder(tiny_embedder, device="cpu").eval()  # eval: no dropout, so passes are comparable
    g = torch.Generator().manual_seed(0)
    docs = torch.nn.functional.normalize(torch.randn(6, model.get_sentence_embedding_dimension(), generator=g), dim=-1)
    batch = [(f"question number {i} about {'rivers ' * i}", docs[i]) for i in range(6)]
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
