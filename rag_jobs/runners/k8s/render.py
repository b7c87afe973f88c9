"""Render a run's graph as Kubernetes Jobs: pure data in, plain dicts out (no cluster, no store, no env).

One Job per step, except a learning-rate grid: the children of a `select` step (same kind, same
inputs) become ONE Indexed Job whose completion index picks the child (see `indexed`). The
select step itself is a small CPU Job. The driver (`driver.reconcile`) creates these Jobs when
their inputs are committed; `submit` creates the driver's own Job (`render_driver_job`).

The Job skeleton here is the one in manifests/job-template.yaml (a test keeps the two equal).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from rag_jobs.artifacts.layout import RunRef, run_uri
from rag_jobs.errors import EXIT_BAD_INPUT
from rag_jobs.jobs.registry import step_kind
from rag_jobs.runners.k8s.config import CLUSTER_CONFIG_ENV, ClusterConfig
from rag_jobs.strategies.graph import Graph, StepSpec

INDEXED_MODULE = "rag_jobs.runners.k8s.indexed"
CONTAINER = "step"
DRIVER_UNIT = "driver"

# Labels: the recommended app.kubernetes.io set, plus ours (the driver finds Jobs by these, never by memory).
L_NAME, L_INSTANCE, L_COMPONENT = "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"
L_PART_OF, L_MANAGED_BY = "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"
L_RUN, L_STEP, L_STRATEGY = "rag-jobs.io/run", "rag-jobs.io/step", "rag-jobs.io/strategy"
L_QUEUE = "kueue.x-k8s.io/queue-name"
A_STEPS, A_RUN_URI = "rag-jobs.io/steps", "rag-jobs.io/run-uri"  # annotations: the steps a Job runs, in index order
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"  # set by Kubernetes on the pods of an Indexed Job

CACHE_ROOT = "/cache"
MAX_NAME = 63
MAX_INDEXED_NAME = 56  # pods of an Indexed Job get the host name <job>-<index>, itself at most 63


@dataclass(frozen=True)
class Unit:
    """What one Job runs: one step, or the children of a fan-in (a grid, or index shards) as an Indexed Job.

    `select` names the step the children feed: a grid's selection, or the merge of the index shards.
    """

    name: str  # the rag-jobs.io/step label of the Job: the step name, or the grid's name
    kind: str
    steps: tuple[str, ...]
    gpus: int
    select: str | None = None

    @property
    def is_grid(self) -> bool:
        return self.select is not None


def dns_name(text: str, max_len: int = MAX_NAME) -> str:
    """A DNS-1123 label: lower case, [a-z0-9-], alphanumeric ends, at most max_len; a hash keeps it unique."""
    clean = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"
    if clean == text and len(clean) <= max_len:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]  # altered or cut: the hash keeps names apart
    return f"{clean[: max_len - 9].rstrip('-')}-{digest}"


def label_value(text: str) -> str:
    """A label value: at most 63 of [A-Za-z0-9._-], alphanumeric ends (step names already nearly are)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:MAX_NAME]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", clean) or "x"


def job_name(run_id: str, unit: str, *, indexed: bool = False) -> str:
    return dns_name(f"{run_id}-{unit}", MAX_INDEXED_NAME if indexed else MAX_NAME)


# Inputs of a fan-in step that are not its children: the merge of the index shards also reads the corpus, which
# every shard (and the splits) read too.
SHARED_INPUTS = {"build-index": frozenset({"corpus"})}


def _grid_children(graph: Graph, select: StepSpec, used_by: dict[str, set[str]]) -> list[StepSpec] | None:
    """The children of a fan-in step if they can be one Indexed Job, else None."""
    shared = SHARED_INPUTS.get(select.kind, frozenset())
    children = [graph.step(name) for role, name in sorted(select.inputs.items()) if role not in shared]
    if len(children) < 2:
        return None
    first = children[0]
    same = all((c.kind, c.inputs, c.gpus) == (first.kind, first.inputs, first.gpus) for c in children)
    private = all(used_by[c.name] == {select.name} for c in children)
    return children if same and private else None


def plan_units(graph: Graph) -> list[Unit]:
    """The Jobs of a graph, in dependency order: grids folded into one unit each."""
    used_by: dict[str, set[str]] = {s.name: set() for s in graph.steps}
    for s in graph.steps:
        for d in s.deps:
            used_by[d].add(s.name)
    names = {s.name for s in graph.steps}
    grid_of: dict[str, Unit] = {}
    fan_ins = (s for s in graph.steps if s.kind in ("select", "build-index"))
    for select in fan_ins:
        children = _grid_children(graph, select, used_by)
        if children is None:
            continue
        heads = {c.name.split(".", 1)[0] for c in children}
        name = heads.pop() if len(heads) == 1 and "." in children[0].name else f"{select.name}-grid"
        if name in names or name == DRIVER_UNIT:
            name = f"{select.name}-grid"
        unit = Unit(name, children[0].kind, tuple(c.name for c in children), children[0].gpus, select.name)
        for c in children:
            grid_of[c.name] = unit
    units: list[Unit] = []
    seen: set[str] = set()
    for s in graph.topo_order():
        unit = grid_of.get(s.name) or Unit(s.name, s.kind, (s.name,), s.gpus)
        if unit.name not in seen:
            seen.add(unit.name)
            units.append(unit)
    return units


def step_argv(kind: str, gpus: int, run: str, step: str | None = None) -> list[str]:
    """The container command of a step: its console script, or torchrun for several GPUs."""
    tail = ["--run", run, *(["--step", step] if step is not None else [])]
    spec = step_kind(kind)
    module = spec.module
    if gpus > 1:
        # `--` ends torchrun's own options: its argparse would otherwise read --run as --run-path.
        return ["torchrun", "--standalone", f"--nproc_per_node={gpus}", "-m", module, "--", *tail]
    if spec.script:
        return [spec.script, *tail]
    return ["python", "-m", module, *tail]


def unit_argv(unit: Unit, run: str) -> list[str]:
    if not unit.is_grid:
        return step_argv(unit.kind, unit.gpus, run, unit.steps[0])
    # $JOB_COMPLETION_INDEX picks the child; `indexed` appends `--step <child>` and execs the rest.
    return ["python", "-m", INDEXED_MODULE, "--steps", ",".join(unit.steps), "--",
            *step_argv(unit.kind, unit.gpus, run)]


def labels(graph: Graph, unit: str, component: str) -> dict[str, str]:
    return {
        L_NAME: "rag-jobs",
        L_INSTANCE: label_value(graph.run_id),
        L_COMPONENT: label_value(component),
        L_PART_OF: "rag-jobs",
        L_MANAGED_BY: "rag-jobs",
        L_RUN: label_value(graph.run_id),
        L_STEP: label_value(unit),
        L_STRATEGY: label_value(graph.strategy),
    }


def _env(cluster: ClusterConfig, extra: dict[str, str]) -> list[dict[str, Any]]:
    env = {
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "RAG_JOBS_CACHE": f"{CACHE_ROOT}/rag-jobs",
        "HF_HOME": f"{CACHE_ROOT}/huggingface",
        "XDG_CACHE_HOME": CACHE_ROOT,
        "RAG_JOBS_IMAGE": cluster.image,
    }
    if cluster.s3_region:
        env["AWS_REGION"] = cluster.s3_region
        env["AWS_DEFAULT_REGION"] = cluster.s3_region
    if cluster.s3_endpoint:
        env["AWS_ENDPOINT_URL_S3"] = cluster.s3_endpoint
    if cluster.s3_secret_name:
        # A file, not environment variables: secrets in env leak into logs and child processes.
        env["AWS_SHARED_CREDENTIALS_FILE"] = "/var/run/secrets/rag-jobs/s3/credentials"
    if cluster.retriever:
        env["RAG_JOBS_RETRIEVER"] = cluster.retriever
    if cluster.index_token_secret:
        env["RAG_JOBS_INDEX_TOKEN_FILE"] = "/var/run/secrets/rag-jobs/index/token"
    if cluster.mlflow_tracking_uri:
        env["MLFLOW_TRACKING_URI"] = cluster.mlflow_tracking_uri
    if cluster.mlflow_experiment:
        env["MLFLOW_EXPERIMENT_NAME"] = cluster.mlflow_experiment
    if cluster.mlflow_token_secret:  # a file, read into MLFLOW_TRACKING_TOKEN by the step (training.tracking)
        env["RAG_JOBS_MLFLOW_TOKEN_FILE"] = "/var/run/secrets/rag-jobs/mlflow/token"
    env.update(extra)
    return [{"name": k, "value": v} for k, v in env.items()]


def _pod_spec(cluster: ClusterConfig, *, argv: list[str], kind: str, gpus: int, service_account: str,
              api_token: bool, env: dict[str, str]) -> dict[str, Any]:
    res = cluster.resources_of(kind)
    amounts: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if gpus > 0:
        amounts[cluster.gpu_resource] = str(gpus)  # the client models quantities as strings
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    if kind != DRIVER_UNIT:
        mounts += [{"name": "cache", "mountPath": CACHE_ROOT}, {"name": "shm", "mountPath": "/dev/shm"}]
        volumes += [{"name": "cache", "emptyDir": {"sizeLimit": cluster.cache_size}},
                    {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": cluster.shm_size}}]
    if cluster.data_pvc and kind != DRIVER_UNIT:  # datasets (e.g. a 29.9M-passage corpus) from a shared volume
        mounts.append({"name": "data", "mountPath": cluster.data_mount_path, "readOnly": True})
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": cluster.data_pvc, "readOnly": True}})
    if cluster.s3_secret_name:
        mounts.append({"name": "s3-credentials", "mountPath": "/var/run/secrets/rag-jobs/s3", "readOnly": True})
        volumes.append({"name": "s3-credentials",
                        "secret": {"secretName": cluster.s3_secret_name, "defaultMode": 0o440,
                                   "items": [{"key": "credentials", "path": "credentials"}]}})
    if cluster.mlflow_token_secret and kind != DRIVER_UNIT:
        mounts.append({"name": "mlflow-token", "mountPath": "/var/run/secrets/rag-jobs/mlflow", "readOnly": True})
        volumes.append({"name": "mlflow-token",
                        "secret": {"secretName": cluster.mlflow_token_secret, "defaultMode": 0o440,
                                   "items": [{"key": "token", "path": "token"}]}})
    if cluster.index_token_secret and kind != DRIVER_UNIT:
        mounts.append({"name": "index-token", "mountPath": "/var/run/secrets/rag-jobs/index", "readOnly": True})
        volumes.append({"name": "index-token",
                        "secret": {"secretName": cluster.index_token_secret, "defaultMode": 0o440,
                                   "items": [{"key": "token", "path": "token"}]}})
    container = {
        "name": CONTAINER,
        "image": cluster.image,
        "imagePullPolicy": cluster.image_pull_policy,
        "command": argv,
        "env": _env(cluster, env),
        "resources": {"requests": dict(amounts), "limits": dict(amounts)},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": cluster.run_as_user,
            "runAsGroup": cluster.run_as_user,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": cluster.termination_grace_seconds,  # SIGTERM -> checkpoint -> exit 1
        "serviceAccountName": service_account,
        "automountServiceAccountToken": api_token,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": cluster.run_as_user,
            "runAsGroup": cluster.run_as_user,
            "fsGroup": cluster.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if gpus > 0:
        if cluster.node_selector:
            spec["nodeSelector"] = dict(cluster.node_selector)
        if cluster.tolerations:
            spec["tolerations"] = [t.to_k8s() for t in cluster.tolerations]
    if cluster.priority_class:
        spec["priorityClassName"] = cluster.priority_class
    return spec


def pod_failure_policy(indexed: bool) -> dict[str, Any]:
    """Exit 2 (bad input, rag_jobs.errors) fails at once; an evicted or preempted pod is retried for free."""
    return {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        # In a grid, one child's bad input fails that child only: the selection survives failed children.
        {"action": "FailIndex" if indexed else "FailJob",
         "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [EXIT_BAD_INPUT]}},
    ]}


def _job(name: str, meta_labels: dict[str, str], annotations: dict[str, str], job_spec: dict[str, Any],
         pod_spec: dict[str, Any], namespace: str, cluster: ClusterConfig | None = None) -> dict[str, Any]:
    extra_labels = dict(cluster.labels) if cluster else {}
    extra_annotations = dict(cluster.annotations) if cluster else {}
    # Pods do not carry the queue label: Kueue queues the Job; a queued pod would be gated on its own.
    template: dict[str, Any] = {"labels": {k: v for k, v in {**extra_labels, **meta_labels}.items() if k != L_QUEUE}}
    if extra_annotations:
        template["annotations"] = extra_annotations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {**extra_labels, **meta_labels},
                     "annotations": {**extra_annotations, **annotations}},
        "spec": {**job_spec, "template": {"metadata": template, "spec": pod_spec}},
    }


def render_unit(unit: Unit, graph: Graph, cluster: ClusterConfig, store_uri: str) -> dict[str, Any]:
    """The Job of one unit (a step, or a grid as an Indexed Job)."""
    run = run_uri(store_uri, RunRef(graph.run_id))
    meta_labels = labels(graph, unit.name, unit.kind)
    if cluster.index_client:  # admitted by the index service chart's NetworkPolicy
        meta_labels["rag-jobs.io/index-client"] = cluster.index_client
    annotations = {A_RUN_URI: run, A_STEPS: ",".join(unit.steps)}
    pod = _pod_spec(cluster, argv=unit_argv(unit, run), kind=unit.kind, gpus=unit.gpus,
                    service_account=cluster.service_account, api_token=False, env={})
    spec: dict[str, Any] = {
        "activeDeadlineSeconds": cluster.active_deadline_seconds,
        "ttlSecondsAfterFinished": cluster.ttl_seconds_after_finished,
        "podFailurePolicy": pod_failure_policy(unit.is_grid),
    }
    if unit.is_grid:
        n = len(unit.steps)
        parallelism = min(n, cluster.grid_parallelism)
        spec = {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": parallelism,
            "backoffLimitPerIndex": cluster.backoff_limit,
            **spec,
            # One deadline per wave of children: 9 children, 3 at a time, take three times one step.
            "activeDeadlineSeconds": cluster.active_deadline_seconds * math.ceil(n / parallelism),
        }
    else:
        spec = {"backoffLimit": cluster.backoff_limit, **spec}
    if cluster.queue_name:  # Kueue admits the Job by unsuspending it (and may suspend it again to preempt)
        meta_labels[L_QUEUE] = cluster.queue_name
        spec["suspend"] = True
    return _job(job_name(graph.run_id, unit.name, indexed=unit.is_grid), meta_labels, annotations, spec, pod,
                cluster.namespace, cluster)


def render(graph: Graph, cluster: ClusterConfig, store_uri: str) -> list[dict[str, Any]]:
    """Every step Job of the graph, in dependency order. Pure: the same inputs give the same dicts."""
    return [render_unit(u, graph, cluster, store_uri) for u in plan_units(graph)]


def render_driver_job(graph: Graph, cluster: ClusterConfig, store_uri: str) -> dict[str, Any]:
    """The small CPU Job running `rag-jobs drive <run-uri>`: it creates the step Jobs as inputs commit."""
    run = run_uri(store_uri, RunRef(graph.run_id))
    meta_labels = labels(graph, DRIVER_UNIT, DRIVER_UNIT)
    pod = _pod_spec(cluster, argv=["rag-jobs", "drive", run], kind=DRIVER_UNIT, gpus=0,
                    service_account=cluster.driver_service_account, api_token=True,
                    env={CLUSTER_CONFIG_ENV: json.dumps(  # what was set, and always the namespace
                        {"namespace": cluster.namespace, **cluster.model_dump(mode="json", exclude_defaults=True)},
                        separators=(",", ":"))})
    spec = {
        # The driver is restartable (it reads state from the store and the cluster), so retry it freely.
        "backoffLimit": 10,
        "activeDeadlineSeconds": 30 * 24 * 3600,
        "ttlSecondsAfterFinished": cluster.ttl_seconds_after_finished,
        "podFailurePolicy": pod_failure_policy(False),
    }
    # The driver is not queued: it holds no GPU and must run to admit the rest.
    return _job(job_name(graph.run_id, DRIVER_UNIT), meta_labels, {A_RUN_URI: run}, spec, pod, cluster.namespace,
                cluster)


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML, keys in the order they were built (stable, reviewable diffs)."""
    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False, default_flow_style=False, width=120)
                   for o in objects)
