"""The in-cluster driver: creates each step's Job once its inputs are committed, until the run ends.

Every decision comes from the store (committed manifests, `_FAILED.json`) and from the Jobs found
by label, never from memory, so a reconcile pass is idempotent and the driver can be killed and
restarted at any point: it never creates a Job that exists already, and never re-runs a committed
step (the entrypoints skip those too).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from rag_jobs.artifacts import ArtifactNotFound, RunRef, StepRef, is_committed
from rag_jobs.artifacts.layout import FAILED_NAME
from rag_jobs.errors import EXIT_BAD_INPUT, ConfigError, TransientError
from rag_jobs.progress import log
from rag_jobs.runners.k8s.api import ClusterApi, JobInfo
from rag_jobs.runners.k8s.config import ClusterConfig
from rag_jobs.runners.k8s.render import (
    DRIVER_UNIT,
    INDEX_LABEL,
    L_RUN,
    L_STEP,
    Unit,
    label_value,
    plan_units,
    render_unit,
)
from rag_jobs.runners.schedule import COMMITTED, FAILED, PENDING, READY, WAIT, readiness, share_from_other_run
from rag_jobs.strategies.graph import Graph


def failed_key(run: RunRef) -> str:
    return f"{run.prefix}{FAILED_NAME}"


def read_failure(store, run: RunRef) -> dict | None:
    """The run's failure record, or None while it has not failed."""
    try:
        return json.loads(store.get_bytes(failed_key(run)))
    except ArtifactNotFound:
        return None


def mark_failed(store, run: RunRef, reason: str) -> dict:
    """Write `_FAILED.json` once (the first reason wins); returns the record in force."""
    record = {"run_id": run.run_id, "reason": reason, "failed_at": datetime.now(timezone.utc).isoformat()}
    if store.put_bytes_if_absent(failed_key(run), json.dumps(record, indent=2).encode()):
        return record
    return read_failure(store, run) or record


@dataclass
class DriveState:
    """What one reconcile pass found and did."""

    created: list[str] = field(default_factory=list)  # Job names created by this pass
    reused: list[str] = field(default_factory=list)  # steps committed by reference to another run's equal step
    running: list[str] = field(default_factory=list)  # units whose Job is active
    suspended: list[str] = field(default_factory=list)  # units whose Job waits for admission (Kueue)
    waiting: list[str] = field(default_factory=list)  # units whose inputs are not committed yet
    committed: list[str] = field(default_factory=list)  # committed steps
    failed: str | None = None  # why the run failed (in this pass or before)
    complete: bool = False  # every step committed


def reconcile(graph: Graph, store, api: ClusterApi, cluster: ClusterConfig) -> DriveState:
    """One pass: create every Job whose inputs are committed; mark the run failed when a step failed for good."""
    run = RunRef(graph.run_id)
    state = DriveState()
    previous = read_failure(store, run)
    if previous is not None:
        state.failed = str(previous.get("reason", "failed"))
        return state
    committed = {s.name for s in graph.steps if is_committed(store, StepRef(run.run_id, s.name))}
    state.committed = [s.name for s in graph.steps if s.name in committed]
    if len(committed) == len(graph.steps):
        state.complete = True
        return state
    jobs: dict[str, JobInfo] = {}
    for job in api.list_jobs({L_RUN: label_value(run.run_id)}):
        jobs.setdefault(job.labels.get(L_STEP, ""), job)
    units = plan_units(graph)
    unit_of: dict[str, Unit] = {s: u for u in units for s in u.steps}

    def job_of(unit: Unit) -> JobInfo | None:
        return jobs.get(label_value(unit.name))

    def state_of(step: str) -> str:
        if step in committed:
            return COMMITTED
        job = job_of(unit_of[step])
        return FAILED if job is not None and job.finished else PENDING

    def fail(reason: str) -> DriveState:
        state.failed = str(mark_failed(store, run, reason)["reason"])
        return state

    for unit in units:
        if all(s in committed for s in unit.steps):
            continue
        job = job_of(unit)
        if job is not None:
            if not job.finished:  # a suspended Job (queued or preempted by Kueue) is pending, never re-created
                (state.suspended if job.suspended else state.running).append(unit.name)
            elif not unit.is_grid:  # a grid's failed children are the selection's business
                why = f": {job.message}" if job.message else ""
                return fail(f"step {unit.name} {'failed' if job.state == 'failed' else 'ended uncommitted'}"
                            f" (Job {job.name}){why}")
            continue
        verdict = readiness(graph.step(unit.steps[0]), state_of)
        if verdict.state == WAIT:
            state.waiting.append(unit.name)
        elif verdict.state == READY:
            for step in unit.steps:  # an equal step of another run is committed by reference, not run again
                if step not in committed and share_from_other_run(store, graph, graph.step(step)) is not None:
                    committed.add(step)
                    state.reused.append(step)
            if all(s in committed for s in unit.steps):
                continue
            manifest = render_unit(unit, graph, cluster, store.uri)
            if api.create_job(manifest):
                state.created.append(manifest["metadata"]["name"])
            state.running.append(unit.name)
        else:
            return fail(verdict.reason)
    return state


def drive(graph: Graph, store, api: ClusterApi, cluster: ClusterConfig, *, poll_s: float = 15.0,
          sleep: Callable[[float], None] = time.sleep, max_passes: int | None = None) -> int:
    """Reconcile until the run is complete (exit 0) or failed (exit 2: final, so the Job is not retried)."""
    passes = 0
    last = None
    while max_passes is None or passes < max_passes:
        passes += 1
        try:
            state = reconcile(graph, store, api, cluster)
        except TransientError as exc:
            log(DRIVER_UNIT, f"transient fault, retrying in {poll_s:.0f}s: {exc.one_line()}")
            sleep(poll_s)
            continue
        for name in state.reused:
            log(DRIVER_UNIT, f"reuse {name} from another run (same config and inputs)")
        for name in state.created:
            log(DRIVER_UNIT, f"created Job {name}")
        summary = (len(state.committed), len(state.running), len(state.waiting), len(state.suspended))
        if summary != last:
            queued = f", {summary[3]} suspended (waiting for admission)" if summary[3] else ""
            log(DRIVER_UNIT, f"{summary[0]}/{len(graph.steps)} steps committed, {summary[1]} Jobs running, "
                             f"{summary[2]} waiting{queued}")
            last = summary
        if state.failed:
            log(DRIVER_UNIT, f"run {graph.run_id} failed: {state.failed}")
            return EXIT_BAD_INPUT
        if state.complete:
            log(DRIVER_UNIT, f"run {graph.run_id} complete")
            return 0
        sleep(poll_s)
    return 1


def cancel_run(run: RunRef, store, api: ClusterApi) -> list[str]:
    """Mark the run cancelled (so a driver still running creates nothing more), then delete its Jobs."""
    mark_failed(store, run, "cancelled")
    jobs = api.list_jobs({L_RUN: label_value(run.run_id)})
    jobs.sort(key=lambda j: j.labels.get(L_STEP) != DRIVER_UNIT)  # the driver first
    for job in jobs:
        api.delete_job(job.name)
    return [j.name for j in jobs]


def step_logs(graph: Graph, step: str, api: ClusterApi, *, follow: bool = False) -> Iterator[str]:
    """The log of the newest pod that ran `step` (a grid child: the pod of its completion index)."""
    selector = {L_RUN: label_value(graph.run_id)}
    if step == DRIVER_UNIT:
        selector[L_STEP] = DRIVER_UNIT
    else:
        graph.step(step)  # ConfigError naming the steps when unknown
        unit = next(u for u in plan_units(graph) if step in u.steps)
        selector[L_STEP] = label_value(unit.name)
        if unit.is_grid:
            selector[INDEX_LABEL] = str(unit.steps.index(step))
    pods = sorted(api.list_pods(selector), key=lambda p: p.created)
    if not pods:
        raise ConfigError(f"no pod of step {step!r} of run {graph.run_id!r} (not started yet, or cleaned up)")
    return api.pod_logs(pods[-1].name, follow=follow)
