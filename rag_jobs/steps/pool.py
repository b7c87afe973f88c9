"""Cached phase 2: the frozen generator's answer log-probabilities over a candidate pool, computed once.

When the generator is frozen (the second phase of two-phase), log p(y_t | x, z, y_<t) for a question x and a
passage z never changes during training. The `score-pool` step computes it once for
each training question over its top-K passages under the starting embedder (K >= k) and commits it; every
learning rate of the phase-2 grid then trains the embedder on these cached values. A passage that the
changing embedder retrieves from outside the pool falls back to an exact generator pass, and is counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rag_jobs.artifacts.layout import POOL_META, POOL_TENSORS
from rag_jobs.data.records import Example
from rag_jobs.errors import ConfigError, IntegrityError
from rag_jobs.models.generation import format_prompt
from rag_jobs.models.lora import answer_logprobs, encode_prompt_answer, max_answer_len
from rag_jobs.progress import Progress

# what must agree between the pool and a step that reads it, or the cached values are not what it would compute
POOL_KEYS = ("generator", "max_prompt_tokens", "max_answer_tokens")


def generator_logprobs(generator, tok, pairs: Sequence[tuple[str, str, str]], *, max_prompt_tokens: int,
                       max_answer_tokens: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced answer log-probs for (question, passage text, answer) triples, one batched no-grad pass.

    Returns ((N, T), mask (N, T)), answers right-aligned, T = the longest answer (+ eos) among them.
    """
    prompts = [format_prompt(tok, q, [text], max_prompt_tokens=max_prompt_tokens) for q, text, _ in pairs]
    enc = encode_prompt_answer(tok, prompts, [a for _, _, a in pairs], max_answer_tokens=max_answer_tokens,
                               device=device)
    with torch.no_grad():
        lp, mask = answer_logprobs(generator, enc, max_answer_len(enc))  # (N, T) each
    return lp.float().cpu(), mask.cpu()


def build_pool(examples: Sequence[Example], pool_ids: Sequence[Sequence[str]],
               passage_text: Callable[[list[str]], list[str]], generator, tok, *, max_prompt_tokens: int,
               max_answer_tokens: int, device, batch_size: int = 16,
               label: str = "pool") -> tuple[dict[str, torch.Tensor], dict]:
    """Score every (question, pooled passage) pair; returns the tensors and the metadata of the pool."""
    k_pool = len(pool_ids[0]) if pool_ids else 0
    rows: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []
    progress = Progress(label, "questions pooled", len(examples), unit="q")
    per_batch = max(1, batch_size // max(k_pool, 1))
    done = 0
    for start in range(0, len(examples), per_batch):
        chunk = list(zip(examples[start : start + per_batch], pool_ids[start : start + per_batch]))
        pairs = [(ex.question, text, ex.answers[0]) for ex, ids in chunk for text in passage_text(list(ids))]
        lp, mask = generator_logprobs(generator, tok, pairs, max_prompt_tokens=max_prompt_tokens,
                                      max_answer_tokens=max_answer_tokens, device=device)
        lp = lp.view(len(chunk), k_pool, -1)  # (b, K, t)
        mask = mask.view(len(chunk), k_pool, -1)[:, 0, :]  # (b, t)
        rows.extend(lp.unbind(0))
        masks.extend(mask.unbind(0))
        done += len(chunk)
        progress.update(done)  # the count so far, not the increment
    width = max((r.shape[-1] for r in rows), default=1)
    logprobs = torch.zeros(len(rows), k_pool, width)  # (N, K, Tmax), right-aligned, 0 where no answer token
    mask_all = torch.zeros(len(rows), width, dtype=torch.bool)  # (N, Tmax)
    for i, (r, m) in enumerate(zip(rows, masks)):
        logprobs[i, :, width - r.shape[-1] :] = r
        mask_all[i, width - m.shape[-1] :] = m
    meta = {"question_ids": [ex.id for ex in examples], "passage_ids": [list(ids) for ids in pool_ids],
            "k_pool": k_pool}
    return {"logprobs": logprobs.contiguous(), "mask": mask_all.to(torch.uint8).contiguous()}, meta


def validation_settings(cfg) -> dict:
    """What a validation answer depends on besides the question and its passages."""
    v = cfg.validation
    return {"generator": cfg.generator, "k": cfg.k, "max_prompt_tokens": cfg.max_prompt_tokens,
            "max_new_tokens": v.max_new_tokens, "batch_size": v.batch_size}


def write_pool(folder: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    save_file(tensors, str(folder / POOL_TENSORS))
    (folder / POOL_META).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")


class ScorePool:
    """Cached log p(y_t | x, z, y_<t) for each training question over its pooled passages."""

    def __init__(self, logprobs: torch.Tensor, mask: torch.Tensor, meta: dict):
        self.logprobs = logprobs  # (N, K, Tmax)
        self.mask = mask.bool()  # (N, Tmax)
        self.meta = meta
        self.row = {qid: i for i, qid in enumerate(meta["question_ids"])}
        self.col = [{pid: j for j, pid in enumerate(ids)} for ids in meta["passage_ids"]]
        self.hits = 0
        self.fallbacks = 0

    @classmethod
    def load(cls, folder: Path) -> ScorePool:
        try:
            tensors = load_file(str(folder / POOL_TENSORS))
            meta = json.loads((folder / POOL_META).read_text(encoding="utf-8"))
            lp, mask = tensors["logprobs"], tensors["mask"]
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            raise IntegrityError(f"unreadable score pool in {folder}: {exc}") from exc
        n = len(meta.get("question_ids", []))
        if lp.dim() != 3 or lp.shape[0] != n or mask.shape != (n, lp.shape[2]):
            raise IntegrityError(f"score pool in {folder} has inconsistent shapes "
                                 f"{tuple(lp.shape)} {tuple(mask.shape)}")
        return cls(lp, mask, meta)

    def check_compatible(self, settings: dict, examples: Sequence[Example]) -> None:
        """The pool must have been scored with this step's generator and prompt limits, on its questions."""
        for key in POOL_KEYS:
            if self.meta.get(key) != settings.get(key):
                raise ConfigError(f"score pool was built with {key}={self.meta.get(key)!r}, this step uses "
                                  f"{settings.get(key)!r}")
        missing = [ex.id for ex in examples if ex.id not in self.row]
        if missing:
            raise ConfigError(f"score pool lacks {len(missing)} training questions (first: {missing[0]!r})")

    def lookup(self, examples: Sequence[Example], doc_ids: Sequence[Sequence[str]],
               exact: Callable[[list[tuple[int, int]]], tuple[torch.Tensor, torch.Tensor]]
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, k, T) log-probs and (B, T) mask for the retrieved passages of a batch.

        Pooled pairs come from the cache; `exact(pairs)` computes the others ((n, t) log-probs, right-aligned).
        T is the longest answer of the batch, so the result equals one uncached batched pass.
        """
        rows = [self.row[ex.id] for ex in examples]
        mask_rows = self.mask[rows]  # (B, Tmax)
        t = int(mask_rows.sum(-1).max().item())
        k = len(doc_ids[0])
        out = torch.zeros(len(examples), k, t)  # (B, k, T)
        missing: list[tuple[int, int]] = []
        for b, (r, ids) in enumerate(zip(rows, doc_ids)):
            for j, pid in enumerate(ids):
                col = self.col[r].get(pid)
                if col is None:
                    missing.append((b, j))
                else:
                    out[b, j] = self.logprobs[r, col, -t:]
        self.hits += len(examples) * k - len(missing)
        self.fallbacks += len(missing)
        if missing:
            lp, _ = exact(missing)  # (n, t') with t' <= T
            out[[b for b, _ in missing], [j for _, j in missing], t - lp.shape[-1] :] = lp.to(out.dtype)
        return out, mask_rows[:, -t:]

    def known_answers(self, cfg) -> dict | None:
        """The starting embedder's validation answers, if they were made with this step's settings."""
        cached = self.meta.get("validation_answers")
        if not cached or cached.get("settings") != validation_settings(cfg):
            return None
        return cached["answers"]

    def stats(self) -> dict:
        total = self.hits + self.fallbacks
        return {"pool_hits": self.hits, "pool_fallbacks": self.fallbacks,
                "pool_fallback_rate": self.fallbacks / total if total else 0.0}
