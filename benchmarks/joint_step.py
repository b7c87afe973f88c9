"""Time of one RAG-Token training step against k plain answer-NLL forward/backward passes.

Same generator (LoRA), same B x k (question, document) sequences. The RAG-Token step runs them as one batched
forward and marginalises over the documents; the reference runs k passes of B sequences with the plain NLL.
Goal: the marginalisation adds under 5%.

    python benchmarks/joint_step.py --generator smollm2-135m --batch 2 --k 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    from rag_jobs.core.losses import answer_nll, rag_token_nll
    from rag_jobs.data import load_dataset
    from rag_jobs.models import load_generator
    from rag_jobs.models.generation import format_prompt
    from rag_jobs.models.lora import add_lora, answer_logprobs, encode_prompt_answer, max_answer_len

    torch.manual_seed(0)
    ds = load_dataset("demo")
    model, tok = load_generator(args.generator, device="cpu", quantization="none")
    model = add_lora(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    exs = ds.examples[: args.batch]
    docs = ds.corpus[: args.k]
    prompts = [[format_prompt(tok, e.question, [d.content]) for d in docs] for e in exs]  # (B, k)
    answers = [e.answers[0] for e in exs]
    scores = torch.randn(args.batch, args.k, requires_grad=True)

    def rag_step() -> float:
        t = time.perf_counter()
        flat = [p for row in prompts for p in row]  # B*k, question-major
        enc = encode_prompt_answer(tok, flat, [a for a in answers for _ in range(args.k)])
        n = max_answer_len(enc)
        lp, mask = answer_logprobs(model, enc, n)
        loss = rag_token_nll(lp.view(args.batch, args.k, n), scores, mask.view(args.batch, args.k, n)[:, 0])
        loss.backward()
        for p in params:
            p.grad = None
        return time.perf_counter() - t

    def plain_passes() -> float:
        t = time.perf_counter()
        for j in range(args.k):
            enc = encode_prompt_answer(tok, [row[j] for row in prompts], answers)
            lp, mask = answer_logprobs(model, enc, max_answer_len(enc))
            answer_nll(lp, mask).backward()
        for p in params:
            p.grad = None
        return time.perf_counter() - t

    rag_step()
    plain_passes()  # warm-up
    rag_t, plain_t = [], []
    for _ in range(args.repeats):
        plain_t.append(plain_passes())
        rag_t.append(rag_step())
    overhead = statistics.median(rag_t) / statistics.median(plain_t) - 1
    write_result("joint_step", {
        "generator": args.generator, "batch": args.batch, "k": args.k,
        "rag_token_step_s": rag_t, "plain_nll_passes_s": plain_t,
        "overhead": overhead, "goal": "< 0.05", "met": overhead < 0.05,
    }, args.out)


if __name__ == "__main__":
    main()
