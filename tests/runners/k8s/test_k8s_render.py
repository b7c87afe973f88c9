"""The renderer: golden files, names, commands, the grid as one Indexed Job, security, the exit-code contract."""

from __future__ import annotations

import re

import pytest
import yaml
from k8s_helpers import DATA_STEPS, GOLDEN, GOLDEN_GRAPHS, MANIFESTS, REGENERATE, STORE, golden_graph, queued_yaml

from rag_jobs.errors import EXIT_BAD_INPUT, EXIT_TRANSIENT, ConfigError
from rag_jobs.runners.k8s.config import ClusterConfig, parse_cluster_config
from rag_jobs.runners.k8s.render import (
    Unit,
    dns_name,
    label_value,
    plan_units,
    render,
    render_driver_job,
    step_argv,
    to_yaml,
)
from rag_jobs.strategies import RunSettings, build_graph
from rag_jobs.strategies.graph import Graph, StepSpec

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TEMPLATE_HEADER = """\
# The Job of one step, as `rag-jobs submit` renders it (rag_jobs/runners/k8s/render.py builds this
# skeleton; tests/runners/k8s/test_k8s_render.py keeps this file equal to it: REGENERATE_GOLDEN=1 rewrites it).
# Per step the renderer fills in: name (<run>-<step>, DNS-1123, at most 63 characters), labels, the
# command (the step's console script, or torchrun for several GPUs), the GPU count, the CPU and
# memory of the step kind. A learning-rate grid becomes one Indexed Job (see render.py).
"""


def _rendered(name: str, cluster: ClusterConfig) -> list[dict]:
    graph = golden_graph(name)
    return [*render(graph, cluster, STORE), render_driver_job(graph, cluster, STORE)]


def _check_golden(path, text: str) -> None:
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with REGENERATE_GOLDEN=1"
    assert path.read_text() == text, f"{path.name} differs from the renderer: review, then REGENERATE_GOLDEN=1"


@pytest.mark.parametrize("name", sorted(GOLDEN_GRAPHS))
def test_rendered_yaml_matches_golden_file(name, cluster):
    _check_golden(GOLDEN / f"{name}.yaml", to_yaml(_rendered(name, cluster)))


def test_queued_render_matches_golden_file(cluster):
    """Kueue (suspended Jobs with the queue label), free-form labels, the index service, MLflow."""
    _check_golden(GOLDEN / "two-phase-queued.yaml", queued_yaml(cluster))


def test_job_template_in_manifests_is_the_renderers_skeleton(cluster):
    # build-index: a step with a console script and a GPU (the corpus Job, first in the graph, has neither)
    job = next(j for j in render(golden_graph("baseline"), cluster, STORE)
               if j["metadata"]["labels"]["rag-jobs.io/step"] == "build-index")
    _check_golden(MANIFESTS / "job-template.yaml", TEMPLATE_HEADER + to_yaml([job]))


def test_render_is_pure_and_deterministic(cluster, tmp_path):
    graph = golden_graph("two-phase")
    local = f"file://{tmp_path}/store"
    assert render(graph, cluster, local) == render(graph, cluster, local)
    assert not (tmp_path / "store").exists()  # nothing written


def test_one_job_per_step_and_one_indexed_job_per_grid(cluster):
    graph = golden_graph("two-phase")
    units = plan_units(graph)
    assert [u.name for u in units] == [*DATA_STEPS, "phase1-gen", "select-phase1", "phase2-pool",
                                       "phase2-embed", "select-phase2", "evaluate-two-phase"]
    covered = [s for u in units for s in u.steps]
    assert sorted(covered) == sorted(s.name for s in graph.steps)
    jobs = {j["metadata"]["labels"]["rag-jobs.io/step"]: j for j in render(graph, cluster, STORE)}
    grid = jobs["phase1-gen"]["spec"]
    assert grid["completionMode"] == "Indexed"
    assert grid["completions"] == 9
    assert grid["parallelism"] == cluster.grid_parallelism
    assert grid["backoffLimitPerIndex"] == cluster.backoff_limit
    assert "backoffLimit" not in grid
    assert grid["activeDeadlineSeconds"] == cluster.active_deadline_seconds * 3  # 9 children, 3 at a time
    steps = jobs["phase1-gen"]["metadata"]["annotations"]["rag-jobs.io/steps"].split(",")
    assert steps == [graph.step("select-phase1").inputs[r] for r in sorted(graph.step("select-phase1").inputs)]
    cmd = grid["template"]["spec"]["containers"][0]["command"]
    assert cmd[:5] == ["python", "-m", "rag_jobs.runners.k8s.indexed", "--steps", ",".join(steps)]
    assert "--step" not in cmd  # the index picks it
    select = jobs["select-phase1"]["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in select["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in select and "tolerations" not in select  # CPU steps stay off GPU nodes


def test_a_single_learning_rate_is_a_plain_job(cluster):
    graph = build_graph("ft-embed", RunSettings(embed_lr=1e-5), run_id="one-lr")
    units = plan_units(graph)
    assert all(not u.is_grid for u in units)
    assert len(render(graph, cluster, STORE)) == len(graph.steps)


def test_commands_are_the_entrypoints():
    run = "s3://b/p/runs/r"
    assert step_argv("build-index", 1, run, "build-index") == ["build-index", "--run", run, "--step", "build-index"]
    for kind in ("corpus", "splits"):  # no console script: run as modules
        assert step_argv(kind, 0, run, kind) == ["python", "-m", f"rag_jobs.jobs.{kind}", "--run", run, "--step", kind]
    assert step_argv("select", 0, run, "select-gen") == ["python", "-m", "rag_jobs.jobs.select", "--run", run,
                                                         "--step", "select-gen"]
    multi = step_argv("joint", 4, run, "joint-token")
    assert multi[:5] == ["torchrun", "--standalone", "--nproc_per_node=4", "-m", "rag_jobs.jobs.joint"]
    # `--` before --run: torchrun's argparse would take --run as an abbreviation of its --run-path.
    assert multi[5:] == ["--", "--run", run, "--step", "joint-token"]


def test_gpus_security_and_resources(cluster):
    for job in render(golden_graph("two-phase"), cluster, STORE):
        pod = job["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        res = c["resources"]
        assert res["requests"] == res["limits"]
        gpus = int(res["limits"].get("nvidia.com/gpu", "0"))
        kind = job["metadata"]["labels"]["app.kubernetes.io/component"]
        step = job["metadata"]["labels"]["rag-jobs.io/step"]
        single = kind in ("build-index", "evaluate") or step == "phase2-pool"  # scoring, not DDP training
        cpu_only = kind in ("select", "corpus", "splits")
        assert gpus == (0 if cpu_only else (1 if single else 2))
        assert res["limits"]["cpu"] == cluster.resources_of(kind).cpu
        assert res["limits"]["memory"] == cluster.resources_of(kind).memory
        if gpus:
            assert pod["nodeSelector"] == cluster.node_selector
            assert pod["tolerations"] == [{"operator": "Exists", "key": "nvidia.com/gpu", "effect": "NoSchedule"}]
        else:  # CPU steps stay off GPU nodes
            assert "nodeSelector" not in pod and "tolerations" not in pod
        if cpu_only:  # no console script: the entrypoint module of the kind
            assert c["command"][:3] == ["python", "-m", f"rag_jobs.jobs.{kind}"]
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/tmp", "/cache", "/dev/shm"} <= mounts
        shm = next(v for v in pod["volumes"] if v["name"] == "shm")
        assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": cluster.shm_size}
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["RAG_JOBS_CACHE"].startswith("/cache/") and env["HF_HOME"].startswith("/cache/")
        assert not any("SECRET" in k or "ACCESS_KEY" in k for k in env)  # credentials only as a mounted file
        spec = job["spec"]
        assert spec["ttlSecondsAfterFinished"] == cluster.ttl_seconds_after_finished
        assert pod["restartPolicy"] == "Never"  # required by podFailurePolicy
        assert pod["terminationGracePeriodSeconds"] == cluster.termination_grace_seconds


def test_pod_failure_policy_follows_the_exit_code_contract(cluster):
    graph = golden_graph("two-phase")
    for job in [*render(graph, cluster, STORE), render_driver_job(graph, cluster, STORE)]:
        rules = job["spec"]["podFailurePolicy"]["rules"]
        by_code = {v: r["action"] for r in rules if "onExitCodes" in r for v in r["onExitCodes"]["values"]}
        indexed = job["spec"].get("completionMode") == "Indexed"
        assert by_code == {EXIT_BAD_INPUT: "FailIndex" if indexed else "FailJob"}
        assert EXIT_TRANSIENT not in by_code  # exit 1 counts against the backoff limit: retried
        assert all(r["onExitCodes"]["containerName"] == "step" for r in rules if "onExitCodes" in r)
        disruption = [r for r in rules if "onPodConditions" in r]
        assert disruption == [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                                         "status": "True"}]}]


def test_labels_and_names(cluster):
    graph = golden_graph("two-phase")
    for job in render(graph, cluster, STORE):
        meta = job["metadata"]
        assert DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 63
        labels = meta["labels"]
        assert labels["rag-jobs.io/run"] == graph.run_id
        assert labels["rag-jobs.io/strategy"] == "two-phase"
        assert labels["app.kubernetes.io/instance"] == graph.run_id
        for key in ("name", "instance", "component", "part-of", "managed-by"):
            assert f"app.kubernetes.io/{key}" in labels
        assert job["spec"]["template"]["metadata"]["labels"] == labels
        assert meta["namespace"] == cluster.namespace


def test_dns_names_are_safe_truncated_and_distinct():
    assert dns_name("baseline-1-build-index") == "baseline-1-build-index"
    long_a = "a" * 40 + "-finetune-embed.lr-1e-05-and-a-very-long-tail"
    long_b = "a" * 40 + "-finetune-embed.lr-3e-05-and-a-very-long-tail"
    for name in (dns_name(long_a), dns_name(long_b), dns_name("Run_ID.With.Dots"), dns_name("x" * 100, 56)):
        assert DNS_LABEL.match(name), name
    assert len(dns_name(long_a)) == 63 and dns_name(long_a) != dns_name(long_b)
    assert len(dns_name("x" * 100, 56)) == 56
    assert dns_name("a.b") != dns_name("a-b")  # a replaced character adds the hash
    assert label_value("step-name.") == "step-name"


def test_long_run_ids_give_valid_job_names(cluster):
    graph = build_graph("two-phase", RunSettings(), run_id="r" * 63)
    for job in render(graph, cluster, STORE):
        name = job["metadata"]["name"]
        assert DNS_LABEL.match(name)
        limit = 56 if job["spec"].get("completionMode") == "Indexed" else 63
        assert len(name) <= limit
    names = [j["metadata"]["name"] for j in render(graph, cluster, STORE)]
    assert len(set(names)) == len(names)


def test_grid_unit_name_never_collides_with_a_step():
    steps = [
        StepSpec("idx", "build-index", {}),
        StepSpec("x.a", "finetune-gen", {}, {"index": "idx"}, gpus=1),
        StepSpec("x.b", "finetune-gen", {}, {"index": "idx"}, gpus=1),
        StepSpec("select-x", "select", {}, {"child-00": "x.a", "child-01": "x.b"}, needs="any"),
        StepSpec("x", "evaluate", {}, {"index": "idx", "generator": "select-x"}, gpus=1),  # named like the grid
    ]
    units = plan_units(Graph(run_id="g", strategy="custom", steps=steps))
    assert [u.name for u in units] == ["idx", "select-x-grid", "select-x", "x"]
    assert units[1] == Unit("select-x-grid", "finetune-gen", ("x.a", "x.b"), 1, "select-x")


def test_cluster_config_names_bad_fields():
    with pytest.raises(ConfigError, match="namespace"):
        parse_cluster_config({"namespace": "Not_Valid"})
    with pytest.raises(ConfigError, match="resources"):
        parse_cluster_config({"resources": {"nope": {"cpu": "1", "memory": "1Gi"}}})
    with pytest.raises(ConfigError, match="imagee"):
        parse_cluster_config({"imagee": "x"})


def test_driver_job_gets_the_cluster_config_and_an_api_token(cluster):
    graph = golden_graph("baseline")
    driver = render_driver_job(graph, cluster, STORE)
    pod = driver["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == cluster.driver_service_account
    assert pod["automountServiceAccountToken"] is True
    (c,) = pod["containers"]
    assert c["command"] == ["rag-jobs", "drive", f"{STORE}/runs/{graph.run_id}"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert parse_cluster_config(yaml.safe_load(env["RAG_JOBS_CLUSTER_CONFIG"])) == cluster


def test_a_data_volume_is_mounted_read_only_in_step_pods_only(cluster):
    with_data = cluster.model_copy(update={"data_pvc": "datasets", "data_mount_path": "/data"})
    graph = golden_graph("two-phase")
    for job in render(graph, with_data, STORE):
        pod = job["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        assert {"name": "data", "mountPath": "/data", "readOnly": True} in c["volumeMounts"]
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "datasets", "readOnly": True}} in pod["volumes"]
    driver = render_driver_job(graph, with_data, STORE)["spec"]["template"]["spec"]
    assert all(v["name"] != "data" for v in driver["volumes"])


def test_cluster_labels_may_not_take_the_keys_the_driver_selects_by():
    from pydantic import ValidationError

    from rag_jobs.runners.k8s.config import ClusterConfig

    for key in ("rag-jobs.io/run", "app.kubernetes.io/name", "kueue.x-k8s.io/queue-name"):
        with pytest.raises(ValidationError, match="rag-jobs sets those keys itself"):
            ClusterConfig(labels={key: "x"})
    with pytest.raises(ValidationError, match=r"may not set rag-jobs\.io/steps"):
        ClusterConfig(annotations={"rag-jobs.io/steps": "x"})
    assert ClusterConfig(labels={"team": "a"}, queue_name="team-a").queue_name == "team-a"
