"""Helpers of the Kubernetes tests (a module of its own: every test folder has a `conftest`)."""

from __future__ import annotations

import os
from pathlib import Path

from rag_jobs.runners.k8s.api import JobInfo, PodInfo
from rag_jobs.strategies import RunSettings, build_graph
from rag_jobs.strategies.graph import Graph

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
GOLDEN = HERE / "golden"
MANIFESTS = REPO / "manifests"
STORE = "s3://rag-jobs-test/store"
REGENERATE = os.environ.get("REGENERATE_GOLDEN") == "1"

# The steps every run graph begins with, in the order a driver creates their Jobs: the corpus, then the index and
# the question splits (both read only the corpus; every step over questions reads the index and the splits).
DATA_STEPS = ("corpus", "build-index", "splits")

# name -> (strategy, settings): fixed run ids keep the goldens independent of step-config defaults.
GOLDEN_GRAPHS = {
    "baseline": ("baseline", {}),
    "two-phase": ("two-phase", {"gpus": 2}),  # two GPUs per training step: torchrun in one pod
}


def golden_graph(name: str) -> Graph:
    strategy, settings = GOLDEN_GRAPHS[name]
    return build_graph(strategy, RunSettings.model_validate(settings), run_id=f"{name}-golden")


class FakeApi:
    """A cluster you can compute by hand: Jobs are dicts, states are set by the test."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}
        self.states: dict[str, tuple[str, str]] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.pods: list[PodInfo] = []
        self.logs: dict[str, list[str]] = {}

    def create_job(self, manifest: dict) -> bool:
        name = manifest["metadata"]["name"]
        if name in self.jobs:
            return False
        self.jobs[name] = manifest
        self.created.append(name)
        return True

    def list_jobs(self, labels: dict[str, str]) -> list[JobInfo]:
        out = []
        for name, m in self.jobs.items():
            meta = m["metadata"]
            if all(meta["labels"].get(k) == v for k, v in labels.items()):
                state, message = self.states.get(name, ("active", ""))
                out.append(JobInfo(name, dict(meta["labels"]), dict(meta.get("annotations", {})), state, message))
        return out

    def delete_job(self, name: str) -> None:
        self.jobs.pop(name, None)
        self.deleted.append(name)

    def list_pods(self, labels: dict[str, str]) -> list[PodInfo]:
        return [p for p in self.pods if all(p.labels.get(k) == v for k, v in labels.items())]

    def pod_logs(self, pod: str, *, follow: bool = False):
        yield from self.logs.get(pod, [])

    # --- test helpers ---
    def job_for(self, step_label: str) -> str:
        return next(n for n, m in self.jobs.items() if m["metadata"]["labels"]["rag-jobs.io/step"] == step_label)

    def set_state(self, step_label: str, state: str, message: str = "") -> None:
        self.states[self.job_for(step_label)] = (state, message)

    def step_labels(self) -> list[str]:
        return [m["metadata"]["labels"]["rag-jobs.io/step"] for m in self.jobs.values()]


def queued_yaml(cluster) -> str:
    """two-phase for a Kueue queue, with free-form labels and annotations, retrieval through the index service
    and MLflow tracking (strict-validated, checkov-scanned and kept as a golden file)."""
    from rag_jobs.runners.k8s.render import render, render_driver_job, to_yaml

    queued = cluster.model_copy(update={
        "queue_name": "team-a", "labels": {"team": "a"}, "annotations": {"cost-center": "ml-42"},
        "retriever": "http://idx-index-service.rag-jobs:8080", "index_client": "idx-index-service",
        "index_token_secret": "idx-index-service-token", "mlflow_tracking_uri": "http://mlflow.mlops:5000",
        "mlflow_token_secret": "mlflow-token"})
    graph = build_graph("two-phase", RunSettings(gpus=2, track="mlflow"), run_id="two-phase-queued")
    docs = [*render(graph, queued, STORE), render_driver_job(graph, queued, STORE)]
    steps = docs[:-1]
    assert all(d["spec"]["suspend"] is True and d["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
               for d in steps)
    assert "suspend" not in docs[-1]["spec"]  # the driver is not queued
    for d in steps:
        env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "RAG_JOBS_RETRIEVER", "value": "http://idx-index-service.rag-jobs:8080"} in env
        assert {"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow.mlops:5000"} in env
        assert {"name": "RAG_JOBS_MLFLOW_TOKEN_FILE", "value": "/var/run/secrets/rag-jobs/mlflow/token"} in env
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        assert volumes["mlflow-token"]["secret"]["secretName"] == "mlflow-token"
    return to_yaml(docs)
