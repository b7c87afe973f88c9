"""Phase 2 of two-phase: a grid of 9 embedder learning rates against one, with the cached phase 2.

Two runs of `rag-jobs run two-phase` on the same data and the same phase-1 generator (a fixed generator
learning rate): one with a single embedder learning rate, one with the paper's nine. The second reuses the
index, phase 1 and the score pool of the first (same config and inputs: shared steps), so what it adds is
the eight extra children. The phase-2 cost of each run is pool + children + selection (the pool counted
in both). Goal: the 9-point grid costs at most 2x the single learning rate.

    python benchmarks/phase2_grid.py                       # demo set, MiniLM + SmolLM2 (about 15 min on 2 cores)
    python benchmarks/phase2_grid.py --uncached            # also the 9-point grid without the pool (slow)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import write_result  # noqa: E402

PAPER_GRID = [1e-8, 3e-8, 1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 3e-5, 1e-4]


def _run(store: Path, config: dict, work: Path, name: str) -> tuple[str, dict[str, dict]]:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    res = subprocess.run([sys.executable, "-m", "rag_jobs.cli", "run", "two-phase", "--config", str(path),
                          "--store", str(store)], cwd=REPO, capture_output=True, text=True)
    (work / f"{name}.log").write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise SystemExit(f"phase2_grid: run {name} failed (exit {res.returncode}); see {work / (name + '.log')}")
    run_id = next(x for x in res.stdout.splitlines() if x.startswith("run: ")).rsplit("/", 1)[-1]
    manifests = {}
    for m in (store / "runs" / run_id).glob("*/_MANIFEST.json"):
        manifests[m.parent.name] = json.loads(m.read_text())
    return run_id, manifests


def _phase2_seconds(manifests: dict[str, dict], pool_s: float) -> tuple[float, dict]:
    parts = {name: float(m.get("wall_s") or m.get("timings", {}).get("wall_s") or 0.0)
             for name, m in manifests.items()
             if name.startswith("phase2-embed.") or name == "select-phase2"}
    return pool_s + sum(parts.values()), parts


def _wall(manifest: dict) -> float:
    return float(manifest.get("wall_s") or manifest.get("timings", {}).get("wall_s") or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="demo")
    ap.add_argument("--train-limit", type=int, default=32)
    ap.add_argument("--val-limit", type=int, default=16)
    ap.add_argument("--uncached", action="store_true", help="also run the 9-point grid without the pool")
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rag-jobs-phase2-"))
    store = args.store or work / "store"
    base = {"data": {"dataset": args.dataset, "seed": 0}, "embedder": "minilm", "generator": "smollm2-135m",
            "device": "auto", "gen_lr": 3e-4, "phase2_pool": 10, "evaluate": {"limit": 10, "max_new_tokens": 16},
            "train": {"batch_size": 4, "train_limit": args.train_limit, "k": 3, "max_prompt_tokens": 384,
                      "checkpoint_every": 0, "validation": {"limit": args.val_limit, "max_new_tokens": 16}}}
    one_id, one = _run(store, {**base, "embed_lr_grid": [1e-5]}, work, "one")
    pool_s = _wall(one["phase2-pool"])
    nine_id, nine = _run(store, {**base, "embed_lr_grid": PAPER_GRID}, work, "nine")
    t_one, parts_one = _phase2_seconds(one, pool_s)
    t_nine, parts_nine = _phase2_seconds(nine, pool_s)
    children = [nine[n]["metrics"] for n in nine if n.startswith("phase2-embed.")]
    result = {
        "goal": "grid of 9 <= 2x one learning rate (cached phase 2)",
        "pool_s": pool_s, "one_lr_s": t_one, "nine_lr_s": t_nine, "ratio": t_nine / t_one,
        "goal_met": t_nine / t_one <= 2.0,
        "reused_from_first_run": sorted(n for n in set(one) & set(nine)
                                        if one[n].get("attempt") == nine[n].get("attempt")),
        "fallback_rate_mean": sum(c.get("pool_fallback_rate", 0.0) for c in children) / max(len(children), 1),
        "val_answers_reused": [c.get("val_answers_reused") for c in children],
        "parts_one": parts_one, "parts_nine": parts_nine, "runs": [one_id, nine_id],
    }
    if args.uncached:
        _, unc = _run(store, {**base, "embed_lr_grid": PAPER_GRID, "phase2_pool": 0}, work, "uncached")
        t_unc, _ = _phase2_seconds(unc, 0.0)
        result.update(uncached_nine_lr_s=t_unc, speedup_vs_uncached=t_unc / t_nine)
    write_result("phase2_grid", result, args.out)


if __name__ == "__main__":
    main()
