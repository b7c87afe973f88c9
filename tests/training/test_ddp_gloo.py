"""The same training entrypoint under torchrun: two CPU processes with the gloo backend."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from rag_jobs.artifacts import RunRef, open_store, run_uri
from rag_jobs.runners.local import publish_graph, step_command
from rag_jobs.strategies import RunSettings, build_graph


@pytest.mark.slow
def test_finetune_embed_under_torchrun_two_processes(tmp_path, tiny_embedder, tiny_generator):
    settings = RunSettings.model_validate({
        "data": {"dataset": "demo", "limit": 100}, "embedder": tiny_embedder, "generator": tiny_generator,
        "device": "cpu", "embed_lr": 1e-4,
        "train": {"batch_size": 4, "train_limit": 16, "validation": {"limit": 4, "select_by": "recall"}},
    })
    graph = build_graph("ft-embed", settings)
    store = open_store(str(tmp_path / "store"))
    publish_graph(store, graph)
    uri = run_uri(store.uri, RunRef(graph.run_id))
    res = subprocess.run(step_command("build-index", uri, "build-index"), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    child = next(s.name for s in graph.steps if s.kind == "finetune-embed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={port}",
           "-m", "rag_jobs.jobs.finetune_embed", "--", "--run", uri, "--step", child]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    manifest = json.loads(store.get_bytes(f"runs/{graph.run_id}/{child}/_MANIFEST.json"))
    assert manifest["metrics"]["world_size"] == 2
    assert manifest["metrics"]["train_steps"] == 4
    assert "embedder/model.safetensors" in manifest["files"]
