"""`evaluate`: retrieve the top-k for each question, generate greedily, score EM / F1 / Recall@k."""

from __future__ import annotations

import json
import sys
import time

from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.models import load_embedder, load_generator
from rag_jobs.steps.evaluate import open_retriever, resolve_models
from rag_jobs.steps.scoring import f1_rule_of, score_examples


def body(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    t0 = time.perf_counter()
    retriever, index_meta, examples = open_retriever(ctx)
    rule = f1_rule_of(ctx.input_manifest("splits"))
    embedder_name, adapter, used = resolve_models(ctx, index_meta["embedder"])
    ctx.log(f"evaluating {len(examples)} {cfg.split} questions; embedder={used['embedder']} "
            f"generator={used['generator']} adapter={used['adapter']}")
    embedder = load_embedder(embedder_name, device=ctx.device)
    generator = None
    if not cfg.skip_generation:
        generator = load_generator(cfg.generator, device=ctx.device, quantization=cfg.quantization,
                                   adapter_dir=adapter)
    rows, metrics = score_examples(
        retriever, examples, embedder, generator, k=cfg.k, recall_k=cfg.recall_k,
        max_prompt_tokens=cfg.max_prompt_tokens, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
        label=ctx.label, f1_rule=rule,
    )
    with open(ctx.out_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    metrics.update(split=cfg.split, eval_s=time.perf_counter() - t0, models=used, f1_rule=rule)
    (ctx.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    ctx.log(" ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("evaluate", body, argv))


if __name__ == "__main__":
    main()
