"""A sharded build-index (slices encoded by separate processes, then merged) equals the unsharded index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag_jobs.config import BuildIndexConfig
from rag_jobs.errors import ConfigError
from rag_jobs.index import load_index
from rag_jobs.runners.k8s.render import plan_units
from rag_jobs.steps.index import shard_bounds
from rag_jobs.strategies import RunSettings, build_graph


def _small_dataset(tmp_path: Path) -> str:
    """The first 400 passages of the demo set (and their questions), as a jsonl:DIR dataset."""
    from rag_jobs.data import Dataset, build_demo_dataset, write_jsonl_dataset

    demo = build_demo_dataset()
    corpus = demo.corpus[:400]
    keep = {p.id for p in corpus}
    examples = [e for e in demo.examples if set(e.gold_passage_ids) <= keep]
    root = write_jsonl_dataset(Dataset("small", examples, corpus, True), tmp_path / "small")
    return f"jsonl:{root}"


def _run_index(store: Path, embedder: str, dataset: str, *extra: str) -> Path:
    res = subprocess.run([sys.executable, "-m", "rag_jobs.cli", "run", "index", "--dataset", dataset, "--embedder",
                          embedder, "--device", "cpu", "--store", str(store), *extra],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (run,) = list((store / "runs").iterdir())
    manifest = json.loads((run / "build-index" / "_MANIFEST.json").read_text())
    return run / "build-index" / manifest["attempt"]


def test_three_shards_in_three_processes_build_the_same_index(tmp_path, tiny_embedder):
    dataset = _small_dataset(tmp_path)
    whole = load_index(_run_index(tmp_path / "one", tiny_embedder, dataset))
    sharded_dir = _run_index(tmp_path / "three", tiny_embedder, dataset, "--index-shards", "3", "--parallel", "3")
    sharded = load_index(sharded_dir)
    run = sharded_dir.parents[1]
    shards = sorted(p.name for p in run.iterdir() if p.name.startswith("index-shard."))
    assert shards == ["index-shard.000", "index-shard.001", "index-shard.002"]
    sizes = [json.loads((run / s / "_MANIFEST.json").read_text())["metrics"]["passages"] for s in shards]
    assert sum(sizes) == len(whole) and min(sizes) > 0
    ids = whole.store.ids_at(np.arange(len(whole)))
    assert sharded.store.ids_at(np.arange(len(sharded))) == ids  # row = FAISS id, in corpus order
    assert [p.id for p in sharded.passages(ids)] == ids
    np.testing.assert_allclose(np.asarray(sharded.vectors), np.asarray(whole.vectors), atol=1e-5)
    queries = np.asarray(whole.vectors[:50]) + 0.01
    a, b = whole.search(queries, 5), sharded.search(queries, 5)
    assert a.ids == b.ids
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_shard_bounds_cover_the_corpus_once():
    for n in (0, 1, 7, 3000):
        for shards in (1, 2, 3, 8):
            rows = [r for i in range(shards) for r in range(*shard_bounds(n, shards, i))]
            assert rows == list(range(n))


def test_shards_render_as_one_indexed_job_feeding_the_merge():
    graph = build_graph("baseline", RunSettings(index_shards=4), run_id="r")
    units = {u.name: u for u in plan_units(graph)}
    assert units["index-shard"].steps == tuple(f"index-shard.{i:03d}" for i in range(4))
    assert units["index-shard"].select == "build-index"
    assert units["index-shard"].gpus == 1 and units["build-index"].gpus == 0  # the shards encode, the merge copies
    for i in range(4):  # each shard reads the corpus itself
        assert graph.step(f"index-shard.{i:03d}").inputs == {"corpus": "corpus"}
    # the merge reads the corpus too, which is an input of it, not one of the Indexed Job's children
    assert graph.step("build-index").inputs == {"corpus": "corpus",
                                                **{f"shard-{i:03d}": f"index-shard.{i:03d}" for i in range(4)}}
    order = [u.name for u in plan_units(graph)]
    assert order == ["corpus", "index-shard", "splits", "build-index", "evaluate"]


def test_an_unsharded_index_keeps_its_config_hash():
    one = build_graph("baseline", RunSettings(), run_id="r")
    assert "shards" not in one.step("build-index").config
    with pytest.raises(ConfigError, match="out of range"):
        from rag_jobs.config import parse_config

        parse_config(BuildIndexConfig, {"shards": 2, "shard": 2})
