"""`rag-jobs run baseline` with `retriever: <service URL>` gives the results of the local index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from service_helpers import TOKEN, ServerThread


def _run(tmp_path: Path, store: Path, config: dict) -> subprocess.CompletedProcess:
    path = tmp_path / f"cfg-{len(list(tmp_path.glob('cfg-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    # --in-process: both runs' steps in one process each (tests/cli covers the process per step)
    return subprocess.run([sys.executable, "-m", "rag_jobs.cli", "run", "baseline", "--in-process", "--config",
                           str(path), "--store", str(store)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "RAG_JOBS_INDEX_TOKEN": TOKEN})


def _predictions(store: Path) -> tuple[list[dict], dict]:
    manifests = list(store.glob("runs/*/evaluate/_MANIFEST.json"))
    assert len(manifests) == 1
    m = json.loads(manifests[0].read_text())
    key = m["files"]["predictions.jsonl"]["key"]
    rows = [json.loads(x) for x in (store / key).read_text().splitlines()]
    return rows, m["metrics"]


@pytest.mark.slow
def test_service_retriever_matches_local_index(tmp_path, tiny_embedder, tiny_generator):
    from rag_jobs.index.service import create_app

    base = {"data": {"dataset": "demo", "limit": 120}, "embedder": tiny_embedder, "generator": tiny_generator,
            "device": "cpu", "evaluate": {"limit": 8, "max_new_tokens": 4}}
    local_store = tmp_path / "local"
    res = _run(tmp_path, local_store, base)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    (index_step,) = list(local_store.glob("runs/*/build-index"))
    local_rows, local_metrics = _predictions(local_store)

    run_uri = f"file://{index_step}"
    with ServerThread(create_app(run_uri, token=TOKEN)) as server:
        remote_store = tmp_path / "remote"
        cfg = {**base, "evaluate": {**base["evaluate"], "retriever": server.url}}
        res = _run(tmp_path, remote_store, cfg)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    assert "retrieving through the index service" in res.stdout
    remote_rows, remote_metrics = _predictions(remote_store)
    assert remote_rows == local_rows
    for key in ("em", "f1", "recall", "n"):
        assert remote_metrics[key] == local_metrics[key], key
