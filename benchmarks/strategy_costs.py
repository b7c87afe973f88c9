"""Cost ratios of a finished `compare` run: two-phase / independent, and compare / its strategies run apart.

    python benchmarks/strategy_costs.py RUN_URI [--two-phase RUN_URI ...] [--out FILE]

- two_phase_over_independent: fine-tuning wall time of the 2-Phase row over the Indp. row (grid children
  included; the paper measured 2.2x on HotPotQA and 2.9x on PopQA; goal <= 1.3x).
- compare_over_apart: the wall time of every step of the compare run (each computed once, shared) over the
  sum, over its strategies, of every step each one needs (what running them one by one would compute);
  goal <= 0.6x. Both come from the committed manifests (wall_s of each step).
- --two-phase RUN: the 2-Phase row of another two-phase run on the same data and store (for example one made
  with `--phase1 concat`, whose phase 1 reuses the compare's Ft. Gen. grid) over the same Indp. row; its
  reused steps count with the wall time they took where they were computed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run URI of a finished compare run: <store-uri>/runs/<run-id>")
    ap.add_argument("--two-phase", action="append", default=[], metavar="RUN",
                    help="a two-phase run on the same data: its 2-Phase row over the compare's Indp. row")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from rag_jobs.artifacts import StepRef, open_store, parse_run_uri, read_manifest
    from rag_jobs.jobs.common import load_graph
    from rag_jobs.report import collect_rows

    def open_run(run: str):
        store_uri, ref = parse_run_uri(run if "://" in run else Path(run).resolve().as_uri())
        store = open_store(store_uri)
        return store, load_graph(store, ref)

    store, graph = open_run(args.run)
    if graph.strategy != "compare":
        raise SystemExit(f"strategy_costs: {args.run} is a {graph.strategy} run, not compare")
    walls = {}
    for s in graph.steps:
        m = read_manifest(store, StepRef(graph.run_id, s.name))
        if m is None:
            raise SystemExit(f"strategy_costs: step {s.name} is not committed")
        walls[s.name] = float(m.wall_s or 0.0)
    rows = {r.label: r for r in collect_rows(store, graph)}
    two_phase, indp = rows["2-Phase"].finetune_s, rows["Indp."].finetune_s
    together = sum(walls.values())
    apart = sum(r.total_s for r in rows.values())
    others = {}
    for run in args.two_phase:
        other_store, other = open_run(run)
        if other.strategy != "two-phase":
            raise SystemExit(f"strategy_costs: --two-phase {run} is a {other.strategy} run")
        (row,) = [r for r in collect_rows(other_store, other) if r.label == "2-Phase"]
        pool = next((st.config.get("pool") for st in other.steps if st.name == "phase2-pool"), 0)
        others[run] = {"phase1": other.settings.get("phase1", "rag"), "phase2_pool": pool,
                       "finetune_s": row.finetune_s,
                       "two_phase_over_independent": row.finetune_s / indp, "metrics": {
                           k: row.metrics.get(k) for k in ("em", "f1", "recall", "em_ci95", "f1_ci95", "recall_ci95")}}
    write_result("strategy_costs", {
        "run": args.run,
        "finetune_s": {k: r.finetune_s for k, r in rows.items()},
        "total_s": {k: r.total_s for k, r in rows.items()},
        "two_phase_over_independent": two_phase / indp, "goal_two_phase": "<= 1.3 (paper: 2.2 HotPotQA, 2.9 PopQA)",
        "compare_s": together, "apart_s": apart, "compare_over_apart": together / apart, "goal_compare": "<= 0.6",
        "step_wall_s": walls,
        "other_two_phase_runs": others,
    }, args.out)


if __name__ == "__main__":
    main()
