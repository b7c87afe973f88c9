"""How sure a grid selection is: a paired bootstrap over validation questions of the chosen child against the
runner-up. Validation sets are small (the paper's grids choose on a few hundred questions, a CPU run on tens),
so two learning rates a few questions apart are often the same within noise; the selection says so."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rag_jobs.core.metrics import paired_bootstrap

METRIC_NAMES = {"em": "EM", "f1": "F1", "recall": "R@5"}


def read_scores(folder: Path, name: str) -> dict[str, dict] | None:
    """Per-question validation scores of a grid child ({question id: {em, f1, recall}}), or None if it has none."""
    path = folder / name
    if not path.exists():
        return None
    return {row["id"]: row for row in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if row}


def _mean(rows: list[dict], key: str) -> float:
    values = [r.get(key) for r in rows]
    values = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def _lr(value) -> str:
    return f"{value:.0e}".replace("e-0", "e-") if isinstance(value, float) else str(value)


def noise_check(best: dict, runner_up: dict, best_scores: dict[str, dict], runner_scores: dict[str, dict],
                by: str) -> dict:
    """Best vs runner-up on the questions both were scored on: each metric's means, and for the selection
    metric the paired difference with its 95% interval; `within_noise` when that interval reaches 0."""
    ids = sorted(set(best_scores) & set(runner_scores))
    a = [best_scores[i] for i in ids]
    b = [runner_scores[i] for i in ids]
    metric = "recall" if by == "recall" else "em"
    diff, lo, hi = paired_bootstrap([float(r.get(metric, math.nan)) for r in a],
                                    [float(r.get(metric, math.nan)) for r in b])
    within = not math.isnan(lo) and lo <= 0.0
    means = {k: [_mean(a, k), _mean(b, k)] for k in ("em", "f1", "recall") if any(k in r for r in a)}
    parts = [f"{METRIC_NAMES[metric]} {means[metric][0]:.2f} vs {means[metric][1]:.2f}, "
             f"{'within noise' if within else 'outside noise'} at n={len(ids)}"]
    parts += [f"{METRIC_NAMES[k]} {v[0]:.2f} vs {v[1]:.2f}" for k, v in means.items() if k != metric]
    verdict = f"{_lr(best.get('lr'))} vs {_lr(runner_up.get('lr'))}: " + "; ".join(parts)
    return {"runner_up": runner_up["step"], "metric": metric, "n": len(ids), "diff": diff, "diff_ci95": [lo, hi],
            "within_noise": within, "means": means, "verdict": verdict}
