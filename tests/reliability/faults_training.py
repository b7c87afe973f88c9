"""Training-step faults: SIGKILL at chosen points (one in the middle of writing a checkpoint), and SIGTERM.

Plain functions that return their figures, used by the tests and by benchmarks/reliability.py. Each scenario
runs the real `finetune-gen` entrypoint as its own process on a run of the local store, the way the local
runner and a Kubernetes Job start it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

from rag_jobs.artifacts import RunRef, open_store, run_uri
from rag_jobs.runners.local import publish_graph, step_command
from rag_jobs.strategies import RunSettings, build_graph

STEP = "finetune-gen.lr-1e-03"
ADAPTER = "adapter/adapter_model.safetensors"

# Imported by every Python process of a faulted run (through PYTHONPATH): kill the process itself right after a
# checkpoint's files are uploaded and before its manifest is written, i.e. in the middle of the checkpoint.
MID_CHECKPOINT_HOOK = '''
import os, signal
_n = int(os.environ["RAG_JOBS_TEST_KILL_IN_CHECKPOINT"])
from rag_jobs.artifacts import local_store as _store
_orig = _store.LocalStore.put_bytes_if_absent
def _put(self, key, data, *a, **kw):
    if key.endswith(f"/checkpoints/{_n:08d}/_MANIFEST.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _orig(self, key, data, *a, **kw)
_store.LocalStore.put_bytes_if_absent = _put
'''


def settings(embedder: str, generator: str, train_limit: int = 40, quantization: str = "auto") -> RunSettings:
    return RunSettings.model_validate({
        "data": {"dataset": "demo", "limit": 400}, "embedder": embedder, "generator": generator, "device": "cpu",
        "gen_lr": 1e-3, "quantization": quantization,
        "train": {"batch_size": 2, "train_limit": train_limit, "checkpoint_every": 4, "log_every": 2,
                  "validation": {"limit": 2, "select_by": "recall"}},
    })


def _prepare(store_dir: Path, s: RunSettings) -> str:
    """A store holding the run's graph and its committed corpus, splits and index (built once per settings, then
    copied)."""
    graph = build_graph("ft-gen", s, run_id="faults")
    template = store_dir.parent / f"prepared-{graph.step_hash('build-index')[:8]}-{graph.step_hash('splits')[:8]}"
    if not template.exists():
        store = open_store(str(template))
        publish_graph(store, graph)
        for step in ("corpus", "splits", "build-index"):
            res = subprocess.run(step_command(step, run_uri(store.uri, RunRef(graph.run_id)), step),
                                 capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                shutil.rmtree(template, ignore_errors=True)
                raise RuntimeError(f"{step} failed: {res.stderr[-2000:]}")
    shutil.copytree(template, store_dir)
    return run_uri(open_store(str(store_dir)).uri, RunRef(graph.run_id))


def _adapter_sha(store_dir: Path) -> str | None:
    path = store_dir / "runs" / "faults" / STEP / "_MANIFEST.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["files"][ADAPTER]["sha256"]


def _checkpoints(store_dir: Path) -> list[int]:
    found = (store_dir / "runs" / "faults" / STEP / "checkpoints").glob("*/_MANIFEST.json")
    return sorted(int(p.parent.name) for p in found)


def _start(uri: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(step_command("finetune-gen", uri, STEP), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})}, start_new_session=True)


def _finish(uri: str) -> subprocess.CompletedProcess:
    return subprocess.run(step_command("finetune-gen", uri, STEP), capture_output=True, text=True, timeout=900)


def reference_sha(work: Path, s: RunSettings) -> str:
    store = work / "reference"
    uri = _prepare(store, s)
    res = _finish(uri)
    if res.returncode != 0:
        raise RuntimeError(f"uninterrupted run failed: {res.stdout[-2000:]}{res.stderr[-2000:]}")
    return _adapter_sha(store)


def kill_and_resume(work: Path, s: RunSettings, kills: list[tuple[str, float]], *, expected: str,
                    seed: int = 0) -> dict:
    """SIGKILL a step per scenario, then run it again; count resumes that end bit-identical (adapter sha256).

    kills: ("after-checkpoint", n) kills once checkpoint n is committed; ("mid-checkpoint", n) kills inside the
    commit of checkpoint n (files uploaded, manifest not yet written); ("random", max_s) after a random delay.
    """
    rng = random.Random(seed)
    rows = []
    for i, (mode, arg) in enumerate(kills):
        store = work / f"kill-{i}-{mode}"
        uri = _prepare(store, s)
        env = None
        if mode == "mid-checkpoint":
            hook = work / f"hook-{i}"
            hook.mkdir(parents=True, exist_ok=True)
            (hook / "sitecustomize.py").write_text(MID_CHECKPOINT_HOOK)
            env = {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
                   "RAG_JOBS_TEST_KILL_IN_CHECKPOINT": str(int(arg))}
        proc = _start(uri, env)
        delay = rng.uniform(2.0, arg) if mode == "random" else None
        t0 = time.time()
        while proc.poll() is None and time.time() - t0 < 600:
            if mode == "after-checkpoint" and int(arg) in _checkpoints(store):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            if delay is not None and time.time() - t0 >= delay:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=60)
        killed = proc.returncode == -signal.SIGKILL
        committed_before = _adapter_sha(store) is not None
        ckpts = _checkpoints(store)
        res = _finish(uri)
        out = res.stdout + res.stderr
        resumed = "resumed from checkpoint at step" in out
        sha = _adapter_sha(store)
        rows.append({"mode": mode, "arg": arg, "killed": killed, "committed_when_killed": committed_before,
                     "checkpoints_when_resumed": ckpts, "resumed": resumed, "exit_code": res.returncode,
                     "identical": sha == expected, "checkpoints_after_commit": _checkpoints(store)})
    ok = sum(r["identical"] and r["exit_code"] == 0 for r in rows)
    return {"resume_identical": f"{ok}/{len(rows)}", "identical": ok, "runs": len(rows), "rows": rows}


def sigterm_checkpoints_and_exits(work: Path, s: RunSettings, *, expected: str, grace_s: float = 30.0) -> dict:
    """SIGTERM mid-training: the step checkpoints the step it is in, exits 1 within the grace period, and a
    re-run resumes there and ends bit-identical."""
    store = work / "sigterm"
    uri = _prepare(store, s)
    proc = _start(uri)
    lines = []
    sent = None
    for line in proc.stdout:
        lines.append(line)
        if sent is None and " step 2/" in line:  # training is under way, before the first periodic checkpoint
            proc.send_signal(signal.SIGTERM)
            sent = time.time()
    proc.wait(timeout=grace_s + 60)
    exit_s = time.time() - sent if sent else None
    text = "".join(lines)
    ckpts = _checkpoints(store)
    res = _finish(uri)
    return {"sigterm_exit_code": proc.returncode, "sigterm_exit_s": exit_s,
            "within_grace": exit_s is not None and exit_s <= grace_s,
            "checkpointed": "SIGTERM: checkpointing step" in text and bool(ckpts), "checkpoints": ckpts,
            "resumed": "resumed from checkpoint at step" in res.stdout + res.stderr,
            "identical_after_resume": res.returncode == 0 and _adapter_sha(store) == expected}
