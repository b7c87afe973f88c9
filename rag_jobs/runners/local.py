"""The local runner: executes a graph on this machine, each step as a subprocess of its entrypoint."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from rag_jobs.artifacts import RunRef, StepRef, open_store, read_manifest
from rag_jobs.artifacts.layout import run_uri
from rag_jobs.errors import ConfigError
from rag_jobs.jobs.registry import step_kind
from rag_jobs.progress import fmt_duration, log
from rag_jobs.strategies.graph import Graph, StepSpec


@dataclass
class StepOutcome:
    name: str
    state: str  # reused | done | failed | skipped
    exit_code: int | None = None
    wall_s: float = 0.0
    error: str = ""  # the step's one-line error, when it failed


def step_command(kind: str, run: str, step: str) -> list[str]:
    """The command of one step: the same entrypoint a Kubernetes Job runs."""
    return [sys.executable, "-m", step_kind(kind).module, "--run", run, "--step", step]


def publish_graph(store, graph: Graph) -> None:
    """Write graph.json once; an existing one must describe the same steps."""
    key = RunRef(graph.run_id).graph_key
    text = graph.to_json().encode()
    if store.put_bytes_if_absent(key, text):
        return
    existing = Graph.from_json(store.get_bytes(key).decode())
    if [s.name for s in existing.steps] != [s.name for s in graph.steps] or any(
        existing.step_hash(s.name) != graph.step_hash(s.name) for s in graph.steps
    ):
        raise ConfigError(f"run {graph.run_id!r} already exists in {store.uri} with a different graph; "
                          "pick another --run-id")


def share_from_other_run(store, graph: Graph, spec: StepSpec) -> str | None:
    """Commit this step by reference to an equal step (same config and inputs hash) of another run.

    The new manifest lists the other run's files (their keys, sha256 and sizes), so readers fetch and verify
    them as usual; nothing is copied. Returns the run it was shared from, or None.
    """
    want = graph.step_hash(spec.name)
    suffix = f"/{spec.name}/_MANIFEST.json"
    for key in store.list("runs/"):
        parts = key.split("/")
        if len(parts) != 4 or not key.endswith(suffix) or parts[1] == graph.run_id:
            continue
        other = read_manifest(store, StepRef(parts[1], spec.name))
        if other is None or other.config_hash != want:
            continue
        extra = {**other.extra, "shared_from": {"run": other.run_id, "step": other.step, "attempt": other.attempt}}
        shared = other.model_copy(update={"run_id": graph.run_id, "extra": extra})
        ref = StepRef(graph.run_id, spec.name)
        if store.put_bytes_if_absent(ref.manifest_key, shared.to_json()):
            return other.run_id
        return None
    return None


def _pump(proc: subprocess.Popen, name: str, errors: dict[str, str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        if ": error: " in line:
            errors[name] = line.split(": error: ", 1)[1]
        if line.startswith("["):
            print(line, flush=True)
        else:
            print(f"[{name}] {line}", flush=True)


def run_graph(graph: Graph, store_uri: str, *, max_parallel: int = 1) -> dict[str, StepOutcome]:
    """Run every step in dependency order, up to `max_parallel` at once; committed steps are reused."""
    store = open_store(store_uri)
    publish_graph(store, graph)
    uri = run_uri(store.uri, RunRef(graph.run_id))
    outcomes: dict[str, StepOutcome] = {}
    pending: list[StepSpec] = graph.topo_order()
    running: dict[str, tuple[subprocess.Popen, threading.Thread, float]] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    errors: dict[str, str] = {}
    total = len(pending)
    while pending or running:
        for spec in list(pending):
            if len(running) >= max_parallel:
                break
            states = [outcomes.get(d) for d in spec.deps]
            if any(o is None for o in states):
                continue
            ok = [o for o in states if o.state in ("reused", "done")]
            # A grid selection goes on without children that failed for good (exit 2: a bad setting, a diverged
            # loss), but not without one that may pass on a retry (exit 1: out of memory, a store timeout): the
            # committed selection would be reused by every later run, so it waits for the re-run to retry.
            retryable = [o for o in states if o.state == "skipped" or (o.state == "failed" and o.exit_code != 2)]
            if (spec.needs == "all" and len(ok) < len(states)) or (states and not ok) or retryable:
                outcomes[spec.name] = StepOutcome(spec.name, "skipped")
                why = (f"{', '.join(o.name for o in retryable)} may pass when the run is started again"
                       if retryable and ok and spec.needs == "any" else "a dependency failed")
                log("run", f"skip {spec.name}: {why}")
                pending.remove(spec)
                continue
            pending.remove(spec)
            if read_manifest(store, StepRef(graph.run_id, spec.name)) is not None:
                outcomes[spec.name] = StepOutcome(spec.name, "reused", 0)
                log("run", f"reuse {spec.name} (already committed)")
                continue
            source = share_from_other_run(store, graph, spec)
            if source is not None:
                outcomes[spec.name] = StepOutcome(spec.name, "reused", 0)
                log("run", f"reuse {spec.name} from run {source} (same config and inputs)")
                continue
            log("run", f"start {spec.name} ({len(outcomes) + len(running) + 1}/{total})")
            proc = subprocess.Popen(
                step_command(spec.kind, uri, spec.name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, env=env, bufsize=1,
            )
            pump = threading.Thread(target=_pump, args=(proc, spec.name, errors), daemon=True)
            pump.start()
            running[spec.name] = (proc, pump, time.perf_counter())
        for name, (proc, pump, t0) in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            pump.join()
            wall = time.perf_counter() - t0
            del running[name]
            state = "done" if code == 0 else "failed"
            outcomes[name] = StepOutcome(name, state, code, wall, errors.get(name, ""))
            log("run", f"{state} {name} in {fmt_duration(wall)}" + ("" if code == 0 else f" (exit code {code})"))
        if running:
            time.sleep(0.2)
    return outcomes


def run_exit_code(outcomes: dict[str, StepOutcome]) -> int:
    """0 when every step is committed; 2 when a failure was bad input; else 1."""
    codes = [o.exit_code for o in outcomes.values() if o.state == "failed"]
    if not codes and all(o.state in ("reused", "done") for o in outcomes.values()):
        return 0
    return 2 if 2 in codes else 1
