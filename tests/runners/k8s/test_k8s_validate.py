"""Every rendered object and every file in manifests/ is valid Kubernetes (strict schema) and passes checkov."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from k8s_helpers import GOLDEN_GRAPHS, MANIFESTS, REPO, STORE, golden_graph, queued_yaml

from rag_jobs.runners.k8s.render import render, render_driver_job, to_yaml
from rag_jobs.strategies import ALL_STRATEGIES, RunSettings, build_graph

K8S_VERSION = "1.30.0"  # a version kubernetes-validate ships; podFailurePolicy and backoffLimitPerIndex are in it

# The one check that may fail, and only for the driver's Job: CKV_K8S_38 wants no service-account
# token mounted, but the driver is the pod whose job is to call the Kubernetes API (create, list and
# delete the run's Jobs); its token is limited by manifests/driver-rbac.yaml. Step pods must pass it.
ALLOWED_FAILURES = {("CKV_K8S_38", "driver")}


def _all_objects(cluster) -> dict[str, list[dict]]:
    out = {}
    for strategy in ALL_STRATEGIES:
        settings = RunSettings(embed_lr=1e-5, gen_lr=1e-5) if strategy.startswith("rag-") else RunSettings(gpus=2)
        graph = build_graph(strategy, settings, run_id=f"{strategy}-check")
        text = to_yaml([*render(graph, cluster, STORE), render_driver_job(graph, cluster, STORE)])
        out[strategy] = list(yaml.safe_load_all(text))  # through YAML: quoting must survive
    for path in sorted(MANIFESTS.glob("*.yaml")):
        out[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    # the paper's setup on the example 8xA10 cluster: torchrun over 8 GPUs, 16 index shards, a dataset PVC
    from rag_jobs.cli import load_settings
    from rag_jobs.runners.k8s.config import load_cluster_config

    paper = build_graph("two-phase", load_settings(REPO / "jobs" / "paper" / "two-phase.yaml", {}), "paper-check")
    big = load_cluster_config(REPO / "jobs" / "cluster-8xa10.yaml")
    out["jobs/paper/two-phase.yaml"] = list(yaml.safe_load_all(to_yaml(
        [*render(paper, big, STORE), render_driver_job(paper, big, STORE)])))
    out["queued two-phase"] = list(yaml.safe_load_all(queued_yaml(cluster)))
    return out


def test_every_object_passes_strict_schema_validation(cluster):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    objects = _all_objects(cluster)
    assert {"job-template.yaml", "driver-rbac.yaml", "networkpolicy.yaml", "s3-credentials-example.yaml"} <= set(
        objects)
    for source, docs in objects.items():
        assert docs, source
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{source}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_driver_rbac_grants_exactly_what_the_driver_uses():
    docs = list(yaml.safe_load_all((MANIFESTS / "driver-rbac.yaml").read_text()))
    (role,) = [d for d in docs if d["kind"] == "Role"]
    rules = {(g, r): sorted(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"]
             for r in rule["resources"]}
    assert rules == {
        ("batch", "jobs"): sorted(["create", "get", "list", "watch", "delete"]),
        ("", "pods"): ["get", "list"],
        ("", "pods/log"): ["get"],
    }
    assert not any(d["kind"].startswith("Cluster") for d in docs)


def test_no_literal_credentials_in_manifests():
    for path in MANIFESTS.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert doc["kind"] != "Secret", f"{path.name}: a Secret with data belongs out of git"
        text = path.read_text()
        assert "aws_secret_access_key" not in text.lower() and "AKIA" not in text


def _checkov() -> str | None:
    # checkov pins old boto3/botocore/packaging, so it lives in a venv of its own (see the test extra notes).
    for candidate in (os.environ.get("CHECKOV"), shutil.which("checkov"), REPO / ".venv/tools-checkov/bin/checkov"):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def test_checkov_finds_nothing(cluster, tmp_path):
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov not installed (set CHECKOV=/path/to/checkov)")
    for name in GOLDEN_GRAPHS:  # every kind of Job the renderer makes; the other strategies only repeat them
        graph = golden_graph(name)
        (tmp_path / f"{name}.yaml").write_text(
            to_yaml([*render(graph, cluster, STORE), render_driver_job(graph, cluster, STORE)]))
    (tmp_path / "queued-two-phase.yaml").write_text(queued_yaml(cluster))
    for path in MANIFESTS.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    res = subprocess.run([checkov, "-d", str(tmp_path), "--framework", "kubernetes", "--output", "json",
                          "--compact", "--skip-download"], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    assert res.stdout.strip(), res.stderr[-2000:]
    report = json.loads(res.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 100  # it did scan the files
    unexpected = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in failed
                  if not any(c["check_id"] == cid and c["resource"].endswith(f"-{suffix}")
                             for cid, suffix in ALLOWED_FAILURES)]
    assert not unexpected, "checkov failed checks:\n" + "\n".join(unexpected)
