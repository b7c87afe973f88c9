"""Prompt formatting for the generator and batched greedy decoding."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from rag_jobs.core.prompts import build_prompt, clean_answer


def format_prompt(tokenizer, question: str, contexts: Sequence[str], *, max_prompt_tokens: int = 1024) -> str:
    """The paper's prompt, wrapped in the chat template when the model has one, shortened to fit.

    When the prompt is too long, every context passage is cut by the same share (never the question).
    """
    contexts = list(contexts)
    for _ in range(6):
        text = _wrap(tokenizer, build_prompt(question, contexts))
        n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if n_tokens <= max_prompt_tokens or not any(contexts):
            return text
        ratio = max_prompt_tokens / n_tokens * 0.95
        contexts = [c[: max(0, int(len(c) * ratio))] for c in contexts]
    return text


def _wrap(tokenizer, prompt: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return prompt


@torch.inference_mode()
def generate_answers(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 24,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Greedy decoding in left-padded batches (prompts of similar length share a batch)."""
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[str] = [""] * len(prompts)
    done = 0
    tokenizer.padding_side = "left"
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(device) for k, v in enc.items()}
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        new_tokens = out[:, enc["input_ids"].shape[1] :]  # (batch, new_len)
        for i, row in zip(idx, new_tokens):
            answers[i] = clean_answer(tokenizer.decode(row, skip_special_tokens=True))
        done += len(idx)
        if progress is not None:
            progress(done, len(prompts))
    return answers
