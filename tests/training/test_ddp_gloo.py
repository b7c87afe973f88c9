"""The same training entrypoints under torchrun (two CPU processes, gloo) end where one process ends."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from rag_jobs.artifacts import RunRef, open_store, run_uri
from rag_jobs.runners.local import publish_graph, step_command
from rag_jobs.strategies import RunSettings, build_graph


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_step(tmp_path, strategy: str, settings: dict, kind: str, nproc: int) -> tuple[dict, dict]:
    """Commit the corpus, splits and index, then run the graph's `kind` step in `nproc` processes; (metrics,
    trained weights)."""
    graph = build_graph(strategy, RunSettings.model_validate(settings), run_id=f"{strategy}-{nproc}")
    store = open_store(str(tmp_path / f"store-{nproc}"))
    publish_graph(store, graph)
    uri = run_uri(store.uri, RunRef(graph.run_id))
    for name in ("corpus", "splits", "build-index"):
        res = subprocess.run(step_command(name, uri, name), capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
    step = next(s for s in graph.steps if s.kind == kind)
    module = {"finetune-embed": "rag_jobs.jobs.finetune_embed", "joint": "rag_jobs.jobs.joint"}[kind]
    if nproc == 1:
        cmd = step_command(kind, uri, step.name)
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
               f"--master_port={_free_port()}", "-m", module, "--", "--run", uri, "--step", step.name]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    manifest = json.loads(store.get_bytes(f"runs/{graph.run_id}/{step.name}/_MANIFEST.json"))
    folder = tmp_path / f"store-{nproc}" / "runs" / graph.run_id / step.name / manifest["attempt"]
    weights = {}
    for name in manifest["files"]:
        if name.endswith(".safetensors"):
            weights.update({f"{name}:{k}": v for k, v in load_file(str(folder / name)).items()})
    return manifest["metrics"], weights


def _assert_same_training(single, ddp) -> None:
    (m1, w1), (m2, w2) = single, ddp
    assert m1["world_size"] == 1 and m2["world_size"] == 2
    assert m1["train_steps"] == m2["train_steps"] > 1
    # the logged loss of a torchrun step is the whole batch's (all-reduced), so it matches one process's
    assert m2["train_loss_first"] == pytest.approx(m1["train_loss_first"], rel=1e-4)
    assert m2["train_loss_last"] == pytest.approx(m1["train_loss_last"], rel=1e-3)
    for key in ("val_recall", "val_em", "val_f1"):
        if key in m1:
            assert m2[key] == pytest.approx(m1[key], abs=1e-9), key
    assert w1.keys() == w2.keys() and w1
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], atol=2e-5, rtol=1e-3, msg=k)


BASE = {"data": {"dataset": "demo", "limit": 100}, "device": "cpu"}


@pytest.mark.slow
def test_finetune_embed_under_torchrun_matches_one_process(tmp_path, tiny_embedder_no_dropout, tiny_generator):
    """Batch 5 over 2 ranks (3 + 2 questions): weighted rank losses and whole-batch negatives make it exact."""
    settings = {**BASE, "embedder": tiny_embedder_no_dropout, "generator": tiny_generator, "embed_lr": 1e-3,
                "train": {"batch_size": 5, "train_limit": 20, "validation": {"limit": 8, "select_by": "recall"}}}
    single = _run_step(tmp_path, "ft-embed", settings, "finetune-embed", 1)
    ddp = _run_step(tmp_path, "ft-embed", settings, "finetune-embed", 2)
    _assert_same_training(single, ddp)
    assert "embedder/model.safetensors:" in next(iter(single[1]))


@pytest.mark.slow
def test_joint_rag_token_under_torchrun_matches_one_process(tmp_path, tiny_embedder_no_dropout, tiny_generator):
    settings = {**BASE, "embedder": tiny_embedder_no_dropout, "generator": tiny_generator, "embed_lr": 1e-3,
                "gen_lr": 1e-3,
                "train": {"batch_size": 4, "train_limit": 8, "k": 3, "lora_dropout": 0.0, "max_prompt_tokens": 128,
                          "validation": {"limit": 4, "max_new_tokens": 4}}}
    single = _run_step(tmp_path, "rag-token", settings, "joint", 1)
    ddp = _run_step(tmp_path, "rag-token", settings, "joint", 2)
    _assert_same_training(single, ddp)
    assert any(k.startswith("adapter/") for k in single[1]) and any(k.startswith("embedder/") for k in single[1])
