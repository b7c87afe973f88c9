"""One scheduler for both runners: when a step may run, following a grid selection, and reuse of an equal
committed step of another run. The local runner and the Kubernetes driver differ only in how they learn a
step's state (a subprocess's exit code; a Job's status) and in how they start it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rag_jobs.artifacts import RunRef, StepRef
from rag_jobs.artifacts.step_index import find_step
from rag_jobs.errors import ConfigError
from rag_jobs.strategies.graph import Graph, StepSpec

# What a runner knows of a dependency.
COMMITTED = "committed"  # its manifest exists (or it was reused)
PENDING = "pending"  # not finished: not started yet, or running
FAILED = "failed"  # finished without committing, for good (exit 2: bad input, a diverged loss)
RETRYABLE = "retryable"  # finished without committing, but may pass on a retry (exit 1); local runner only

READY, WAIT, BLOCKED = "ready", "wait", "blocked"


@dataclass(frozen=True)
class Verdict:
    state: str  # ready | wait | blocked
    reason: str = ""  # why a blocked step can never run in this pass of the run


def readiness(spec: StepSpec, state_of: Callable[[str], str]) -> Verdict:
    """Whether `spec` may start, given the state of each of its dependencies.

    A step needs all its inputs committed. A grid selection (`needs="any"`) waits for every child to finish,
    then goes on without children that failed for good, but not without one that may pass on a retry: the
    committed selection would be reused by every later run, so it waits for a re-run to retry the child.
    """
    states = {d: state_of(d) for d in spec.deps}
    if any(s == PENDING for s in states.values()):
        return Verdict(WAIT)
    ok = [d for d, s in states.items() if s == COMMITTED]
    if spec.needs == "any":
        retry = [d for d, s in states.items() if s == RETRYABLE]
        if ok and retry:
            return Verdict(BLOCKED, f"{', '.join(retry)} may pass when the run is started again")
        if ok:
            return Verdict(READY)
        return Verdict(BLOCKED, f"every input of {spec.name} failed: {', '.join(spec.deps)}")
    if len(ok) == len(states):
        return Verdict(READY)
    lost = next(d for d, s in states.items() if s != COMMITTED)
    return Verdict(BLOCKED, f"{spec.name} cannot run: its input {lost} finished without committing")


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
    """Commit this step by reference to an equal step (same kind, code version, config and inputs hash) of
    another run, found through the step index (one read, whatever the number of runs).

    The new manifest lists the other run's files (their keys, sha256 and sizes), so readers fetch and verify
    them as usual; nothing is copied. Returns the run it was shared from, or None.
    """
    other = find_step(store, graph.step_hash(spec.name))
    if other is None or other.run_id == graph.run_id:
        return None
    extra = {**other.extra, "shared_from": {"run": other.run_id, "step": other.step, "attempt": other.attempt}}
    shared = other.model_copy(update={"run_id": graph.run_id, "step": spec.name, "extra": extra})
    if store.put_bytes_if_absent(StepRef(graph.run_id, spec.name).manifest_key, shared.to_json()):
        return other.run_id
    return None
