"""ClusterConfig: where and how a run's Jobs run on Kubernetes (one frozen, validated model)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag_jobs import __version__
from rag_jobs.errors import ConfigError

CLUSTER_CONFIG_ENV = "RAG_JOBS_CLUSTER_CONFIG"  # the driver Job receives its ClusterConfig as JSON here

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"


class StepResources(BaseModel):
    """CPU and memory of one step kind; requests equal limits (Guaranteed QoS for GPU pods)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: str = Field(..., pattern=_QUANTITY, description="CPU request = limit, e.g. '8' or '500m'")
    memory: str = Field(..., pattern=_QUANTITY, description="memory request = limit, e.g. '32Gi'")


DEFAULT_RESOURCES: dict[str, StepResources] = {
    # the corpus step holds the ids it has seen (duplicates are refused): ~3 GiB at 29.9M MedRAG rows
    "corpus": StepResources(cpu="4", memory="32Gi"),
    "splits": StepResources(cpu="2", memory="8Gi"),
    "build-index": StepResources(cpu="4", memory="16Gi"),
    "finetune-embed": StepResources(cpu="8", memory="32Gi"),
    "finetune-gen": StepResources(cpu="8", memory="48Gi"),
    "joint": StepResources(cpu="8", memory="64Gi"),
    "score-pool": StepResources(cpu="8", memory="48Gi"),
    "evaluate": StepResources(cpu="8", memory="32Gi"),
    "select": StepResources(cpu="500m", memory="1Gi"),
    "driver": StepResources(cpu="250m", memory="512Mi"),
}


class Toleration(BaseModel):
    """A pod toleration (the fields Kubernetes knows, nothing else)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str | None = Field(None, description="taint key; None with operator Exists tolerates every taint")
    operator: str = Field("Equal", pattern="^(Equal|Exists)$", description="Equal or Exists")
    value: str | None = Field(None, description="taint value (operator Equal)")
    effect: str | None = Field(None, pattern="^(NoSchedule|PreferNoSchedule|NoExecute)$",
                               description="taint effect; None tolerates every effect")
    toleration_seconds: int | None = Field(None, ge=0, description="NoExecute only: how long to stay bound")

    def to_k8s(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operator": self.operator}
        for field, key in (("key", "key"), ("value", "value"), ("effect", "effect"),
                           ("toleration_seconds", "tolerationSeconds")):
            if getattr(self, field) is not None:
                out[key] = getattr(self, field)
        return out


class ClusterConfig(BaseModel):
    """Everything the renderer needs to know about the cluster; the graph says the rest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field("rag-jobs", pattern=_DNS_LABEL, max_length=63,
                           description="namespace of every Job (manifests/ sets up its RBAC and NetworkPolicy)")
    image: str = Field(f"rag-jobs:{__version__}", min_length=1,
                       description="the training image (Dockerfile target `train`); pin it by digest")
    image_pull_policy: str = Field("IfNotPresent", pattern="^(Always|IfNotPresent|Never)$",
                                   description="IfNotPresent: a digest-pinned image never changes")
    gpu_resource: str = Field("nvidia.com/gpu", min_length=1,
                              description="extended resource name of a GPU (the NVIDIA device plugin's)")
    node_selector: dict[str, str] = Field(default_factory=dict, description="nodeSelector of GPU step pods")
    tolerations: tuple[Toleration, ...] = Field((), description="tolerations of GPU step pods (GPU node taints)")
    priority_class: str | None = Field(None, description="priorityClassName of step pods (None: cluster default)")
    service_account: str = Field("rag-jobs-step", pattern=_DNS_LABEL,
                                 description="service account of step pods (IRSA: its role reaches the store)")
    driver_service_account: str = Field("rag-jobs-driver", pattern=_DNS_LABEL,
                                        description="service account of the driver (manifests/driver-rbac.yaml)")
    s3_endpoint: str | None = Field(None, description="AWS_ENDPOINT_URL_S3 for MinIO/Ceph; None for AWS S3")
    s3_region: str | None = Field(None, description="AWS_REGION of the store's bucket")
    s3_secret_name: str | None = Field(None, pattern=_DNS_LABEL,
                                       description="Secret with key `credentials` (an AWS shared credentials "
                                                   "file), mounted read-only; None with IRSA")
    data_pvc: str | None = Field(None, pattern=_DNS_LABEL, max_length=253,
                                 description="PersistentVolumeClaim with datasets, mounted read-only in step pods")
    data_mount_path: str = Field("/data", pattern=r"^/[A-Za-z0-9._/-]*$",
                                 description="where data_pvc is mounted (dataset specs name paths under it)")
    resources: dict[str, StepResources] = Field(default_factory=dict,
                                                description="per step kind (and 'driver'); overrides the defaults")
    backoff_limit: int = Field(3, ge=0, le=20, description="retries of a step after transient failures (exit 1)")
    active_deadline_seconds: int = Field(48 * 3600, ge=60,
                                         description="wall-time limit of one step (a grid Job gets one per wave)")
    ttl_seconds_after_finished: int = Field(7 * 24 * 3600, ge=0,
                                            description="finished Jobs are garbage-collected after this")
    grid_parallelism: int = Field(3, ge=1, le=100, description="grid children that run at once (GPUs in use)")
    termination_grace_seconds: int = Field(120, ge=10, le=3600,
                                           description="time between SIGTERM and SIGKILL: a step checkpoints in it")
    shm_size: str = Field("8Gi", pattern=_QUANTITY, description="size of the memory-backed /dev/shm")
    cache_size: str = Field("100Gi", pattern=_QUANTITY,
                            description="size limit of the emptyDir holding model and artifact caches")
    run_as_user: int = Field(10001, ge=10000, description="UID of every container (the image's user)")
    retriever: str | None = Field(None, pattern="^https?://.+$",
                                  description="every step retrieves through this index service (helm install'ed; "
                                  "it must serve the run's index) instead of a local copy; not part of any step's "
                                  "hash")
    index_client: str | None = Field(None, pattern=_DNS_LABEL, max_length=63,
                                     description="the chart's fullname: step pods get the label "
                                     "rag-jobs.io/index-client=<it> that the chart's NetworkPolicy admits")
    queue_name: str | None = Field(None, pattern=_DNS_LABEL, max_length=63,
                                   description="Kueue LocalQueue: step Jobs get the label kueue.x-k8s.io/queue-name "
                                   "and are created suspended, for Kueue to admit")
    labels: dict[str, str] = Field(default_factory=dict, description="extra labels of every Job and its pods "
                                   "(may not set the rag-jobs.io/*, app.kubernetes.io/* or Kueue labels)")
    annotations: dict[str, str] = Field(default_factory=dict, description="extra annotations of every Job and "
                                        "its pods (may not set rag-jobs.io/*)")
    index_token_secret: str | None = Field(None, pattern=_DNS_LABEL, max_length=253,
                                           description="Secret whose key `token` is the index service's bearer "
                                           "token (mounted as a file)")
    mlflow_tracking_uri: str | None = Field(None, pattern="^(https?|databricks)(://.*)?$",
                                            description="MLFLOW_TRACKING_URI of step pods (runs with --track "
                                            "mlflow); the NetworkPolicy must admit egress to it")
    mlflow_experiment: str | None = Field(None, min_length=1, description="MLFLOW_EXPERIMENT_NAME (default rag-jobs)")
    mlflow_token_secret: str | None = Field(None, pattern=_DNS_LABEL, max_length=253,
                                            description="Secret whose key `token` is the MLflow server's token "
                                            "(mounted as a file; the step sets MLFLOW_TRACKING_TOKEN from it)")

    @field_validator("node_selector")
    @classmethod
    def _selector_values(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k, val in v.items() if not isinstance(val, str) or not k]
        if bad:
            raise ValueError(f"node_selector keys must be non-empty with string values, got {bad}")
        return v

    @field_validator("labels", "annotations")
    @classmethod
    def _not_ours(cls, v: dict[str, str], info) -> dict[str, str]:
        reserved = ("rag-jobs.io/", "app.kubernetes.io/", "kueue.x-k8s.io/") if info.field_name == "labels" else (
            "rag-jobs.io/",)
        taken = sorted(k for k in v if not isinstance(k, str) or not k or k.startswith(reserved))
        if taken:
            raise ValueError(f"{info.field_name} may not set {', '.join(map(str, taken))}: rag-jobs sets those "
                             f"keys itself (the driver finds its Jobs by them)")
        bad = sorted(k for k, val in v.items() if not isinstance(val, str))
        if bad:
            raise ValueError(f"{info.field_name} values must be strings: {bad}")
        return v

    @field_validator("resources")
    @classmethod
    def _known_kinds(cls, v: dict[str, StepResources]) -> dict[str, StepResources]:
        unknown = sorted(set(v) - set(DEFAULT_RESOURCES))
        if unknown:
            raise ValueError(f"unknown step kinds {unknown}; known: {sorted(DEFAULT_RESOURCES)}")
        return v

    def resources_of(self, kind: str) -> StepResources:
        """What a pod of a step kind (or the driver) asks for: its registry's resources key, configured or default."""
        from rag_jobs.jobs.registry import STEP_KINDS

        key = STEP_KINDS[kind].resources if kind in STEP_KINDS else kind
        return self.resources.get(key) or DEFAULT_RESOURCES[key]


def parse_cluster_config(data: Any, *, source: str = "cluster config") -> ClusterConfig:
    """ClusterConfig from a mapping; ConfigError naming the field and the value otherwise."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping, got {type(data).__name__}")
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise ConfigError(f"{source}: {field}={err.get('input')!r}: {err['msg']}") from None


def load_cluster_config(path: str | os.PathLike[str] | None) -> ClusterConfig:
    """From a YAML file; else from $RAG_JOBS_CLUSTER_CONFIG (JSON, how the driver gets it); else defaults."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"cluster config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"cluster config {p} is not valid YAML: {str(exc).splitlines()[0]}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"cluster config {p} cannot be read as UTF-8 text: {why}") from exc
        return parse_cluster_config(data, source=f"cluster config {p}")
    text = os.environ.get(CLUSTER_CONFIG_ENV)
    if text:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"${CLUSTER_CONFIG_ENV} is not valid JSON: {exc}") from exc
        return parse_cluster_config(data, source=f"${CLUSTER_CONFIG_ENV}")
    return ClusterConfig()
