"""SIGKILL a training step part-way; running it again resumes and ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml


def _config(tmp_path: Path, tiny_embedder: str, tiny_generator: str) -> Path:
    cfg = {
        "data": {"dataset": "demo", "limit": 400},
        "embedder": tiny_embedder,
        "generator": tiny_generator,
        "device": "cpu",
        "gen_lr_grid": [1e-3],
        "evaluate": {"limit": 2},
        "train": {"batch_size": 2, "train_limit": 120, "checkpoint_every": 4, "log_every": 10,
                  "validation": {"limit": 2, "select_by": "recall"}},
    }
    path = tmp_path / "ft-gen.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(store: Path, config: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_jobs.cli", "run", "ft-gen", "--config", str(config),
                           "--store", str(store)], cwd=cwd, capture_output=True, text=True, timeout=900)


def _adapter_sha(store: Path, step: str) -> str:
    (run,) = list((store / "runs").iterdir())
    files = json.loads((run / step / "_MANIFEST.json").read_text())["files"]
    return files["adapter/adapter_model.safetensors"]["sha256"]


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path, tiny_embedder, tiny_generator):
    config = _config(tmp_path, tiny_embedder, tiny_generator)
    clean = tmp_path / "clean"
    res = _run(clean, config, tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    step = "finetune-gen.lr-1e-03"
    expected = _adapter_sha(clean, step)

    store = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "rag_jobs.cli", "run", "ft-gen", "--config", str(config),
                             "--store", str(store)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    killed_after = None
    while time.time() < deadline and proc.poll() is None:
        ckpts = list(store.glob(f"runs/*/{step}/checkpoints/*/_MANIFEST.json"))
        if ckpts:
            killed_after = max(int(p.parent.name) for p in ckpts)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert killed_after is not None, "the step finished before a checkpoint was seen"
    assert not list(store.glob(f"runs/*/{step}/_MANIFEST.json")), "killed step must not be committed"

    res = _run(store, config, tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    assert "resumed from checkpoint at step" in res.stdout
    assert _adapter_sha(store, step) == expected
