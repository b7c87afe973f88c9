"""Results of a run and the paper's table.

Result rows are read from committed manifests, one row per final evaluate step; `rag-jobs run` prints them as a
plain-text table, `rag-jobs report` writes the paper's table (Markdown + CSV), Figure-2-style bars, the
learning-rate curves and, for steps trained with `validate_every`, the validation-loss curves (Figure 4).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from rag_jobs.artifacts import StepRef, read_manifest, read_selected
from rag_jobs.progress import fmt_duration
from rag_jobs.strategies.graph import Graph

TRAINING_KINDS = {"finetune-embed", "finetune-gen", "joint", "score-pool", "select"}
# Inputs that only hand over learning rates (a joint step takes them from two-phase's selections, as the paper
# does): what lies behind them is the search that found the rates, not this strategy's own training.
LR_ROLES = ("lr-embedder", "lr-generator")


@dataclass
class ResultRow:
    label: str
    step: str
    metrics: dict
    finetune_s: float  # wall time of the fine-tuning steps this row depends on (grid children included)
    accel_hours: float  # finetune_s x device count / 3600
    total_s: float  # every step it depends on, index and evaluation included
    lr_search_s: float = 0.0  # the learning-rate search it borrowed (two-phase's grids for RAG-Seq./-Tok.)


def _ancestors(graph: Graph, name: str, skip_roles: tuple[str, ...] = ()) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack:
        for role, dep in graph.step(stack.pop()).inputs.items():
            if role not in skip_roles and dep not in seen:
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
        steps = _ancestors(graph, s.name, LR_ROLES) | {s.name}
        borrowed = _ancestors(graph, s.name) - steps

        def training(names: set[str]) -> list:
            return [manifests[n] for n in names if graph.step(n).kind in TRAINING_KINDS and manifests[n] is not None]

        ft = training(steps)
        finetune_s = sum(x.wall_s or 0.0 for x in ft)
        accel = sum((x.wall_s or 0.0) * max(1, x.device.count if x.device else 1) for x in ft) / 3600
        total = sum((manifests[n].wall_s or 0.0) for n in steps if manifests[n] is not None)
        search = sum(x.wall_s or 0.0 for x in training(borrowed))
        rows.append(ResultRow(s.label, s.name, dict(m.metrics), finetune_s, accel, total, search))
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


PAPER_ROWS = ["No Ft.", "Ft. Embed.", "Ft. Gen.", "Indp.", "2-Phase", "RAG-Seq.", "RAG-Tok."]


def order_rows(rows: list[ResultRow]) -> list[ResultRow]:
    rank = {label: i for i, label in enumerate(PAPER_ROWS)}
    return sorted(rows, key=lambda r: rank.get(r.label, len(rank)))


def _cell(metrics: dict, key: str) -> str:
    v = metrics.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    ci = metrics.get(f"{key}_ci95")
    if ci and all(isinstance(x, (int, float)) and not math.isnan(x) for x in ci):
        return f"{100 * v:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return f"{100 * v:.1f}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.3f}"


def markdown_table(rows: list[ResultRow]) -> str:
    recall = next((r.metrics.get("recall_metric") for r in rows if r.metrics.get("recall_metric")), "recall@5")
    lines = [f"| Strategy | EM | F1 | {recall.capitalize()} | Fine-tuning time (h) | Accelerator-hours | n |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.label} | {_cell(r.metrics, 'em')} | {_cell(r.metrics, 'f1')} | "
                     f"{_cell(r.metrics, 'recall')} | {_hours(r.finetune_s)} | {r.accel_hours:.3f} | "
                     f"{r.metrics.get('n', '-')} |")
    lines.append("")
    lines.append("EM, F1 and recall in %, with bootstrap 95% intervals. Time = wall time of the fine-tuning steps "
                 "(learning-rate grid children included).")
    for r in rows:
        if r.lr_search_s:
            lines.append(f"{r.label}: trained with known learning rates, as the paper counts it; the search that "
                         f"found them (two-phase's grids) took {_hours(r.lr_search_s)} h more.")
    return "\n".join(lines)


def csv_table(rows: list[ResultRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["strategy", "em", "em_lo", "em_hi", "f1", "f1_lo", "f1_hi", "recall", "recall_lo", "recall_hi",
                "recall_metric", "n", "finetune_s", "accelerator_hours", "total_s", "step", "lr_search_s"])
    for r in rows:
        m = r.metrics
        vals = []
        for key in ("em", "f1", "recall"):
            ci = m.get(f"{key}_ci95") or [None, None]
            vals += [m.get(key), ci[0], ci[1]]
        w.writerow([r.label, *vals, m.get("recall_metric"), m.get("n"), f"{r.finetune_s:.1f}",
                    f"{r.accel_hours:.4f}", f"{r.total_s:.1f}", r.step, f"{r.lr_search_s:.1f}"])
    return buf.getvalue()


def lr_curves(store, graph: Graph) -> dict[str, list[dict]]:
    """Every grid selection's curve: learning rate -> validation metrics."""
    out = {}
    for s in graph.steps:
        if s.kind != "select":
            continue
        m = read_manifest(store, StepRef(graph.run_id, s.name))
        if m is not None:
            out[s.name] = m.metrics.get("curve", [])
    return out


def val_loss_curves(store, graph: Graph) -> dict[str, list[list[float]]]:
    """Per strategy, the validation-loss curve ([step, loss], ...) of each model it evaluates: the trained step
    behind its embedder and generator inputs (a grid's selected child), where that step recorded one."""
    out = {}
    for s in graph.steps:
        if s.kind != "evaluate" or not s.label:
            continue
        seen = set()
        for role in ("embedder", "generator"):
            if role not in s.inputs:
                continue
            m = read_selected(store, StepRef(graph.run_id, s.inputs[role]))
            if m is None or m.step in seen or not m.metrics.get("val_loss_curve"):
                continue
            seen.add(m.step)
            out[f"{s.label}: {m.step}"] = m.metrics["val_loss_curve"]
    return out


def _line_figure(path: Path, lines: dict[str, tuple[list, list]], *, xlabel: str, ylabel: str,
                 marker: str = "o", xlog: bool = False) -> None:
    """One axis of named lines (x values, y values), saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (xs, ys) in lines.items():
        ax.plot(xs, ys, marker=marker, label=name)
    if xlog:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def val_loss_figure(curves: dict[str, list[list[float]]], path: Path) -> None:
    """Validation loss against optimizer steps, one line per strategy's trained step (the paper's Figure 4)."""
    _line_figure(path, {name: ([p[0] for p in c], [p[1] for p in c]) for name, c in curves.items()},
                 xlabel="optimizer step", ylabel="validation loss", marker=".")


def selection_verdicts(store, graph: Graph) -> dict[str, str]:
    """Every grid selection's noise verdict: chosen vs runner-up, and whether that is within noise."""
    out = {}
    for s in graph.steps:
        if s.kind != "select":
            continue
        m = read_manifest(store, StepRef(graph.run_id, s.name))
        noise = (m.metrics.get("noise") or {}) if m is not None else {}
        if noise.get("verdict"):
            out[s.name] = str(noise["verdict"])
    return out


def figure(rows: list[ResultRow], path: Path) -> None:
    """Bars of EM, F1, Recall and fine-tuning time per strategy (like the paper's Figure 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.label for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, (key, title) in zip(axes, (("em", "Exact match (%)"), ("f1", "F1 (%)"), ("recall", "Recall@5 (%)"))):
        vals = [100 * (r.metrics.get(key) or 0.0) for r in rows]
        errs = []
        for r in rows:
            ci = r.metrics.get(f"{key}_ci95")
            v = 100 * (r.metrics.get(key) or 0.0)
            errs.append((v - 100 * ci[0], 100 * ci[1] - v) if ci else (0.0, 0.0))
        ax.bar(labels, vals, yerr=list(zip(*errs)) if errs else None, capsize=3, color="#4C72B0")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=45)
    axes[3].bar(labels, [r.finetune_s / 3600 for r in rows], color="#DD8452")
    axes[3].set_title("Fine-tuning time (h)")
    axes[3].tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def curves_figure(curves: dict[str, list[dict]], path: Path) -> None:
    """Validation score against learning rate, one line per grid selection."""
    lines = {}
    for name, curve in curves.items():
        pts = sorted((c["lr"], c.get("val_em", c.get("val_recall"))) for c in curve if c.get("lr") is not None)
        if pts:
            lines[name] = ([p[0] for p in pts], [100 * (p[1] or 0) for p in pts])
    _line_figure(path, lines, xlabel="learning rate", ylabel="validation score (%)", xlog=True)


def write_report(runs: list[tuple[object, Graph]], out_dir: Path) -> dict[str, Path]:
    """Write table.md, table.csv, figure.png, lr_curves.png and curves.json for one or more runs, and
    val_loss.png / val_loss.json when a strategy's trained steps recorded validation loss."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[ResultRow] = []
    curves: dict[str, list[dict]] = {}
    losses: dict[str, list[list[float]]] = {}
    verdicts: dict[str, str] = {}
    for store, graph in runs:
        rows += collect_rows(store, graph)
        curves.update({f"{graph.run_id}/{k}": v for k, v in lr_curves(store, graph).items()})
        losses.update({f"{graph.run_id}/{k}": v for k, v in val_loss_curves(store, graph).items()})
        verdicts.update({f"{graph.run_id}/{k}": v for k, v in selection_verdicts(store, graph).items()})
    rows = order_rows(rows)
    paths = {"markdown": out_dir / "table.md", "csv": out_dir / "table.csv", "figure": out_dir / "figure.png",
             "curves": out_dir / "lr_curves.png", "curves_json": out_dir / "curves.json"}
    selections = ["", "Grid selections (chosen vs runner-up, paired bootstrap over validation questions):", *(
        f"- {name}: {verdict}" for name, verdict in verdicts.items())] if verdicts else []
    paths["markdown"].write_text("\n".join([markdown_table(rows), *selections]) + "\n")
    paths["csv"].write_text(csv_table(rows))
    paths["curves_json"].write_text(json.dumps(curves, indent=2))
    if rows:
        figure(rows, paths["figure"])
    curves_figure(curves, paths["curves"])
    if losses:
        paths["val_loss"], paths["val_loss_json"] = out_dir / "val_loss.png", out_dir / "val_loss.json"
        paths["val_loss_json"].write_text(json.dumps(losses, indent=2))
        val_loss_figure(losses, paths["val_loss"])
    return paths
