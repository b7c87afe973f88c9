"""`select`: keep the grid child with the best validation score (EM, F1 breaking ties; or Recall@5).

The selection commits no model files: its manifest names the chosen child (`extra.selected`), and readers
of the selection follow that name. It records the whole learning-rate curve and the children that failed.
"""

from __future__ import annotations

import json
import math
import sys

from rag_jobs.artifacts import StepRef, read_manifest
from rag_jobs.errors import DataError
from rag_jobs.jobs.common import StepContext, run_step


def _score(metrics: dict, by: str) -> tuple[float, ...]:
    def val(key: str) -> float:
        v = metrics.get(key)
        return v if isinstance(v, (int, float)) and math.isfinite(v) else -math.inf

    if by == "em":
        return (val("val_em"), val("val_f1"), val("val_recall"))
    return (val("val_recall"), val("val_em"), val("val_f1"))


def body(ctx: StepContext) -> dict:
    by = ctx.cfg.select_by
    curve, failed = [], []
    for _role, child in sorted(ctx.spec.inputs.items()):
        m = read_manifest(ctx.store, StepRef(ctx.run.run_id, child))
        if m is None:
            failed.append(child)
            continue
        curve.append({"step": child, "lr": m.metrics.get("lr"), **{k: v for k, v in m.metrics.items()
                                                                      if k.startswith("val_")}})
    if not curve:
        raise DataError(f"{ctx.spec.name}: every grid child failed: {', '.join(failed)}")
    best = max(curve, key=lambda c: (_score(c, by), -curve.index(c)))
    if failed:
        ctx.log(f"grid children that failed (kept out of the selection): {', '.join(failed)}")
    ctx.log(f"selected {best['step']} (lr={best['lr']}) by {by}: "
            + ", ".join(f"{c['lr']}: {c.get('val_' + by, float('nan')):.4f}" for c in curve))
    (ctx.out_dir / "selection.json").write_text(json.dumps({"selected": best, "curve": curve, "failed": failed,
                                                            "select_by": by}, indent=2))
    ctx.extra["selected"] = best["step"]
    return {"selected": best["step"], "lr": best["lr"], "curve": curve, "failed": failed,
            **{k: v for k, v in best.items() if k.startswith("val_")}}


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_step("select", body, argv))


if __name__ == "__main__":
    main()
