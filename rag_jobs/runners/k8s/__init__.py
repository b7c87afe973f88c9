"""Kubernetes: render a graph as Jobs (pure), drive them from an in-cluster Job, submit/watch (the only k8s I/O)."""

from rag_jobs.runners.k8s.config import ClusterConfig, load_cluster_config, parse_cluster_config
from rag_jobs.runners.k8s.render import plan_units, render, render_driver_job, to_yaml

__all__ = ["ClusterConfig", "load_cluster_config", "parse_cluster_config", "plan_units", "render",
           "render_driver_job", "to_yaml"]
