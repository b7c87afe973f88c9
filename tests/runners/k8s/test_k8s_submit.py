"""`rag-jobs submit --dry-run`, submit/resume against a fake cluster, the Job-state mapping, `indexed`."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml
from k8s_helpers import HERE
from typer.testing import CliRunner

from rag_jobs.artifacts import LocalStore, RunRef
from rag_jobs.cli import app
from rag_jobs.errors import ConfigError
from rag_jobs.runners.k8s.driver import mark_failed, read_failure, reconcile
from rag_jobs.runners.k8s.indexed import child_argv
from rag_jobs.runners.k8s.submit import job_state, submit_run
from rag_jobs.strategies import RunSettings, build_graph


def test_submit_dry_run_prints_every_step_and_touches_nothing(tmp_path):
    store = tmp_path / "store"
    res = CliRunner().invoke(app, ["submit", "two-phase", "--store", str(store), "--dry-run",
                                   "--cluster-config", str(HERE / "cluster.yaml"), "--lr-grid", "1e-5,3e-5",
                                   "--run-id", "dry"])
    assert res.exit_code == 0, res.output
    docs = list(yaml.safe_load_all(res.output))
    assert all(d["kind"] == "Job" for d in docs)
    covered = {s for d in docs for s in d["metadata"]["annotations"].get("rag-jobs.io/steps", "").split(",") if s}
    graph = build_graph("two-phase", RunSettings(gen_lr_grid=(1e-5, 3e-5), embed_lr_grid=(1e-5, 3e-5)), "dry")
    assert covered == {s.name for s in graph.steps}
    for step in graph.steps:
        assert step.name in res.output
    assert docs[-1]["metadata"]["name"] == "dry-driver"
    assert not store.exists()  # neither the store nor (no kubeconfig here) the cluster was touched


def test_submit_rejects_a_local_store_before_reaching_a_cluster(tmp_path):
    res = CliRunner().invoke(app, ["submit", "baseline", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2
    assert "s3://" in res.output
    assert not (tmp_path / "s").exists()


def test_submit_dry_run_reports_a_bad_cluster_config(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("namespace: Not_OK\n")
    res = CliRunner().invoke(app, ["submit", "baseline", "--store", "s3://b/p", "--dry-run",
                                   "--cluster-config", str(bad)])
    assert res.exit_code == 2 and "namespace" in res.output


def test_submit_with_mlflow_needs_the_clusters_tracking_uri(tmp_path):
    res = CliRunner().invoke(app, ["submit", "baseline", "--store", "s3://b/p", "--dry-run", "--track", "mlflow"])
    assert res.exit_code == 2 and "mlflow_tracking_uri" in res.output
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mlflow_tracking_uri: https://mlflow.example.internal\n")
    res = CliRunner().invoke(app, ["submit", "baseline", "--store", "s3://b/p", "--dry-run", "--track", "mlflow",
                                   "--cluster-config", str(cfg)])
    assert res.exit_code == 0 and "value: https://mlflow.example.internal" in res.output
    res = CliRunner().invoke(app, ["submit", "baseline", "--store", "s3://b/p", "--dry-run", "--track", "wandb"])
    assert res.exit_code == 2 and "wandb" in res.output


class S3LikeStore(LocalStore):
    """A local folder that calls itself s3:// (submit accepts only stores that pods can reach)."""

    @property
    def uri(self) -> str:
        return "s3://bucket/prefix"


def test_submit_starts_one_driver_and_resumes_a_failed_run(tmp_path, cluster, fake_api):
    store = S3LikeStore(tmp_path / "store")
    graph = build_graph("baseline", RunSettings(), run_id="sub")
    name = submit_run(graph, cluster, store, fake_api, sleep=lambda s: None)
    assert name == "sub-driver" and fake_api.created == ["sub-driver"]
    assert store.exists(RunRef("sub").graph_key)
    assert submit_run(graph, cluster, store, fake_api, sleep=lambda s: None) == "sub-driver"
    assert fake_api.created == ["sub-driver"]  # already running: nothing new
    reconcile(graph, store, fake_api, cluster)
    assert fake_api.step_labels() == ["driver", "corpus"]
    fake_api.set_state("corpus", "failed", "BackoffLimitExceeded")
    fake_api.set_state("driver", "failed")
    assert reconcile(graph, store, fake_api, cluster).failed
    submit_run(graph, cluster, store, fake_api, sleep=lambda s: None)  # resume after fixing the cause
    assert read_failure(store, RunRef("sub")) is None
    assert fake_api.step_labels() == ["driver"] and fake_api.created.count("sub-driver") == 2
    mark_failed(store, RunRef("sub"), "cancelled")
    with pytest.raises(ConfigError, match="s3://"):
        submit_run(graph, cluster, LocalStore(tmp_path / "other"), fake_api)


def _cond(type_, status="True", reason=None, message=None):
    return SimpleNamespace(type=type_, status=status, reason=reason, message=message)


def test_job_state_from_conditions():
    assert job_state(None) == ("active", "")
    assert job_state([_cond("Suspended", "False")]) == ("active", "")
    assert job_state([_cond("Complete")]) == ("succeeded", "")
    assert job_state([_cond("Failed", reason="PodFailurePolicy", message="exit code 2")]) == (
        "failed", "PodFailurePolicy exit code 2")
    assert job_state([_cond("FailureTarget", reason="BackoffLimitExceeded")])[0] == "failed"


def test_indexed_picks_the_child_of_its_completion_index():
    argv = ["--steps", "a,b,c", "--", "finetune-embed", "--run", "s3://b/runs/r"]
    assert child_argv(argv, {"JOB_COMPLETION_INDEX": "1"}) == ["finetune-embed", "--run", "s3://b/runs/r",
                                                               "--step", "b"]
    for env in ({}, {"JOB_COMPLETION_INDEX": "3"}, {"JOB_COMPLETION_INDEX": "-1"}):
        with pytest.raises(ValueError):
            child_argv(argv, env)
    with pytest.raises(ValueError):
        child_argv(["--steps", "a"], {"JOB_COMPLETION_INDEX": "0"})


def test_indexed_execs_the_command_with_its_exit_code(tmp_path):
    code = "import sys; print(sys.argv[1:]); sys.exit(7)"
    res = subprocess.run([sys.executable, "-m", "rag_jobs.runners.k8s.indexed", "--steps", "a,b", "--",
                          sys.executable, "-c", code], env={"JOB_COMPLETION_INDEX": "1", "PATH": ""},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 7 and res.stdout.strip() == "['--step', 'b']"
    res = subprocess.run([sys.executable, "-m", "rag_jobs.runners.k8s.indexed", "--steps", "a", "--", "true"],
                         env={}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "JOB_COMPLETION_INDEX" in res.stderr


def _kube_api(batch=None, core=None):
    from rag_jobs.runners.k8s.submit import KubeApi

    api = KubeApi.__new__(KubeApi)  # no kubeconfig here: wire the client objects by hand
    api.namespace, api.batch, api.core = "rag-jobs", batch, core
    return api


def test_kube_api_maps_client_objects_and_errors():
    from kubernetes.client import V1Job, V1JobCondition, V1JobList, V1JobStatus, V1ListMeta, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    from rag_jobs.errors import TransientError

    pages = {None: V1JobList(items=[V1Job(metadata=V1ObjectMeta(name="a", labels={"x": "1"}),
                                          status=V1JobStatus(conditions=[V1JobCondition(type="Complete",
                                                                                        status="True")]))],
                             metadata=V1ListMeta(_continue="next")),
             "next": V1JobList(items=[V1Job(metadata=V1ObjectMeta(name="b"), status=None)], metadata=V1ListMeta())}
    calls = []

    def list_namespaced_job(namespace, label_selector, limit, _continue):
        calls.append((namespace, label_selector, _continue))
        return pages[_continue]

    def create_namespaced_job(namespace, body):
        raise ApiException(status={"exists": 409, "forbidden": 403, "busy": 503}[body["metadata"]["name"]])

    deleted = []

    def delete_namespaced_job(name, namespace, propagation_policy):
        deleted.append((name, namespace, propagation_policy))
        if name == "gone":
            raise ApiException(status=404)

    api = _kube_api(batch=SimpleNamespace(list_namespaced_job=list_namespaced_job,
                                          create_namespaced_job=create_namespaced_job,
                                          delete_namespaced_job=delete_namespaced_job))
    jobs = api.list_jobs({"rag-jobs.io/run": "r", "a": "b"})
    assert [(j.name, j.state, j.labels) for j in jobs] == [("a", "succeeded", {"x": "1"}), ("b", "active", {})]
    assert calls[0] == ("rag-jobs", "a=b,rag-jobs.io/run=r", None) and calls[1][2] == "next"
    assert api.create_job({"metadata": {"name": "exists"}}) is False
    with pytest.raises(ConfigError, match="403"):
        api.create_job({"metadata": {"name": "forbidden"}})
    with pytest.raises(TransientError, match="503"):
        api.create_job({"metadata": {"name": "busy"}})
    api.delete_job("gone")
    assert deleted == [("gone", "rag-jobs", "Background")]


def test_the_rendered_torchrun_command_hands_run_and_step_to_the_entrypoint(tmp_path):
    pytest.importorskip("torch")
    from rag_jobs.runners.k8s.render import step_argv

    argv = step_argv("joint", 2, "s3://b/p/runs/r", "joint-token")
    assert argv[0] == "torchrun"
    (tmp_path / "print_argv.py").write_text("import sys\nprint('ARGV', sys.argv[1:])\n")
    argv = [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    argv[argv.index("rag_jobs.jobs.joint")] = "print_argv"  # same torchrun parsing, a module that only prints
    res = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PATH": "", "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [x for x in res.stdout.splitlines() if x.startswith("ARGV")]
    assert lines == ["ARGV ['--run', 's3://b/p/runs/r', '--step', 'joint-token']"] * 2
