import numpy as np
import pytest
import torch

from rag_jobs.core.losses import rag_sequence_nll
from rag_jobs.core.prompts import INSTRUCTION, build_prompt, clean_answer
from rag_jobs.core.retrieval import doc_logits


def test_prompt_is_the_papers():
    p = build_prompt("Who?", ["doc one", " doc two "])
    assert p.startswith(INSTRUCTION)
    assert "### Context:\ndoc one\n\ndoc two\n### Question:\nWho?\n### Answer:\n" in p
    assert p.endswith("### Answer:\n")


def test_clean_answer():
    assert clean_answer("\n Answer: Paris\nmore") == "Paris"
    assert clean_answer("") == ""


@pytest.mark.parametrize("generated,answer", [
    ("Answer: Answer: Paris", "Paris"),  # a repeated label
    ("### Answer: answer: Paris", "Paris"),
    ("Answer:\nParis", "Paris"),  # the label alone on its line
    ("Based on the context, the answer is:\nParis\nIt is in France.", "Paris"),  # a preamble line
    ("Sure! Here is the answer:\n\nAnswer: Oslo", "Oslo"),
    ("Paris: the capital of France", "Paris: the capital of France"),  # a colon inside the answer stays
    ("The answer:", "The answer:"),  # nothing after a lead-in: keep what there is
], ids=["repeated-label", "hash-label-then-label", "label-alone", "preamble", "preamble-then-label",
        "colon-in-answer", "lead-in-only"])
def test_clean_answer_labels_and_preambles(generated, answer):
    assert clean_answer(generated) == answer


def test_the_document_prior_is_softmax_over_cosines_over_tau():
    """p(z|x) = softmax_k(cos / tau) as training computes it: doc_logits, then the losses' softmax over k."""
    cos = torch.tensor([1.0, 0.95, 0.0])
    q = torch.tensor([[2.0, 0.0]])
    d = 3.0 * torch.stack([cos, (1 - cos**2).sqrt()], dim=-1).unsqueeze(0)  # (1, 3, 2): norms do not matter
    logits = doc_logits(q, d, tau=0.05)
    torch.testing.assert_close(logits, 20 * cos.unsqueeze(0))
    # a one-token answer that only document z produces: the RAG-Sequence NLL is then -log p(z|x)
    prior = []
    for z in range(3):
        token_lp = torch.full((1, 3, 1), -1e4)
        token_lp[0, z, 0] = 0.0
        prior.append(torch.exp(-rag_sequence_nll(token_lp, logits, torch.ones(1, 1))))
    p = torch.stack(prior)
    torch.testing.assert_close(p, torch.softmax(20 * cos, dim=-1))
    assert p[0] / p[1] == pytest.approx(np.exp(1.0), rel=1e-5)


def test_doc_logits_are_cosine_over_tau():
    q = torch.tensor([[3.0, 0.0]])
    d = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    torch.testing.assert_close(doc_logits(q, d, tau=0.5), torch.tensor([[2.0, 0.0]]))
    with pytest.raises(ValueError):
        doc_logits(q, d, tau=0.0)
