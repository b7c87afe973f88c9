"""Every fine-tuning strategy through the CLI, with tiny models: graphs run, grids select, rows fill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["--dataset", "demo", "--limit", "60", "--eval-limit", "4", "--train-limit", "8", "--val-limit", "4",
        "--batch-size", "4", "--device", "cpu"]


def rag_jobs(*args: str, cwd: Path, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_jobs.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=None if env is None else {**os.environ, **env})


@pytest.fixture()
def tiny(tiny_embedder, tiny_generator):
    return [*TINY, "--embedder", tiny_embedder, "--generator", tiny_generator]


def _manifest(store: Path, step: str) -> dict:
    (run,) = list((store / "runs").iterdir())
    return json.loads((run / step / "_MANIFEST.json").read_text())


def _assert_tensorboard_curves(store: Path) -> None:
    """Every trained step committed TensorBoard events: loss and learning rate per step, validation at the end."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run,) = list((store / "runs").iterdir())
    trained = 0
    for m in run.glob("*/_MANIFEST.json"):
        manifest = json.loads(m.read_text())
        if manifest["extra"]["kind"] not in ("finetune-embed", "finetune-gen", "joint"):
            continue
        trained += 1
        events = [e["key"] for name, e in manifest["files"].items() if name.startswith("tensorboard/events.")]
        assert events, manifest["step"]
        acc = EventAccumulator(str(store / events[0]))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert "train/loss" in tags and any(t.startswith("lr/") for t in tags) and "validation/em" in tags, tags
        assert len(acc.Scalars("train/loss")) == manifest["metrics"]["train_steps"], manifest["step"]
    assert trained >= 4


@pytest.mark.slow
def test_two_phase_grid_selects_and_feeds_rag_token(tmp_path, tiny, monkeypatch):
    store = tmp_path / "store"
    # --in-process: every step's entrypoint in the CLI's own process (no per-step start-up); the
    # subprocess-per-step path runs in tests/cli/test_run_baseline.py. Validation loss every step, MLflow too.
    mlruns = (tmp_path / "mlruns").as_uri()
    res = rag_jobs("run", "two-phase", "--in-process", "--store", str(store), "--lr-grid", "1e-4,1e-3", *tiny,
                   "--validate-every", "1", "--track", "mlflow", cwd=tmp_path,
                   env={"MLFLOW_TRACKING_URI": mlruns, "MLFLOW_ALLOW_FILE_STORE": "true"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "2-Phase" in res.stdout
    sel1, sel2 = _manifest(store, "select-phase1"), _manifest(store, "select-phase2")
    assert sel1["extra"]["selected"].startswith("phase1-gen.lr-")
    assert len(sel2["metrics"]["curve"]) == 2
    pool = _manifest(store, "phase2-pool")  # cached phase 2: one generator pass per pooled pair, for the whole grid
    assert pool["metrics"]["pool_questions"] == 8 and pool["metrics"]["pool_k"] == 10
    child = _manifest(store, sel2["extra"]["selected"])
    assert child["inputs"]["pool"]["step"] == "phase2-pool"
    assert child["metrics"]["pool_hits"] + child["metrics"]["pool_fallbacks"] == 8 * 5
    assert pool["metrics"]["pool_validation_answers"] == 4  # the children reuse them where top-k is unchanged
    assert 0 <= child["metrics"]["val_answers_reused"] <= 4
    ev = _manifest(store, "evaluate-two-phase")
    assert ev["metrics"]["models"]["adapter"] == sel1["extra"]["selected"]
    assert sel2["extra"]["selected"] in ev["metrics"]["models"]["embedder"]
    (run,) = list((store / "runs").iterdir())
    rep = rag_jobs("report", str(run), "--out", str(tmp_path / "report"), cwd=tmp_path, timeout=300)
    assert rep.returncode == 0, rep.stderr
    assert "| 2-Phase |" in (tmp_path / "report" / "table.md").read_text()
    assert (tmp_path / "report" / "table.csv").read_text().splitlines()[1].startswith("2-Phase,")
    for png in ("figure.png", "lr_curves.png"):
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"
    curves = json.loads((tmp_path / "report" / "curves.json").read_text())
    assert {k.split("/")[1] for k in curves} == {"select-phase1", "select-phase2"}
    _assert_tensorboard_curves(store)
    # the validation-loss curve (Figure 4) of each model 2-Phase evaluates: one point per optimizer step
    losses = json.loads((tmp_path / "report" / "val_loss.json").read_text())
    assert {k.split("/", 1)[1] for k in losses} == {f"2-Phase: {sel1['extra']['selected']}",
                                                    f"2-Phase: {sel2['extra']['selected']}"}
    for key, curve in losses.items():
        child = _manifest(store, key.split(": ")[1])
        assert [s for s, _ in curve] == list(range(1, child["metrics"]["train_steps"] + 1))
    assert (tmp_path / "report" / "val_loss.png").read_bytes()[:4] == b"\x89PNG"
    # MLflow: one finished run per trained step, with the same loss curve as its TensorBoard events
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(mlruns)
    runs = client.search_runs([client.get_experiment_by_name("rag-jobs").experiment_id])
    trained = {m.parent.name: json.loads(m.read_text()) for m in run.glob("*/_MANIFEST.json")
               if json.loads(m.read_text())["extra"]["kind"] in ("finetune-embed", "finetune-gen", "joint")}
    assert {r.data.tags["rag_jobs.step"] for r in runs} == set(trained)
    for r in runs:
        assert r.info.status == "FINISHED" and r.data.tags["rag_jobs.run"] == run.name
        steps = trained[r.data.tags["rag_jobs.step"]]["metrics"]["train_steps"]
        assert len(client.get_metric_history(r.info.run_id, "train/loss")) == steps
        assert "validation/em" in r.data.metrics and "validation/loss" in r.data.metrics

    token_store = tmp_path / "store2"
    res = rag_jobs("run", "rag-token", "--in-process", "--store", str(token_store), "--from-run", str(run), *tiny,
                   cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    joint = _manifest(token_store, "joint-token")
    assert joint["metrics"]["lr"] == sel2["metrics"]["lr"] and joint["metrics"]["gen_lr"] == sel1["metrics"]["lr"]
    assert "RAG-Tok." in res.stdout


@pytest.mark.slow
def test_two_phase_with_a_concat_phase1_reuses_ft_gen_and_feeds_rag_token(tmp_path, tiny):
    """`--phase1 concat`: the phase-1 generator is the Ft. Gen. grid's, shared with an earlier ft-gen run."""
    store = tmp_path / "store"
    # --in-process throughout (no per-step start-up): tests/cli/test_run_baseline.py runs each step as its own
    # process
    res = rag_jobs("run", "ft-gen", "--in-process", "--store", str(store), "--lr-grid", "1e-4,1e-3", *tiny,
                   cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    res = rag_jobs("run", "two-phase", "--in-process", "--phase1", "concat", "--store", str(store), "--lr-grid",
                   "1e-4,1e-3", *tiny, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "reuse select-gen from run ft-gen-" in res.stdout and "2-Phase" in res.stdout
    (run,) = [r for r in (store / "runs").iterdir() if r.name.startswith("two-phase-")]
    ev = json.loads((run / "evaluate-two-phase" / "_MANIFEST.json").read_text())
    assert ev["metrics"]["models"]["adapter"].startswith("finetune-gen.lr-")
    res = rag_jobs("run", "rag-token", "--in-process", "--store", str(tmp_path / "s2"), "--from-run", str(run),
                   *tiny, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    sel_gen = json.loads((run / "select-gen" / "_MANIFEST.json").read_text())
    assert _manifest(tmp_path / "s2", "joint-token")["metrics"]["gen_lr"] == sel_gen["metrics"]["lr"]


@pytest.mark.slow
def test_independent_with_a_failing_grid_child(tmp_path, tiny):
    """A diverging child is reported by name; the selection keeps the others."""
    store = tmp_path / "store"
    res = rag_jobs("run", "independent", "--in-process", "--store", str(store), "--lr-grid", "1e-4,1e30",
                   "--select-by", "recall", "--hard-negatives", "2", *tiny, cwd=tmp_path)
    assert res.returncode != 0
    assert "finetune-embed.lr-1e30" in res.stderr or "finetune-gen.lr-1e30" in res.stderr, res.stderr
    sel = _manifest(store, "select-gen")
    assert sel["extra"]["selected"] == "finetune-gen.lr-1e-04"
    embed = _manifest(store, "finetune-embed.lr-1e-04")  # trained with 2 hard negatives per question
    assert embed["metrics"]["hard_negatives"] == 2 and embed["extra"]["config"]["hard_negatives"] == 2
    assert "Indp." in res.stdout


def test_rag_sequence_needs_learning_rates(tmp_path, tiny):
    res = rag_jobs("run", "rag-sequence", "--store", str(tmp_path / "s"), *tiny, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "--embed-lr" in res.stderr


def test_in_process_runs_one_step_at_a_time(tmp_path, tiny):
    res = rag_jobs("run", "baseline", "--in-process", "--parallel", "2", "--store", str(tmp_path / "s"), *tiny,
                   cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "--in-process" in res.stderr and "--parallel 2" in res.stderr
