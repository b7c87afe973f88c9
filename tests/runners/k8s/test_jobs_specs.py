"""Every run specification in jobs/ parses, builds the graph its header command names, and renders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag_jobs.cli import load_settings
from rag_jobs.runners.k8s.config import load_cluster_config
from rag_jobs.runners.k8s.render import plan_units, render
from rag_jobs.strategies import build_graph

JOBS = Path(__file__).resolve().parents[3] / "jobs"
SPECS = sorted(p for p in JOBS.rglob("*.yaml") if p.name != "cluster-8xa10.yaml")
COMMAND = re.compile(r"^# rag-jobs (run|submit) (\S+) --config (\S+)")


def _header(path: Path) -> tuple[str, str]:
    for line in path.read_text().splitlines():
        m = COMMAND.match(line)
        if m:
            return m.group(2), m.group(3)
    raise AssertionError(f"{path}: no '# rag-jobs run|submit STRATEGY --config ...' header")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(JOBS)))
def test_spec_builds_and_renders(path):
    strategy, named = _header(path)
    assert JOBS.parent / named == path  # the header's command names this very file
    flags = {"embed_lr": 1e-5, "gen_lr": 1e-4} if strategy.startswith("rag-") else {}  # what --from-run gives
    settings = load_settings(path, flags)
    graph = build_graph(strategy, settings)
    cluster = load_cluster_config(JOBS / "cluster-8xa10.yaml")
    jobs = render(graph, cluster, "s3://my-bucket/rag")
    assert len(jobs) == len(plan_units(graph))


@pytest.mark.parametrize("path", sorted((JOBS / "paper").glob("*.yaml")), ids=lambda p: p.name)
def test_paper_setup_uses_eight_gpus_and_a_sharded_ivf_index(path):
    strategy, _ = _header(path)
    flags = {"embed_lr": 1e-5, "gen_lr": 1e-4} if strategy.startswith("rag-") else {}
    graph = build_graph(strategy, load_settings(path, flags))
    cluster = load_cluster_config(JOBS / "cluster-8xa10.yaml")
    jobs = {j["metadata"]["labels"]["rag-jobs.io/step"]: j for j in render(graph, cluster, "s3://my-bucket/rag")}
    shards = jobs["index-shard"]["spec"]
    assert shards["completionMode"] == "Indexed" and shards["completions"] == 16
    assert graph.step("build-index").config["search_params"] == "nprobe=128"
    for step in graph.steps:
        if step.kind in ("finetune-embed", "finetune-gen", "joint"):
            assert step.gpus == 8
    trainers = [j for j in jobs.values() if "torchrun" in j["spec"]["template"]["spec"]["containers"][0]["command"]]
    assert trainers or strategy == "baseline"
    for job in jobs.values():
        assert {"name": "data", "mountPath": "/data", "readOnly": True} in \
            job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
