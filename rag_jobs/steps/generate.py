"""The generator's step: the answer NLL under the prompt it is evaluated with (the top-k of the base embedder,
concatenated), on a LoRA (QLoRA with a 4-bit base) generator."""

from __future__ import annotations

from rag_jobs.core.losses import answer_nll
from rag_jobs.index import encode_texts
from rag_jobs.models.generation import format_prompt
from rag_jobs.models.lora import answer_logprobs, encode_prompt_answer, max_answer_len


def prompt_items(retriever, embedder, tok, examples, *, k: int, max_prompt_tokens: int) -> list[tuple[str, str]]:
    """(prompt with the top-k passages, gold answer) for each question."""
    hits = retriever.search(encode_texts(embedder, [e.question for e in examples]), k)
    return [(format_prompt(tok, e.question, [p.content for p in retriever.passages(ids)],
                           max_prompt_tokens=max_prompt_tokens), e.answers[0])
            for e, ids in zip(examples, hits.ids)]


def make_step_fn(model, tok, *, max_answer_tokens: int):
    device = next(model.parameters()).device

    def step_fn(batch):
        enc = encode_prompt_answer(tok, [b[0] for b in batch], [b[1] for b in batch],
                                   max_answer_tokens=max_answer_tokens, device=device)
        lp, mask = answer_logprobs(model, enc, max_answer_len(enc))  # (B, T) each
        return answer_nll(lp, mask)

    return step_fn
