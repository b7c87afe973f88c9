"""Results of a run, read from committed manifests: one row per final evaluate step."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rag_jobs.artifacts import StepRef, read_manifest
from rag_jobs.progress import fmt_duration
from rag_jobs.strategies.graph import Graph

TRAINING_KINDS = {"finetune-embed", "finetune-gen", "joint", "select"}


@dataclass
class ResultRow:
    label: str
    step: str
    metrics: dict
    finetune_s: float  # wall time of the fine-tuning steps this row depends on (grid children included)
    accel_hours: float  # finetune_s x device count / 3600
    total_s: float  # every step it depends on, index and evaluation included


def _ancestors(graph: Graph, name: str) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack:
        for dep in graph.step(stack.pop()).deps:
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def collect_rows(store, graph: Graph) -> list[ResultRow]:
    manifests = {s.name: read_manifest(store, StepRef(graph.run_id, s.name)) for s in graph.steps}
    rows = []
    for s in graph.steps:
        if s.kind != "evaluate" or not s.label:
            continue
        m = manifests[s.name]
        if m is None:
            continue
        steps = _ancestors(graph, s.name) | {s.name}
        ft = [manifests[n] for n in steps if graph.step(n).kind in TRAINING_KINDS and manifests[n] is not None]
        finetune_s = sum(x.wall_s or 0.0 for x in ft)
        accel = sum((x.wall_s or 0.0) * max(1, x.device.count if x.device else 1) for x in ft) / 3600
        total = sum((manifests[n].wall_s or 0.0) for n in steps if manifests[n] is not None)
        rows.append(ResultRow(s.label, s.name, dict(m.metrics), finetune_s, accel, total))
    return rows


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def format_table(rows: list[ResultRow]) -> str:
    """A plain-text table: strategy, EM, F1, Recall@k, fine-tuning time, accelerator-hours."""
    recall_name = next((r.metrics.get("recall_metric") for r in rows if r.metrics.get("recall_metric")), "recall@5")
    header = ["strategy", "EM", "F1", recall_name, "n", "fine-tune time", "accel-h", "total time"]
    body = [
        [r.label, _pct(r.metrics.get("em")), _pct(r.metrics.get("f1")), _pct(r.metrics.get("recall")),
         str(r.metrics.get("n", "-")), fmt_duration(r.finetune_s), f"{r.accel_hours:.3f}", fmt_duration(r.total_s)]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(lines)
