"""The only module that talks to Kubernetes: `KubeApi` (the ClusterApi over the official client), submit, wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from rag_jobs.artifacts import RunRef, StepRef, is_committed
from rag_jobs.errors import EXIT_BAD_INPUT, ConfigError, RagJobsError, TransientError
from rag_jobs.progress import log
from rag_jobs.runners.k8s.api import JobInfo, PodInfo
from rag_jobs.runners.k8s.config import ClusterConfig
from rag_jobs.runners.k8s.driver import failed_key, read_failure
from rag_jobs.runners.k8s.render import DRIVER_UNIT, L_RUN, L_STEP, label_value, render_driver_job
from rag_jobs.runners.schedule import publish_graph
from rag_jobs.strategies.graph import Graph


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def job_state(conditions: list[Any] | None) -> tuple[str, str]:
    """(active | succeeded | failed, message) from a V1Job's status conditions."""
    for c in conditions or []:
        if c.status != "True":
            continue
        if c.type in ("Complete", "SuccessCriteriaMet"):
            return "succeeded", ""
        if c.type in ("Failed", "FailureTarget"):
            return "failed", " ".join(x for x in (c.reason, c.message) if x)
    return "active", ""


class KubeApi:
    """ClusterApi over the kubernetes client, bound to one namespace (in-cluster config, else kubeconfig)."""

    def __init__(self, namespace: str, *, context: str | None = None) -> None:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            try:
                config.load_kube_config(context=context)
            except (config.ConfigException, OSError, TypeError) as exc:
                raise ConfigError(f"no Kubernetes configuration (in-cluster or kubeconfig): {exc}") from exc
        self.namespace = namespace
        self.batch = client.BatchV1Api()
        self.core = client.CoreV1Api()

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            text = f"{what} in namespace {self.namespace}: HTTP {exc.status} {exc.reason}"
            if exc.status in (409, 404):
                raise
            if exc.status in (429,) or (exc.status or 0) >= 500:
                raise TransientError(text) from exc
            raise ConfigError(text) from exc  # 401/403 (RBAC: see manifests/driver-rbac.yaml), 400/422
        except HTTPError as exc:
            raise TransientError(f"{what}: the Kubernetes API is unreachable: {exc}") from exc
        except ValueError as exc:  # the client's models refused the object before sending it
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{what}: the Kubernetes client rejected the object: {first}") from exc

    def create_job(self, manifest: dict[str, Any]) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self._call(f"create Job {manifest['metadata']['name']}", self.batch.create_namespaced_job,
                       self.namespace, manifest)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise ConfigError(f"create Job: HTTP {exc.status} {exc.reason}") from exc
        return True

    def list_jobs(self, labels: dict[str, str]) -> list[JobInfo]:
        out, token = [], None
        while True:
            page = self._call("list Jobs", self.batch.list_namespaced_job, self.namespace,
                              label_selector=_selector(labels), limit=500, _continue=token)
            for j in page.items:
                state, message = job_state(j.status.conditions if j.status else None)
                suspended = bool(j.spec and j.spec.suspend) and state == "active"
                out.append(JobInfo(j.metadata.name, dict(j.metadata.labels or {}),
                                   dict(j.metadata.annotations or {}), state, message, suspended))
            token = page.metadata._continue
            if not token:
                return out

    def delete_job(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._call(f"delete Job {name}", self.batch.delete_namespaced_job, name, self.namespace,
                       propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise ConfigError(f"delete Job {name}: HTTP {exc.status} {exc.reason}") from exc

    def list_pods(self, labels: dict[str, str]) -> list[PodInfo]:
        page = self._call("list pods", self.core.list_namespaced_pod, self.namespace,
                          label_selector=_selector(labels))
        return [PodInfo(p.metadata.name, dict(p.metadata.labels or {}),
                        p.metadata.creation_timestamp.isoformat() if p.metadata.creation_timestamp else "",
                        p.status.phase if p.status else "") for p in page.items]

    def pod_logs(self, pod: str, *, follow: bool = False) -> Iterator[str]:
        if not follow:
            text = self._call(f"read the log of pod {pod}", self.core.read_namespaced_pod_log, pod, self.namespace)
            yield from text.splitlines()
            return
        from kubernetes import watch

        yield from watch.Watch().stream(self.core.read_namespaced_pod_log, name=pod, namespace=self.namespace,
                                        follow=True)


def check_store(uri: str) -> None:
    """Pods reach only an object store: a local folder would be a different folder in every pod."""
    if not uri.startswith("s3://"):
        raise ConfigError(f"a Kubernetes run needs an s3:// store that pods can reach, not {uri}")


def submit_run(graph: Graph, cluster: ClusterConfig, store, api, *, sleep: Callable[[float], None] = time.sleep,
               ) -> str:
    """Publish graph.json and start the driver Job; a failed run is resumed (its failed Jobs are removed)."""
    check_store(store.uri)
    publish_graph(store, graph)
    run = RunRef(graph.run_id)
    previous = read_failure(store, run)
    jobs = api.list_jobs({L_RUN: label_value(run.run_id)})
    driver = next((j for j in jobs if j.labels.get(L_STEP) == DRIVER_UNIT), None)
    if driver is not None and not driver.finished and previous is None:
        log("submit", f"run {run.run_id} already has a running driver: Job {driver.name}")
        return driver.name
    stale = [j for j in jobs if j.state == "failed" or (j is driver and j.finished)]
    for job in stale:
        api.delete_job(job.name)
    for _ in range(60):  # deletion is asynchronous: wait until the names are free again
        if not {j.name for j in api.list_jobs({L_RUN: label_value(run.run_id)})} & {j.name for j in stale}:
            break
        sleep(1.0)
    if previous is not None:
        log("submit", f"resuming run {run.run_id} (it had failed: {previous.get('reason')})")
        store.delete(failed_key(run))
    manifest = render_driver_job(graph, cluster, store.uri)
    api.create_job(manifest)
    return manifest["metadata"]["name"]


def wait_run(graph: Graph, store, api, *, poll_s: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> int:
    """Follow a submitted run until it is complete (0) or failed (2, or 1 if its driver died)."""
    run = RunRef(graph.run_id)
    last = -1
    while True:
        failure = read_failure(store, run)
        if failure is not None:
            log("wait", f"run {run.run_id} failed: {failure.get('reason')}")
            return EXIT_BAD_INPUT
        done = sum(is_committed(store, StepRef(run.run_id, s.name)) for s in graph.steps)
        if done != last:
            log("wait", f"{done}/{len(graph.steps)} steps committed")
            last = done
        if done == len(graph.steps):
            return 0
        try:
            drivers = api.list_jobs({L_RUN: label_value(run.run_id), L_STEP: DRIVER_UNIT})
        except RagJobsError as exc:
            log("wait", f"cannot list Jobs, retrying: {exc.one_line()}")
            drivers = []
        if drivers and all(d.state == "failed" for d in drivers):
            log("wait", f"the driver of run {run.run_id} failed: {drivers[0].message}")
            return 1
        sleep(poll_s)
