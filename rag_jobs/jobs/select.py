"""`select`: keep the grid child with the best validation score (EM, F1 breaking ties; or Recall@5).

The selection commits no model files: its manifest names the chosen child (`extra.selected`), and readers
of the selection follow that name. It records the whole learning-rate curve, the children that failed, and
whether the choice over the runner-up is within noise (a paired bootstrap over validation questions).
"""

from __future__ import annotations

import json
import math
import sys

from rag_jobs.artifacts import StepRef, read_manifest
from rag_jobs.artifacts.layout import VALIDATION_FILE
from rag_jobs.errors import DataError
from rag_jobs.jobs.common import StepContext, run_step
from rag_jobs.steps.selection import noise_check, read_scores


def _score(metrics: dict, by: str) -> tuple[float, ...]:
    def val(key: str) -> float:
        v = metrics.get(key)
        return v if isinstance(v, (int, float)) and math.isfinite(v) else -math.inf

    if by == "em":
        return (val("val_em"), val("val_f1"), val("val_recall"))
    return (val("val_recall"), val("val_em"), val("val_f1"))


def _noise(ctx: StepContext, ranked: list[dict], roles: dict[str, str], by: str) -> dict | None:
    """The paired bootstrap of the chosen child against the runner-up, where both kept per-question scores."""
    if len(ranked) < 2:
        return None
    scores = []
    for child in ranked[:2]:
        manifest = ctx.input_manifest(roles[child["step"]])
        if VALIDATION_FILE not in manifest.files:  # a child committed before per-question scores were kept
            return None
        scores.append(read_scores(ctx.input_dir(roles[child["step"]], files=[VALIDATION_FILE]), VALIDATION_FILE))
    return noise_check(ranked[0], ranked[1], scores[0], scores[1], by)


def body(ctx: StepContext) -> dict:
    by = ctx.cfg.select_by
    curve, failed, roles = [], [], {}
    for role, child in sorted(ctx.spec.inputs.items()):
        m = read_manifest(ctx.store, StepRef(ctx.run.run_id, child))
        if m is None:
            failed.append(child)
            continue
        roles[child] = role
        curve.append({"step": child, "lr": m.metrics.get("lr"), **{k: v for k, v in m.metrics.items()
                                                                      if k.startswith("val_")}})
    if not curve:
        raise DataError(f"{ctx.spec.name}: every grid child failed: {', '.join(failed)}")
    ranked = sorted(curve, key=lambda c: (_score(c, by), -curve.index(c)), reverse=True)
    best = ranked[0]
    if failed:
        ctx.log(f"grid children that failed (kept out of the selection): {', '.join(failed)}")
    ctx.log(f"selected {best['step']} (lr={best['lr']}) by {by}: "
            + ", ".join(f"{c['lr']}: {c.get('val_' + by, float('nan')):.4f}" for c in curve))
    noise = _noise(ctx, ranked, roles, by)
    if noise is not None:
        ctx.log(f"selection noise: {noise['verdict']}")
    (ctx.out_dir / "selection.json").write_text(json.dumps({"selected": best, "curve": curve, "failed": failed,
                                                            "select_by": by, "noise": noise}, indent=2))
    ctx.extra["selected"] = best["step"]
    return {"selected": best["step"], "lr": best["lr"], "curve": curve, "failed": failed,
            **{k: v for k, v in best.items() if k.startswith("val_")}, **({"noise": noise} if noise else {})}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("select", body, argv))


if __name__ == "__main__":
    main()
