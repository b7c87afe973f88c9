"""The paper's QLoRA path end to end on the CPU (bitsandbytes NF4, float32 compute), with the tiny models:
finetune-gen, the phase-1 child and the phase-2 pool of two-phase, joint training of both models, and evaluate
on the 4-bit base with the unmerged adapter. Every manifest records the quantization the step ran with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bitsandbytes")

TINY = ["--dataset", "demo", "--limit", "60", "--eval-limit", "4", "--train-limit", "8", "--val-limit", "4",
        "--batch-size", "4", "--device", "cpu", "--quantization", "nf4"]


def rag_jobs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_jobs.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def _manifests(store: Path, prefix: str) -> dict[str, dict]:
    (run,) = [r for r in (store / "runs").iterdir() if r.name.startswith(prefix)]
    return {p.parent.name: json.loads(p.read_text()) for p in run.glob("*/_MANIFEST.json")}


@pytest.mark.slow
def test_ft_gen_two_phase_and_rag_token_in_4bit(tmp_path, tiny_embedder, tiny_generator):
    store = tmp_path / "store"
    tiny = [*TINY, "--store", str(store), "--embedder", tiny_embedder, "--generator", tiny_generator]
    res = rag_jobs("run", "ft-gen", "--in-process", "--lr-grid", "1e-3", *tiny, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    steps = _manifests(store, "ft-gen-")
    child = steps["finetune-gen.lr-1e-03"]
    assert child["extra"]["quantization"] == "nf4" and child["extra"]["config"]["quantization"] == "nf4"
    assert child["metrics"]["train_steps"] == 2
    ev = steps["evaluate-ft-gen"]
    assert ev["extra"]["quantization"] == "nf4" and ev["metrics"]["models"]["adapter"] == "finetune-gen.lr-1e-03"

    res = rag_jobs("run", "two-phase", "--in-process", "--lr-grid", "1e-3", *tiny, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    steps = _manifests(store, "two-phase-")
    for name in ("phase1-gen.lr-1e-03", "phase2-pool", "phase2-embed.lr-1e-03", "evaluate-two-phase"):
        assert steps[name]["extra"]["quantization"] == "nf4", name
    assert steps["phase2-pool"]["metrics"]["pool_questions"] == 8
    assert steps["evaluate-two-phase"]["metrics"]["models"]["adapter"] == "phase1-gen.lr-1e-03"

    res = rag_jobs("run", "rag-token", "--in-process", "--embed-lr", "1e-4", "--gen-lr", "1e-3", *tiny,
                   cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    joint = _manifests(store, "rag-token-")["joint-token"]
    assert joint["extra"]["quantization"] == "nf4" and joint["metrics"]["train_steps"] == 2
    assert "RAG-Tok." in res.stdout
