"""Answer cleaning before and after commit dd1435b, on the same raw generator outputs of a baseline run.

    python benchmarks/answer_cleaning.py --dataset hotpotqa:PATH [--limit 400] [--eval-limit N]
        [--store /tmp/clean-store] [--device auto] [--out FILE]

1. Builds (or reuses, when its steps are committed) `rag-jobs run baseline --dataset ... --limit ...
   --store ...` and reads its evaluate step's predictions.jsonl (each question's `retrieved` passage ids and
   gold `answers`).
2. Regenerates the RAW generator output of each of those prompts once: the same generator and quantization,
   the retrieved passages' text from the run's build-index folder, format_prompt with the evaluate step's
   max_prompt_tokens, greedy decoding with its max_new_tokens and batch size (the decode loop of
   rag_jobs.models.generation.generate_answers, keeping the decoded text instead of cleaning it). The raw
   texts are kept in --work (raw-<attempt>-<hash>.json), so a rerun on the same prompts does not decode again.
3. Cleans the same raw texts with the cleaning before dd1435b (OLD, copied below) and with the current
   rag_jobs.core.prompts.clean_answer (NEW), and scores both with rag_jobs.core.metrics.exact_match and
   f1(..., rule="hotpotqa").

Reports the number of questions, how many cleaned predictions changed, EM and F1 under each cleaning, how
many regenerated NEW answers equal the evaluate step's stored predictions (a check that the raw texts are the
ones the run saw), and up to --examples changed cases (raw -> old -> new). Stores and scratch files go under
--store and --work (both in /tmp by default), never in the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import write_result  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "hotpotqa_dev_sample.jsonl"
RUN_LINE = re.compile(r"^\[run\] baseline: run (\S+) in (\S+) ")
LABEL_LINE = re.compile(r"^\s*(?:#+\s*)?answer\s*:", re.IGNORECASE | re.MULTILINE)


def raw_shapes(raw: list[str]) -> dict:
    """How many raw outputs have what either cleaning acts on (labels, lead-in lines, several lines)."""
    lines = [[x.strip() for x in t.strip().splitlines() if x.strip()] for t in raw]
    return {
        "with_an_answer_label": sum(bool(LABEL_LINE.search(t)) for t in raw),
        "first_line_ends_with_colon": sum(bool(ls) and ls[0].endswith(":") for ls in lines),
        "several_non_empty_lines": sum(len(ls) > 1 for ls in lines),
        "empty": sum(not ls for ls in lines),
    }


def clean_answer_old(generated: str) -> str:
    """rag_jobs.core.prompts.clean_answer as it was before commit dd1435b (git show dd1435b~1:...)."""
    for line in generated.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        for label in ("### Answer:", "Answer:"):
            if line.startswith(label):
                line = line[len(label):].strip()
        if line:
            return line
    return ""


def run_baseline(args) -> tuple[list[str], str, str, float]:
    """(the command, run id, store URI, wall seconds): `rag-jobs run baseline`, its output streamed."""
    exe = Path(sys.executable).parent / "rag-jobs"
    cmd = [str(exe) if exe.exists() else "rag-jobs", "run", "baseline", "--dataset", args.dataset,
           "--limit", str(args.limit), "--store", args.store]
    if args.eval_limit:
        cmd += ["--eval-limit", str(args.eval_limit)]
    if args.device:
        cmd += ["--device", args.device]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    run_id = store_uri = None
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        m = RUN_LINE.match(line)
        if m:
            run_id, store_uri = m.group(1), m.group(2)
    rc = proc.wait()
    if rc != 0:
        raise SystemExit(f"answer_cleaning: `{' '.join(cmd)}` exited with {rc}")
    if run_id is None:
        raise SystemExit("answer_cleaning: could not read the run id from rag-jobs run's output")
    return cmd, run_id, store_uri, time.perf_counter() - t0


def committed(store, run_id: str, step: str):
    """The manifest of a committed step; a selection step stands for the child it selected."""
    from rag_jobs.artifacts import StepRef, read_manifest

    for _ in range(4):
        m = read_manifest(store, StepRef(run_id, step))
        if m is None:
            raise SystemExit(f"answer_cleaning: step {step!r} of run {run_id!r} is not committed")
        selected = (m.extra or {}).get("selected")
        if not selected:
            return m
        step = selected
    raise SystemExit(f"answer_cleaning: selection chain of {step!r} too deep")


def generate_raw(model, tokenizer, prompts: list[str], *, batch_size: int, max_new_tokens: int) -> list[str]:
    """rag_jobs.models.generation.generate_answers' decode loop (same batching and order), uncleaned."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    raw: list[str] = [""] * len(prompts)
    tokenizer.padding_side = "left"
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(device) for k, v in enc.items()}
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            for i, row in zip(idx, new_tokens):
                raw[i] = tokenizer.decode(row, skip_special_tokens=True)
            print(f"[answer_cleaning] generated {start + len(idx)}/{len(order)}", flush=True)
    return raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=f"hotpotqa:{DEFAULT_DATA}", help="dataset spec, hotpotqa:PATH")
    ap.add_argument("--limit", type=int, default=400, help="questions of the sample (before splitting)")
    ap.add_argument("--eval-limit", type=int, default=None, help="evaluate at most this many test questions")
    ap.add_argument("--store", default="/tmp/clean-store", help="store of the baseline run")
    ap.add_argument("--device", default=None, help="passed to rag-jobs run and used to regenerate (default auto)")
    ap.add_argument("--work", default="/tmp/answer-cleaning-work", help="scratch folder (fetched steps)")
    ap.add_argument("--examples", type=int, default=5, help="changed examples to report")
    ap.add_argument("--out", default=None, help="result JSON (default bench-results/answer_cleaning.json)")
    args = ap.parse_args()
    if not args.dataset.startswith("hotpotqa:"):
        raise SystemExit("answer_cleaning: --dataset must be hotpotqa:PATH (F1 is scored by HotPotQA's rule)")

    cmd, run_id, store_uri, run_s = run_baseline(args)

    from rag_jobs.artifacts import fetch_manifest, open_store
    from rag_jobs.artifacts.layout import RunRef
    from rag_jobs.config import step_config
    from rag_jobs.core.metrics import exact_match, f1, mean
    from rag_jobs.core.prompts import clean_answer
    from rag_jobs.index import load_index
    from rag_jobs.jobs.common import load_graph
    from rag_jobs.models import load_generator, resolve_device
    from rag_jobs.models.generation import format_prompt
    from rag_jobs.models.generator import load_tokenizer, resolve_generator_path

    store = open_store(store_uri)
    graph = load_graph(store, RunRef(run_id))
    (spec,) = [s for s in graph.steps if s.kind == "evaluate"]
    ev = committed(store, run_id, spec.name)
    ix = committed(store, run_id, spec.inputs["index"])
    if "generator" in spec.inputs:
        raise SystemExit("answer_cleaning: the evaluate step has a fine-tuned generator; use a baseline run")
    cfg = step_config("evaluate", ev.extra.get("config") or spec.config)
    work = Path(args.work) / run_id
    pred_dir = fetch_manifest(store, ev, work / ev.step / ev.attempt, files=["predictions.jsonl"])
    rows = [json.loads(line) for line in (pred_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    retriever = load_index(fetch_manifest(store, ix, work / ix.step / ix.attempt))

    device = resolve_device(args.device or cfg.device)
    quantization = ev.extra.get("quantization") or cfg.quantization
    print(f"[answer_cleaning] {len(rows)} questions of {spec.name}; generator={cfg.generator} "
          f"quantization={quantization} device={device} max_new_tokens={cfg.max_new_tokens} "
          f"batch_size={cfg.batch_size} max_prompt_tokens={cfg.max_prompt_tokens}", flush=True)
    t0 = time.perf_counter()
    tok = load_tokenizer(resolve_generator_path(cfg.generator))
    prompts = [format_prompt(tok, r["question"], [p.content for p in retriever.passages(r["retrieved"])],
                             max_prompt_tokens=cfg.max_prompt_tokens) for r in rows]
    key = hashlib.sha256(json.dumps([cfg.generator, quantization, device, cfg.max_new_tokens, cfg.batch_size,
                                     prompts]).encode("utf-8")).hexdigest()[:16]
    cache = work / f"raw-{ev.attempt}-{key}.json"  # the raw texts, so that a rerun does not decode again
    if cache.exists():
        kept = json.loads(cache.read_text(encoding="utf-8"))
        raw, decode_s, reused = kept["raw"], kept["decode_s"], True
        print(f"[answer_cleaning] reusing the raw outputs in {cache}", flush=True)
    else:
        model, tok = load_generator(cfg.generator, device=device, quantization=quantization)
        raw = generate_raw(model, tok, prompts, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens)
        decode_s, reused = time.perf_counter() - t0, False
        cache.write_text(json.dumps({"raw": raw, "decode_s": decode_s}, ensure_ascii=False), encoding="utf-8")

    scored = []
    for r, text in zip(rows, raw):
        old, new = clean_answer_old(text), clean_answer(text)
        scored.append({
            "id": r["id"], "question": r["question"], "answers": r["answers"], "raw": text, "old": old, "new": new,
            "stored": r.get("prediction"),
            "em_old": exact_match(old, r["answers"]), "em_new": exact_match(new, r["answers"]),
            "f1_old": f1(old, r["answers"], rule="hotpotqa"), "f1_new": f1(new, r["answers"], rule="hotpotqa"),
        })
    changed = [s for s in scored if s["old"] != s["new"]]
    with_stored = [s for s in scored if s["stored"] is not None]
    result = {
        "command": " ".join([sys.executable, *sys.argv]),
        "baseline_command": " ".join(cmd),
        "run": f"{store_uri}/runs/{run_id}",
        "run_id": run_id,
        "evaluate_step": {"name": ev.step, "attempt": ev.attempt, "wall_s": ev.wall_s,
                          "metrics": {k: ev.metrics.get(k) for k in ("n", "em", "f1", "recall", "f1_rule")}},
        "generation": {"generator": cfg.generator, "quantization": quantization, "device": device,
                       "max_new_tokens": cfg.max_new_tokens, "batch_size": cfg.batch_size,
                       "max_prompt_tokens": cfg.max_prompt_tokens, "k": cfg.k, "decoding": "greedy"},
        "questions": len(scored),
        "changed": len(changed),
        "em": {"old": mean(s["em_old"] for s in scored), "new": mean(s["em_new"] for s in scored)},
        "f1": {"old": mean(s["f1_old"] for s in scored), "new": mean(s["f1_new"] for s in scored)},
        "changed_em": {"gained": sum(s["em_new"] > s["em_old"] for s in changed),
                       "lost": sum(s["em_new"] < s["em_old"] for s in changed)},
        "changed_f1": {"higher": sum(s["f1_new"] > s["f1_old"] for s in changed),
                       "lower": sum(s["f1_new"] < s["f1_old"] for s in changed)},
        "new_equals_stored_prediction": {"equal": sum(s["new"] == s["stored"] for s in with_stored),
                                         "of": len(with_stored)},
        "raw_shapes": raw_shapes(raw),
        "examples": [{k: s[k] for k in ("id", "raw", "old", "new", "em_old", "em_new", "f1_old", "f1_new")}
                     for s in changed[: args.examples]],
        "wall_s": {"rag_jobs_run": run_s, "load_and_decode": decode_s, "raw_outputs_reused": reused},
        "f1_rule": "hotpotqa",
        "old_cleaning": "rag_jobs/core/prompts.py clean_answer at dd1435b~1 (copied in this script)",
        "new_cleaning": "rag_jobs.core.prompts.clean_answer (dd1435b and later)",
    }
    write_result("answer_cleaning", result, args.out)


if __name__ == "__main__":
    main()
