"""An honest grid selection: the chosen child against the runner-up, paired over validation questions, says
when the choice is within noise (the demo's ft-embed grid: EM 6 vs 3 questions of 60 is)."""

from __future__ import annotations

import json

import pytest

from rag_jobs.artifacts import RunRef, StepRef, commit_dir, open_store, read_manifest
from rag_jobs.artifacts.layout import VALIDATION_FILE, run_uri
from rag_jobs.jobs import select
from rag_jobs.runners.schedule import publish_graph
from rag_jobs.steps.selection import noise_check
from rag_jobs.strategies import RunSettings, build_graph


def _scores(em_right: set[int], recall: list[float]) -> dict[str, dict]:
    return {f"q{i}": {"id": f"q{i}", "em": float(i in em_right), "f1": float(i in em_right), "recall": recall[i]}
            for i in range(60)}


# EM: the 1e-5 child is right on 6 questions, the 1e-4 child on 3 of them; 1e-4 retrieves better
LOW = _scores({0, 1, 2, 3, 4, 5}, [0.78] * 60)
HIGH = _scores({0, 1, 2}, [0.85] * 60)


def test_a_few_questions_apart_is_within_noise():
    noise = noise_check({"step": "a", "lr": 1e-5}, {"step": "b", "lr": 1e-4}, LOW, HIGH, "em")
    assert noise["within_noise"] and noise["n"] == 60 and noise["diff"] == pytest.approx(0.05)
    assert noise["verdict"] == "1e-5 vs 1e-4: EM 0.10 vs 0.05, within noise at n=60; F1 0.10 vs 0.05; R@5 0.78 vs 0.85"
    clear = noise_check({"step": "a", "lr": 1e-5}, {"step": "b", "lr": 1e-4}, _scores(set(range(40)), [0.5] * 60),
                        HIGH, "em")
    assert not clear["within_noise"] and "outside noise" in clear["verdict"]


def test_the_select_step_records_the_verdict(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    graph = build_graph("ft-embed", RunSettings(embed_lr_grid=(1e-5, 1e-4)), run_id="noise")
    publish_graph(store, graph)
    for lr, scores, em in ((1e-5, LOW, 0.10), (1e-4, HIGH, 0.05)):
        step = f"finetune-embed.lr-{lr:.0e}"
        folder = tmp_path / step
        folder.mkdir()
        (folder / VALIDATION_FILE).write_text("".join(json.dumps(r) + "\n" for r in scores.values()))
        commit_dir(store, StepRef("noise", step), folder,
                   meta={"metrics": {"lr": lr, "val_em": em, "val_f1": em, "val_recall": 0.8}})
    with pytest.raises(SystemExit) as done:
        select.main(["--run", run_uri(store.uri, RunRef("noise")), "--step", "select-embed"])
    assert done.value.code == 0
    m = read_manifest(store, StepRef("noise", "select-embed"))
    assert m.metrics["selected"] == "finetune-embed.lr-1e-05"
    assert m.metrics["noise"]["within_noise"] and m.metrics["noise"]["runner_up"] == "finetune-embed.lr-1e-04"
    assert "within noise at n=60" in m.metrics["noise"]["verdict"]
