"""Every retrieving step kind through a local index service gives the results of the local store.

`compare` (one learning rate) runs finetune-embed, finetune-gen, joint (token and sequence, both models and
each phase of two-phase), the phase-2 score pool, each training step's validation and evaluate. Run once
with the index memory-mapped in each step and once with `--retriever <URL>` pointing at `rag-jobs serve`
(the real app, over HTTP) of the first run's index: the same run id (the retriever is not in any step's
hash), and every step's metrics and every prediction equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import TOKEN, ServerThread

TINY = ["--dataset", "demo", "--limit", "60", "--eval-limit", "4", "--train-limit", "8", "--val-limit", "4",
        "--batch-size", "4", "--device", "cpu", "--lr-grid", "1e-3"]
TIMING = ("_s", "per_s", "_at")


def _run(tmp_path: Path, store: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_jobs.cli", "run", "compare", "--in-process", "--store",
                           str(store), *extra], cwd=tmp_path, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "RAG_JOBS_INDEX_TOKEN": TOKEN})


def _steps(store: Path) -> tuple[str, dict[str, dict]]:
    (run,) = list((store / "runs").iterdir())
    out = {}
    for m in sorted(run.glob("*/_MANIFEST.json")):
        manifest = json.loads(m.read_text())
        metrics = {k: v for k, v in manifest["metrics"].items() if not k.endswith(TIMING)}
        files = {name: e["sha256"] for name, e in manifest["files"].items() if name.endswith(".jsonl")}
        out[m.parent.name] = {"kind": manifest["extra"]["kind"], "metrics": metrics, "files": files}
    return run.name, out


@pytest.mark.slow
def test_every_retrieving_step_through_the_service_matches_the_local_store(tmp_path, tiny_embedder, tiny_generator):
    from rag_jobs.index.service import create_app

    tiny = [*TINY, "--embedder", tiny_embedder, "--generator", tiny_generator]
    local_store = tmp_path / "local"
    res = _run(tmp_path, local_store, *tiny)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    run_id, local = _steps(local_store)
    kinds = {s["kind"] for s in local.values()}
    assert {"finetune-embed", "finetune-gen", "joint", "score-pool", "evaluate"} <= kinds

    with ServerThread(create_app(f"file://{local_store}/runs/{run_id}/build-index", token=TOKEN)) as server:
        remote_store = tmp_path / "remote"
        res = _run(tmp_path, remote_store, *tiny, "--retriever", server.url)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert res.stdout.count("retrieving through the index service") >= len(
        [s for s in local.values() if s["kind"] in ("finetune-embed", "finetune-gen", "joint", "score-pool",
                                                    "evaluate")])
    remote_id, remote = _steps(remote_store)
    assert remote_id == run_id
    assert remote.keys() == local.keys()
    for name, step in local.items():
        assert remote[name]["metrics"] == step["metrics"], name
        assert remote[name]["files"] == step["files"], name  # predictions, validation rows
