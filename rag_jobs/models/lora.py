"""LoRA adapters (QLoRA when the base is 4-bit) and teacher-forced answer log-probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rag_jobs.core.losses import token_logprobs

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def add_lora(model, *, r: int = 16, alpha: int = 32, dropout: float = 0.05, gradient_checkpointing: bool = False):
    """Wrap a causal LM with a trainable LoRA adapter (rank 16 as in the paper); the base stays frozen."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    # Non-reentrant checkpointing in both paths: the reentrant default warns, needs inputs that require grad,
    # and recomputes under a different autograd graph (peft's prepare passes no kwargs of its own).
    checkpointing = {"use_reentrant": False}
    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs=checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
        model.enable_input_require_grads()
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names] or "all-linear"
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def encode_prompt_answer(tokenizer, prompts: Sequence[str], answers: Sequence[str], *, max_answer_tokens: int = 32,
                         device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Left-padded (prompt + answer + eos) sequences; labels are -100 except on answer tokens.

    Left padding right-aligns every sequence, so the answer of a question sits in the same final positions
    whatever document its prompt holds: the K passes of one question line up token by token.
    """
    eos = tokenizer.eos_token_id
    rows, labels = [], []
    for prompt, answer in zip(prompts, answers):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a = [*tokenizer(answer.strip(), add_special_tokens=False)["input_ids"][:max_answer_tokens], eos]
        rows.append(p + a)
        labels.append([-100] * len(p) + a)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, lb) in enumerate(zip(rows, labels)):
        ids[i, width - len(r) :] = torch.tensor(r)
        lab[i, width - len(r) :] = torch.tensor(lb)
        att[i, width - len(r) :] = 1
    return {"input_ids": ids.to(device), "attention_mask": att.to(device), "labels": lab.to(device)}


def answer_logprobs(model, batch: dict[str, torch.Tensor], answer_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(y_t | prompt, y_<t) over the last `answer_len` positions: ((N, answer_len), mask (N, answer_len)).

    Only the last answer_len + 1 positions get logits (`logits_to_keep`): a vocabulary-wide log-softmax over
    the whole prompt would cost N x L x V floats, most of the step's memory for long RAG prompts.
    """
    att = batch["attention_mask"]
    position_ids = (att.cumsum(-1) - 1).clamp(min=0)  # (N, L) positions that ignore the left padding
    keep = answer_len + 1
    kwargs = {"input_ids": batch["input_ids"], "attention_mask": att, "position_ids": position_ids}
    try:
        logits = model(**kwargs, logits_to_keep=keep).logits  # (N, keep, V)
    except TypeError:  # a model class without logits_to_keep
        logits = model(**kwargs).logits
    logits = logits[:, -keep:, :]  # (N, keep, V)
    lp = token_logprobs(logits, batch["labels"][:, -keep:])  # (N, answer_len)
    mask = batch["labels"][:, -answer_len:] != -100  # (N, answer_len)
    return lp, mask


def max_answer_len(batch: dict[str, torch.Tensor]) -> int:
    """Number of answer positions (answer tokens + eos) of the longest answer in the batch."""
    return int((batch["labels"] != -100).sum(-1).max().item())
