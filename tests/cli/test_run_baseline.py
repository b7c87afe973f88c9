"""`rag-jobs run baseline` as a user runs it: a subprocess, tiny models, the demo data, a local store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def rag_jobs(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_jobs.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_baseline_end_to_end_and_rerun_reuses(tmp_path, tiny_embedder, tiny_generator):
    store = tmp_path / "store"
    args = ["run", "baseline", "--dataset", "demo", "--limit", "80", "--eval-limit", "6", "--store", str(store),
            "--embedder", tiny_embedder, "--generator", tiny_generator, "--device", "cpu"]
    first = rag_jobs(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "[build-index] encoded" in first.stdout
    assert "No Ft." in first.stdout and "recall@5" in first.stdout
    runs = list((store / "runs").iterdir())
    assert len(runs) == 1
    manifest = json.loads((runs[0] / "evaluate" / "_MANIFEST.json").read_text())
    files = manifest["files"]
    assert {"predictions.jsonl", "metrics.json"} <= set(files)
    assert manifest["extra"]["quantization"] == "none"  # `auto` on a CPU: recorded as what it became
    assert "quantization" not in manifest["extra"]["config"]
    m = manifest["metrics"]
    assert m["n"] == 6 and 0.0 <= m["em"] <= 1.0 and 0.0 <= m["f1"] <= 1.0 and 0.0 <= m["recall"] <= 1.0
    preds = (runs[0] / "evaluate" / files["predictions.jsonl"]["key"].split("/evaluate/", 1)[1]).read_text()
    rows = [json.loads(x) for x in preds.splitlines()]
    assert len(rows) == 6 and all("prediction" in r and len(r["retrieved"]) == 5 for r in rows)

    second = rag_jobs(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "reuse build-index" in second.stdout and "reuse evaluate" in second.stdout
    assert "[build-index] start" not in second.stdout

    # Another run (more test questions) shares the index: same config and inputs, computed once.
    third = rag_jobs(*[a if a != "6" else "7" for a in args], cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert f"reuse corpus from run {runs[0].name}" in third.stdout
    assert f"reuse build-index from run {runs[0].name}" in third.stdout
    assert "[build-index] start" not in third.stdout and "[evaluate] start" in third.stdout

    # The store's memory-mapped vectors truncated: a step that fetches the index refuses it (exit 2, one line).
    (vectors,) = list((runs[0] / "build-index").glob("*/vectors.npy"))
    vectors.write_bytes(vectors.read_bytes()[:-64])
    env = {**os.environ, "RAG_JOBS_CACHE": str(tmp_path / "fresh-cache")}
    fourth = subprocess.run([sys.executable, "-m", "rag_jobs.cli", *[a if a != "6" else "5" for a in args]],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert fourth.returncode == 2, fourth.stdout + fourth.stderr
    assert "'vectors.npy' of step 'build-index'" in fourth.stderr and "does not match its manifest" in fourth.stderr
    assert len(list((store / "runs").glob("*/evaluate/_MANIFEST.json"))) == 2  # nothing committed


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--dataset", "hotpotqa:/no/such/file.jsonl"], "/no/such/file.jsonl"),
        (["--dataset", "nosuchformat:x"], "nosuchformat"),
        (["--embedder", "no-such-embedder"], "no-such-embedder"),
        (["--generator", "no-such-generator"], "no-such-generator"),
        (["--limit", "-3"], "limit"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, extra, needle):
    store = tmp_path / "store"
    res = rag_jobs("run", "baseline", "--store", str(store), *extra, cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    err_lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(err_lines) == 1 and needle in err_lines[0], res.stderr
    assert not (store / "runs").exists() or not any((store / "runs").rglob("_MANIFEST.json"))


def test_malformed_record_fails_the_step_with_exit_2(tmp_path, tiny_embedder, tiny_generator):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "x", "question": "q?"\n')
    store = tmp_path / "store"
    res = rag_jobs("run", "baseline", "--dataset", f"hotpotqa:{bad}", "--store", str(store), "--embedder",
                   tiny_embedder, "--generator", tiny_generator, cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "bad.jsonl" in res.stderr and "step corpus failed" in res.stderr
    assert not list(store.rglob("_MANIFEST.json"))


def test_unwritable_store_is_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    res = rag_jobs("run", "baseline", "--store", str(blocker / "store"), cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "a-file" in lines[0], res.stderr


def test_unreachable_s3_store_is_exit_2(tmp_path, monkeypatch):
    env_store = "s3://no-such-bucket/prefix"
    res = subprocess.run(
        [sys.executable, "-m", "rag_jobs.cli", "run", "baseline", "--store", env_store],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
        env={**__import__("os").environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
             "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"},
    )
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "no-such-bucket" in lines[0], res.stderr
