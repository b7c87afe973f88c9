"""The RAG marginalisations, pinned by identities and by an independent reference computation."""

import torch
import torch.nn.functional as F

from rag_jobs.core.losses import answer_nll, mnrl_loss, rag_sequence_nll, rag_token_nll, token_logprobs


def _random(B=3, K=4, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    lp = torch.log_softmax(torch.randn(B, K, T, 7, generator=g), -1)[..., 0]  # (B, K, T) valid log-probs
    scores = torch.randn(B, K, generator=g) * 3
    mask = torch.ones(B, T)
    mask[0, 3:] = 0
    mask[2, 1:] = 0
    return lp, scores, mask


def test_one_document_equals_plain_nll():
    lp, scores, mask = _random(K=1)
    plain = answer_nll(lp[:, 0], mask)
    torch.testing.assert_close(rag_sequence_nll(lp, scores, mask), plain)
    torch.testing.assert_close(rag_token_nll(lp, scores, mask), plain)


def test_one_token_answers_token_equals_sequence():
    lp, scores, _ = _random(T=1)
    mask = torch.ones(lp.shape[0], 1)
    torch.testing.assert_close(rag_token_nll(lp, scores, mask), rag_sequence_nll(lp, scores, mask))


def test_masked_positions_do_not_matter():
    lp, scores, mask = _random()
    lp2 = lp.clone()
    lp2[0, :, 4] = -1e4  # a padded position
    torch.testing.assert_close(rag_token_nll(lp, scores, mask), rag_token_nll(lp2, scores, mask))
    torch.testing.assert_close(rag_sequence_nll(lp, scores, mask), rag_sequence_nll(lp2, scores, mask))


def _reference(lp, scores, mask):
    """The marginalisation as transformers' RAG model writes it: logits + doc log-prior, then logsumexp."""
    doc_logprobs = F.log_softmax(scores, dim=1).unsqueeze(-1)  # (B, K, 1)
    ll = lp * mask.unsqueeze(1) + doc_logprobs  # token: prior added to every position before the per-t logsumexp
    # RAG-Sequence: sum tokens first, then add the prior once and logsumexp over documents.
    seq = (lp * mask.unsqueeze(1)).sum(-1) + doc_logprobs.squeeze(-1)
    seq_nll = -torch.logsumexp(seq, dim=1)
    # RAG-Token: logsumexp over documents per token, then sum the real tokens.
    tok = torch.logsumexp(ll, dim=1) * mask
    tok_nll = -tok.sum(-1)
    return seq_nll.mean(), tok_nll.mean()


def _loops(lp, scores, mask):
    """A second, loop-by-loop reference in float64 with explicit probabilities."""
    lp, scores, mask = lp.double(), scores.double(), mask.double()
    seq_total, tok_total = 0.0, 0.0
    for b in range(lp.shape[0]):
        prior = torch.softmax(scores[b], 0)
        p_seq = sum(prior[z] * torch.exp((lp[b, z] * mask[b]).sum()) for z in range(lp.shape[1]))
        seq_total += -torch.log(p_seq)
        for t in range(lp.shape[2]):
            if mask[b, t]:
                tok_total += -torch.log(sum(prior[z] * torch.exp(lp[b, z, t]) for z in range(lp.shape[1])))
    n = lp.shape[0]
    return seq_total / n, tok_total / n


def test_agrees_with_independent_references():
    for seed in range(3):
        lp, scores, mask = _random(seed=seed)
        ref_seq, ref_tok = _reference(lp, scores, mask)
        loop_seq, loop_tok = _loops(lp, scores, mask)
        torch.testing.assert_close(rag_sequence_nll(lp, scores, mask), ref_seq, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rag_token_nll(lp, scores, mask), ref_tok, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rag_sequence_nll(lp, scores, mask).double(), loop_seq, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rag_token_nll(lp, scores, mask).double(), loop_tok, atol=1e-5, rtol=1e-5)


def test_gradients_reach_doc_scores():
    lp, scores, mask = _random()
    for fn in (rag_sequence_nll, rag_token_nll):
        s = scores.clone().requires_grad_(True)
        fn(lp, s, mask).backward()
        assert s.grad is not None and s.grad.abs().sum() > 0


def test_token_logprobs_shift_and_ignore():
    logits = torch.randn(2, 4, 6)
    labels = torch.tensor([[-100, -100, 3, 5], [-100, 1, 2, -100]])
    out = token_logprobs(logits, labels)  # (2, 3)
    ref = torch.log_softmax(logits, -1)
    assert out[0, 0] == 0 and out[1, 2] == 0
    torch.testing.assert_close(out[0, 1], ref[0, 1, 3])
    torch.testing.assert_close(out[0, 2], ref[0, 2, 5])
    torch.testing.assert_close(out[1, 0], ref[1, 0, 1])


def test_mnrl_loss_hand_computed():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # sims*scale = [[20, 0], [0, 20]] -> loss = log(1 + e^-20)
    expected = torch.log1p(torch.exp(torch.tensor(-20.0)))
    torch.testing.assert_close(mnrl_loss(q, d, scale=20.0), expected)
    # with an extra hard negative equal to the positive of question 0: loss grows for question 0 only
    d3 = torch.cat([d, torch.tensor([[1.0, 0.0]])])
    assert mnrl_loss(q, d3) > mnrl_loss(q, d)
