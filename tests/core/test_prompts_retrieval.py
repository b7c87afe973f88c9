import numpy as np
import pytest
import torch

from rag_jobs.core.prompts import INSTRUCTION, build_prompt, clean_answer
from rag_jobs.core.retrieval import cosine_topk, doc_logits, doc_prior


def test_prompt_is_the_papers():
    p = build_prompt("Who?", ["doc one", " doc two "])
    assert p.startswith(INSTRUCTION)
    assert "### Context:\ndoc one\n\ndoc two\n### Question:\nWho?\n### Answer:\n" in p
    assert p.endswith("### Answer:\n")


def test_clean_answer():
    assert clean_answer("\n Answer: Paris\nmore") == "Paris"
    assert clean_answer("") == ""


def test_cosine_topk_hand_computed():
    docs = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    q = np.array([[2, 0], [0, 3]], dtype=np.float32)
    scores, idx = cosine_topk(q, docs, k=2)
    assert idx.tolist() == [[0, 2], [1, 2]]
    np.testing.assert_allclose(scores, [[1, 2**-0.5], [1, 2**-0.5]], rtol=1e-6)


def test_cosine_topk_ties_break_by_index():
    docs = np.ones((4, 3), dtype=np.float32)
    _, idx = cosine_topk(np.ones((1, 3), dtype=np.float32), docs, k=3)
    assert idx.tolist() == [[0, 1, 2]]


def test_doc_prior_is_softmax_over_scaled_cosines():
    scores = torch.tensor([[1.0, 0.95, 0.0]])
    p = doc_prior(scores, tau=0.05)
    expected = torch.softmax(scores * 20, dim=-1)
    torch.testing.assert_close(p, expected)
    assert p[0, 0] / p[0, 1] == pytest.approx(np.exp(1.0), rel=1e-5)


def test_doc_logits_are_cosine_over_tau():
    q = torch.tensor([[3.0, 0.0]])
    d = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    torch.testing.assert_close(doc_logits(q, d, tau=0.5), torch.tensor([[2.0, 0.0]]))
    with pytest.raises(ValueError):
        doc_logits(q, d, tau=0.0)
