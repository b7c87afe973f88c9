"""The local runner: executes a graph on this machine, each step as a subprocess of its entrypoint (or, with
`in_process`, as a call of the same entrypoint in this process: no per-step start-up, for small runs)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from rag_jobs.artifacts import RunRef, StepRef, open_store, read_manifest
from rag_jobs.artifacts.layout import run_uri
from rag_jobs.jobs.registry import step_kind
from rag_jobs.progress import fmt_duration, log
from rag_jobs.runners.schedule import (
    BLOCKED,
    COMMITTED,
    FAILED,
    PENDING,
    RETRYABLE,
    WAIT,
    publish_graph,
    readiness,
    share_from_other_run,
)
from rag_jobs.strategies.graph import Graph, StepSpec

__all__ = ["StepOutcome", "publish_graph", "run_exit_code", "run_graph", "share_from_other_run", "step_command"]


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


class _Tee(io.TextIOBase):
    """Writes through to a stream and keeps the last error line a step printed (`<kind>: error: ...`)."""

    def __init__(self, stream):
        self.stream, self.error = stream, ""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if ": error: " in line:
                self.error = line.split(": error: ", 1)[1]
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def run_in_process(kind: str, run: str, step: str) -> tuple[int, str]:
    """(exit code, one-line error) of a step's entrypoint called in this process, exactly as its process would
    run it; this process's SIGTERM handling is put back afterwards."""
    from rag_jobs.jobs.common import run_step

    body = importlib.import_module(step_kind(kind).module).body
    previous = signal.getsignal(signal.SIGTERM)
    tee = _Tee(sys.stderr)
    try:
        with contextlib.redirect_stderr(tee):
            code = run_step(kind, body, ["--run", run, "--step", step])
    except SystemExit as exc:  # a body that exits (a torchrun rank other than 0 would)
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        gc.collect()
    return code, tee.error


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


def run_graph(graph: Graph, store_uri: str, *, max_parallel: int = 1,
              in_process: bool = False) -> dict[str, StepOutcome]:
    """Run every step in dependency order, up to `max_parallel` at once; committed steps are reused.
    `in_process`: one step at a time, each its entrypoint called in this process."""
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
            verdict = readiness(spec, lambda d: _state(outcomes.get(d)))
            if verdict.state == WAIT:
                continue
            pending.remove(spec)
            if verdict.state == BLOCKED:
                outcomes[spec.name] = StepOutcome(spec.name, "skipped")
                log("run", f"skip {spec.name}: {verdict.reason}")
                continue
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
            if in_process:
                t0 = time.perf_counter()
                code, error = run_in_process(spec.kind, uri, spec.name)
                wall = time.perf_counter() - t0
                state = "done" if code == 0 else "failed"
                outcomes[spec.name] = StepOutcome(spec.name, state, code, wall, error)
                log("run", f"{state} {spec.name} in {fmt_duration(wall)}" + ("" if code == 0 else
                                                                               f" (exit code {code})"))
                continue
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


def _state(outcome: StepOutcome | None) -> str:
    """A finished (or not yet finished) step as the scheduler sees it."""
    if outcome is None:
        return PENDING
    if outcome.state in ("reused", "done"):
        return COMMITTED
    if outcome.state == "failed" and outcome.exit_code == 2:
        return FAILED
    return RETRYABLE  # exit 1 (out of memory, a store timeout), or skipped behind such a step


def run_exit_code(outcomes: dict[str, StepOutcome]) -> int:
    """0 when every step is committed; 2 when a failure was bad input; else 1."""
    codes = [o.exit_code for o in outcomes.values() if o.state == "failed"]
    if not codes and all(o.state in ("reused", "done") for o in outcomes.values()):
        return 0
    return 2 if 2 in codes else 1
