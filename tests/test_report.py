"""Time accounting as the paper counts it: RAG-Seq. / RAG-Tok. cost their own joint step with known learning
rates; the two-phase grids that found those rates are a separate figure, not part of their row."""

from __future__ import annotations

import json

from rag_jobs.artifacts import StepRef, commit_dir, open_store
from rag_jobs.report import collect_rows, markdown_table
from rag_jobs.strategies import RunSettings, build_graph


def test_joint_rows_count_their_own_step_and_name_the_borrowed_search(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    graph = build_graph("compare", RunSettings(embed_lr_grid=(1e-5,), gen_lr_grid=(1e-4,)), run_id="times")
    wall = {s.name: 10.0 * (i + 1) for i, s in enumerate(graph.steps)}
    for s in graph.steps:
        folder = tmp_path / "out" / s.name
        folder.mkdir(parents=True)
        (folder / "x.json").write_text(json.dumps({}))
        commit_dir(store, StepRef("times", s.name), folder, meta={"wall_s": wall[s.name], "metrics": {"em": 0.5}})
    rows = {r.label: r for r in collect_rows(store, graph)}
    tok = rows["RAG-Tok."]
    assert tok.finetune_s == wall["joint-token"]  # the joint step alone: its rates were known
    two_phase = [s.name for s in graph.steps if s.name.startswith(("phase1-gen", "phase2-", "select-phase"))]
    assert tok.lr_search_s == sum(wall[n] for n in two_phase)
    assert rows["2-Phase"].finetune_s == sum(wall[n] for n in two_phase)  # the score pool counts as training
    assert rows["2-Phase"].lr_search_s == 0.0 and rows["Indp."].lr_search_s == 0.0
    assert "RAG-Tok.: trained with known learning rates" in markdown_table(list(rows.values()))
