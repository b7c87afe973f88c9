"""The submit/driver/cancel path through `KubeApi` and the official client, over real HTTP on 127.0.0.1.

The cluster is kmock's `KubernetesEmulator` (an aiohttp server that stores what is POSTed, merges
PATCHes, soft-deletes on DELETE and answers 409/404 like the API server), served by its own asyncio
loop in a thread on a free port. `KubeApi` finds it through a kubeconfig written into tmp_path.
The emulator plays no controller: a Job's status changes only when a test PATCHes it (as the Job
controller would, through the `status` subresource).

Where the emulator falls short of what rag-jobs needs, this file adds a kmock route (its own DSL):
- list ignores `labelSelector` (it would return every Job of the namespace, and cancel would
  delete other runs' Jobs): `Emulator._list_jobs` filters by the equality selector KubeApi sends;
- list ignores `limit`/`continue`: the route ignores them too (KubeApi asks for 500 a page);
- list answers 404 for a resource it has not seen an object of yet: `batch/v1/jobs` is declared
  up front in `kmock.resources`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
from typing import Any

import kmock
import pytest
import yaml
from k8s_helpers import DATA_STEPS, HERE
from kubernetes import client as k8s_client
from kubernetes.config import kube_config
from typer.testing import CliRunner

from rag_jobs.artifacts import LocalStore, RunRef, StepRef, commit_dir, is_committed, open_store
from rag_jobs.cli import app
from rag_jobs.errors import EXIT_BAD_INPUT, ConfigError, TransientError
from rag_jobs.runners.k8s.driver import drive, failed_key, read_failure, reconcile
from rag_jobs.runners.k8s.render import A_STEPS, L_STEP
from rag_jobs.runners.k8s.submit import KubeApi, submit_run
from rag_jobs.runners.local import publish_graph
from rag_jobs.strategies import RunSettings, build_graph

pytestmark = pytest.mark.timeout(60)  # the client has no request timeout: a stuck server must not hang CI

JOBS = kmock.resource("batch", "v1", "jobs")
NS = "rag-jobs"  # the namespace of tests/runners/k8s/cluster.yaml


class Emulator:
    """kmock's Kubernetes emulator on 127.0.0.1:<free port>, run by its own event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kmock", daemon=True)
        self._stack = contextlib.AsyncExitStack()
        self.stale_lists = 0  # the next N Job lists answer "no Jobs" (a driver that listed before a create landed)
        self.list_faults: list[int] = []  # HTTP statuses the next Job lists answer with, one each

    # --- lifecycle ---
    def start(self) -> Emulator:
        self.thread.start()
        self.kmock, self.server = self._on_loop(self._start())
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.batch = k8s_client.BatchV1Api(k8s_client.ApiClient(k8s_client.Configuration(host=self.url)))
        return self

    async def _start(self) -> tuple[kmock.KubernetesEmulator, kmock.Server]:
        emulator = await self._stack.enter_async_context(kmock.KubernetesEmulator())
        server = await self._stack.enter_async_context(kmock.Server(emulator))  # no port given: a free one
        emulator.resources[JOBS] = kmock.ResourceInfo(kind="Job", singular="job", namespaced=True,
                                                      verbs={"create", "delete", "get", "list", "patch"},
                                                      subresources={"status"})
        # Below the priority of plain routes, so a test's `kmock[...] << 503` still wins.
        emulator[kmock.action.LIST, JOBS] ** -1 << self._list_jobs
        return emulator, server

    def stop(self) -> None:
        try:
            if getattr(self, "batch", None) is not None:
                self.batch.api_client.close()
            if self.thread.is_alive():
                self._on_loop(self._stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            if not self.thread.is_alive():
                self.loop.close()

    def _on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    # --- the route that stands in for the emulator's list (runs on the server's loop) ---
    def _list_jobs(self, request: kmock.Request) -> dict[str, Any]:
        if self.list_faults:
            raise kmock.KubernetesError(self.list_faults.pop(0), "InjectedFault", "a fault injected by the test")
        wanted = _parse_selector(request.params.get("labelSelector", ""))
        items = []
        if self.stale_lists:
            self.stale_lists -= 1
        else:
            for (res, ns, _name), obj in list(self.kmock.objects.items()):
                if res == JOBS and ns == request.namespace and not obj.deleted:
                    labels = obj.raw.get("metadata", {}).get("labels") or {}
                    if all((labels.get(k) == v) == eq for k, eq, v in wanted):
                        items.append(obj.raw)
        return {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {"resourceVersion": "1"}, "items": items}

    # --- what the test looks at (the client is synchronous: the server is idle while we read) ---
    def live(self) -> dict[str, dict]:
        """name -> manifest of every Job in the namespace now, in order of first creation."""
        return {name: obj.raw for (res, ns, name), obj in self.kmock.objects.items()
                if res == JOBS and ns == NS and not obj.deleted}

    def step_labels(self) -> list[str]:
        return [m["metadata"]["labels"][L_STEP] for m in self.live().values()]

    def history(self, name: str) -> list[str]:
        """'created' / 'deleted' for each version of a Job (status PATCHes are folded into 'created')."""
        out: list[str] = []
        for version in self.kmock.objects[JOBS, NS, name].history:
            mark = "deleted" if version is None else "created"
            if not out or out[-1] != mark:
                out.append(mark)
        return out

    def posted(self) -> list[str]:
        """The Job names of every create request, in order (those answered 409 too)."""
        return [r.data["metadata"]["name"] for r in self.kmock[kmock.action.CREATE, JOBS]]

    def deletes(self) -> list[tuple[str, dict]]:
        return [(r.name, dict(r.params)) for r in self.kmock[kmock.action.DELETE, JOBS]]

    def set_condition(self, name: str, type_: str, reason: str = "", message: str = "") -> None:
        """Finish a Job the way the Job controller does: a True condition through the status subresource."""
        cond = {"type": type_, "status": "True", "reason": reason or None, "message": message or None}
        self.batch.patch_namespaced_job_status(name, NS, {"status": {"conditions": [cond]}})


def _parse_selector(text: str) -> list[tuple[str, bool, str]]:
    """(key, equal?, value) of an equality-based label selector: `a=b,c==d,e!=f`."""
    out = []
    for term in filter(None, text.split(",")):
        m = re.fullmatch(r"([^=!]+)(==|=|!=)([^=!]*)", term)
        if m is None:
            raise kmock.KubernetesError(400, "BadRequest", f"unsupported label selector term {term!r}")
        out.append((m.group(1), m.group(2) != "!=", m.group(3)))
    return out


@pytest.fixture
def emulator(tmp_path, monkeypatch):
    emu = Emulator()
    try:
        emu.start()
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": emu.url}}],
            "users": [{"name": "test", "user": {"token": "test-token"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test", "namespace": NS}}],
        }))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # in a pod, KubeApi would use in-cluster config
        monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        # kubernetes.config reads $KUBECONFIG once, when imported (maybe by an earlier test): repoint it too.
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        # load_kube_config installs a process-wide default Configuration: put the old one back afterwards.
        monkeypatch.setattr(k8s_client.Configuration, "_default", k8s_client.Configuration._default)
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def store(tmp_path):
    return open_store(f"file://{tmp_path}/store")


def _graph(strategy: str, store, run_id: str | None = None, **settings):
    graph = build_graph(strategy, RunSettings.model_validate(settings), run_id=run_id or f"{strategy}-kmock")
    publish_graph(store, graph)
    return graph


def _commit(store, graph, step: str, tmp_path) -> None:
    folder = tmp_path / "out" / graph.run_id / step
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"step": step}))
    commit_dir(store, StepRef(graph.run_id, step), folder)


def _api() -> KubeApi:
    """A fresh KubeApi (a new driver process): kubeconfig loaded anew, nothing in memory."""
    return KubeApi(NS)


def _name(graph, label: str) -> str:
    return f"{graph.run_id}-{label}"


# --- 1. dependency order ---------------------------------------------------------------------------------


def test_jobs_are_created_in_dependency_order(emulator, store, cluster, tmp_path):
    graph = _graph("baseline", store)
    api = _api()
    state = reconcile(graph, store, api, cluster)
    assert emulator.step_labels() == ["corpus"]
    assert state.created == [_name(graph, "corpus")] and state.waiting == ["build-index", "splits", "evaluate"]
    job = emulator.live()[_name(graph, "corpus")]
    assert job["kind"] == "Job" and job["metadata"]["labels"]["rag-jobs.io/run"] == graph.run_id
    _commit(store, graph, "corpus", tmp_path)  # the entrypoint commits, then its Job completes
    emulator.set_condition(_name(graph, "corpus"), "Complete")
    assert reconcile(graph, store, api, cluster).created == [_name(graph, "build-index"), _name(graph, "splits")]
    assert emulator.step_labels() == ["corpus", "build-index", "splits"]
    _commit(store, graph, "build-index", tmp_path)
    emulator.set_condition(_name(graph, "build-index"), "Complete")
    assert reconcile(graph, store, api, cluster).created == []  # evaluate needs the splits too
    _commit(store, graph, "splits", tmp_path)
    emulator.set_condition(_name(graph, "splits"), "Complete")
    assert reconcile(graph, store, api, cluster).created == [_name(graph, "evaluate")]
    assert emulator.step_labels() == [*DATA_STEPS, "evaluate"]
    _commit(store, graph, "evaluate", tmp_path)
    assert reconcile(graph, store, api, cluster).complete
    assert emulator.posted() == [_name(graph, s) for s in (*DATA_STEPS, "evaluate")]


def test_evaluate_waits_while_build_index_runs(emulator, store, cluster, tmp_path):
    graph = _graph("baseline", store)
    api = _api()
    reconcile(graph, store, api, cluster)
    for _ in range(3):
        state = reconcile(graph, store, api, cluster)
        assert state.created == [] and state.running == ["corpus"]
        assert state.waiting == ["build-index", "splits", "evaluate"]
    assert emulator.step_labels() == ["corpus"] and len(emulator.posted()) == 1
    _commit(store, graph, "corpus", tmp_path)
    emulator.set_condition(_name(graph, "corpus"), "Complete")
    reconcile(graph, store, api, cluster)
    _commit(store, graph, "splits", tmp_path)  # the splits are done; the index is not
    emulator.set_condition(_name(graph, "splits"), "Complete")
    for _ in range(3):
        state = reconcile(graph, store, api, cluster)
        assert state.created == [] and state.running == ["build-index"] and state.waiting == ["evaluate"]
    assert emulator.step_labels() == list(DATA_STEPS) and len(emulator.posted()) == 3


def test_drive_runs_a_two_phase_graph_in_order_through_the_emulator(emulator, store, cluster, tmp_path):
    graph = _graph("two-phase", store, gen_lr_grid=[1e-5, 3e-5], embed_lr_grid=[1e-6, 3e-6])
    committed_before: set[str] = set()  # what the store held when the pass that just ran began
    seen: set[str] = set()

    def cluster_runs_jobs(_seconds: float) -> None:
        nonlocal committed_before
        for name, manifest in emulator.live().items():
            steps = manifest["metadata"]["annotations"][A_STEPS].split(",")
            if name not in seen:  # created by the pass that just ran: its inputs were committed before it
                seen.add(name)
                inputs = {d for s in steps for d in graph.step(s).deps} - set(steps)
                assert inputs <= committed_before, f"{name} created before {inputs - committed_before} committed"
            if not manifest.get("status"):  # the pods run, the entrypoints commit, the controller marks it
                for step in steps:
                    _commit(store, graph, step, tmp_path)
                emulator.set_condition(name, "Complete")
        committed_before = {s.name for s in graph.steps if is_committed(store, StepRef(graph.run_id, s.name))}

    assert drive(graph, store, _api(), cluster, sleep=cluster_runs_jobs, max_passes=20) == 0
    expected = [*DATA_STEPS, "phase1-gen", "select-phase1", "phase2-pool", "phase2-embed", "select-phase2",
                "evaluate-two-phase"]
    assert emulator.step_labels() == expected
    assert emulator.posted() == [_name(graph, label) for label in expected]  # each created once, in this order


def test_drive_rides_out_a_transient_api_fault(emulator, store, cluster):
    graph = _graph("baseline", store)
    emulator.list_faults = [503]
    passes = []
    code = drive(graph, store, _api(), cluster, sleep=passes.append, max_passes=2)
    assert code == 1 and len(passes) == 2  # pass 1: 503 (retry), pass 2: creates corpus, still running
    assert emulator.step_labels() == ["corpus"]


# --- 2. a failed step stops the graph ----------------------------------------------------------------------


def test_a_failed_job_fails_the_run_and_nothing_more_is_created(emulator, store, cluster, tmp_path):
    graph = _graph("baseline", store)
    _commit(store, graph, "corpus", tmp_path)
    reconcile(graph, store, _api(), cluster)
    assert emulator.step_labels() == ["build-index", "splits"]
    emulator.set_condition(_name(graph, "build-index"), "Failed", "BackoffLimitExceeded",
                           "Job has reached the specified backoff limit")
    state = reconcile(graph, store, _api(), cluster)
    assert state.failed and "build-index" in state.failed and "BackoffLimitExceeded" in state.failed
    record = json.loads(store.get_bytes(failed_key(RunRef(graph.run_id))))
    assert record["reason"] == state.failed
    _commit(store, graph, "build-index", tmp_path)  # even if its output shows up later: the run is over
    _commit(store, graph, "splits", tmp_path)
    assert drive(graph, store, _api(), cluster, sleep=lambda s: None, max_passes=3) == EXIT_BAD_INPUT
    assert emulator.step_labels() == ["build-index", "splits"]
    assert emulator.posted() == [_name(graph, "build-index"), _name(graph, "splits")]


# --- 3. a restarted driver duplicates nothing ---------------------------------------------------------------


def test_a_restarted_driver_creates_no_duplicate_job(emulator, store, cluster, tmp_path):
    graph = _graph("baseline", store)
    reconcile(graph, store, _api(), cluster)
    _commit(store, graph, "corpus", tmp_path)
    emulator.set_condition(_name(graph, "corpus"), "Complete")
    reconcile(graph, store, _api(), cluster)
    for step in ("build-index", "splits"):
        _commit(store, graph, step, tmp_path)
        emulator.set_condition(_name(graph, step), "Complete")
    reconcile(graph, store, _api(), cluster)  # the first driver creates evaluate, then is killed
    before = emulator.live()
    first = [_name(graph, s) for s in (*DATA_STEPS, "evaluate")]
    for _ in range(2):  # restarted drivers: they find every Job by label and create nothing
        assert reconcile(graph, store, _api(), cluster).created == []
    assert emulator.live() == before and emulator.posted() == first

    # A driver whose list was taken before the other driver's create landed: its create gets 409.
    emulator.stale_lists = 1
    state = reconcile(graph, store, _api(), cluster)
    assert state.created == [] and state.running == ["evaluate"]
    assert emulator.posted() == [*first, _name(graph, "evaluate")]
    assert emulator.live() == before
    assert emulator.history(_name(graph, "evaluate")) == ["created"]  # held once, never replaced

    def evaluate_commits(_seconds: float) -> None:
        _commit(store, graph, "evaluate", tmp_path)

    assert drive(graph, store, _api(), cluster, sleep=evaluate_commits, max_passes=3) == 0
    assert len(emulator.posted()) == 5 and list(emulator.live()) == list(before)


def test_create_job_answers_false_on_409(emulator, store, cluster):
    from rag_jobs.runners.k8s.render import render_driver_job

    graph = _graph("baseline", store)
    manifest = render_driver_job(graph, cluster, store.uri)
    assert _api().create_job(manifest) is True
    assert _api().create_job(manifest) is False  # the emulator answered 409 AlreadyExists
    assert list(emulator.live()) == [manifest["metadata"]["name"]]


# --- 4. cancel -----------------------------------------------------------------------------------------------


def test_cli_cancel_deletes_the_runs_jobs_driver_first(emulator, store, cluster, tmp_path):
    from rag_jobs.runners.k8s.render import render_driver_job

    graph = _graph("baseline", store)
    other = _graph("baseline", store, run_id="other-run")
    reconcile(graph, store, _api(), cluster)
    _api().create_job(render_driver_job(graph, cluster, store.uri))
    reconcile(other, store, _api(), cluster)
    assert len(emulator.live()) == 3

    res = CliRunner().invoke(app, ["cancel", f"{store.uri}/runs/{graph.run_id}",
                                   "--cluster-config", str(HERE / "cluster.yaml")])
    assert res.exit_code == 0, res.output
    assert f"deleted 2 Jobs: {graph.run_id}-driver, {graph.run_id}-corpus" in res.output
    assert [name for name, _ in emulator.deletes()] == [f"{graph.run_id}-driver", f"{graph.run_id}-corpus"]
    assert all(params.get("propagationPolicy") == "Background" for _, params in emulator.deletes())
    assert list(emulator.live()) == [_name(other, "corpus")]  # another run's Job is left alone
    assert read_failure(store, RunRef(graph.run_id))["reason"] == "cancelled"
    _commit(store, graph, "corpus", tmp_path)
    assert reconcile(graph, store, _api(), cluster).failed == "cancelled"  # a driver still running creates nothing
    assert list(emulator.live()) == [_name(other, "corpus")]

    res = CliRunner().invoke(app, ["cancel", f"{store.uri}/runs/{graph.run_id}",
                                   "--cluster-config", str(HERE / "cluster.yaml")])
    assert res.exit_code == 0 and "deleted 0 Jobs" in res.output  # cancelling twice is fine


# --- submit ---------------------------------------------------------------------------------------------------


class S3LikeStore(LocalStore):
    """A local folder that calls itself s3:// (submit accepts only stores that pods can reach)."""

    @property
    def uri(self) -> str:
        return "s3://bucket/prefix"


def test_submit_starts_one_driver_and_resumes_a_failed_run(emulator, tmp_path, cluster):
    store = S3LikeStore(tmp_path / "store")
    graph = build_graph("baseline", RunSettings(), run_id="sub")
    assert submit_run(graph, cluster, store, _api(), sleep=lambda s: None) == "sub-driver"
    driver = emulator.live()["sub-driver"]
    assert driver["metadata"]["labels"][L_STEP] == "driver" and driver["metadata"]["namespace"] == NS
    assert submit_run(graph, cluster, store, _api(), sleep=lambda s: None) == "sub-driver"
    assert emulator.posted() == ["sub-driver"]  # already running: nothing new

    reconcile(graph, store, _api(), cluster)
    emulator.set_condition("sub-corpus", "Failed", "BackoffLimitExceeded")
    emulator.set_condition("sub-driver", "Failed", "BackoffLimitExceeded")
    assert reconcile(graph, store, _api(), cluster).failed
    submit_run(graph, cluster, store, _api(), sleep=lambda s: None)  # resume after fixing the cause
    assert read_failure(store, RunRef("sub")) is None
    assert sorted(name for name, _ in emulator.deletes()) == ["sub-corpus", "sub-driver"]
    assert list(emulator.live()) == ["sub-driver"] and "status" not in emulator.live()["sub-driver"]
    assert emulator.history("sub-driver") == ["created", "deleted", "created"]
    assert emulator.history("sub-corpus") == ["created", "deleted"]


# --- KubeApi's error mapping over HTTP -----------------------------------------------------------------------


def test_kube_api_maps_http_errors(emulator):
    emulator.kmock["post /apis/batch/v1/namespaces/locked/jobs"] << 403
    emulator.kmock["get /apis/batch/v1/namespaces/busy/jobs"] << 503
    emulator.kmock["get /apis/batch/v1/namespaces/throttled/jobs"] << 429
    # The emulator stores a POSTed object even when a route answers it, and answers 404 for a DELETE of an
    # object it lacks before any route is consulted: the 403 create below is what lets the 403 delete through.
    emulator.kmock["delete /apis/batch/v1/namespaces/locked/jobs/j"] << 403
    manifest = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "labels": {"a": "b"}}}
    with pytest.raises(ConfigError, match="403"):
        KubeApi("locked").create_job(manifest)
    with pytest.raises(ConfigError, match="403"):
        KubeApi("locked").delete_job("j")
    with pytest.raises(TransientError, match="503"):
        KubeApi("busy").list_jobs({"a": "b"})
    with pytest.raises(TransientError, match="429"):
        KubeApi("throttled").list_jobs({"a": "b"})
    KubeApi(NS).delete_job("never-created")  # 404 from the emulator: gone already, no error


def test_kube_api_reports_an_unreachable_api_as_transient(emulator, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "dead-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}],
    }))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    with pytest.raises(TransientError, match="unreachable"):
        KubeApi(NS).list_jobs({"a": "b"})


# --- Kueue: suspended Jobs are pending, never duplicated -------------------------------------------------


def test_queued_jobs_are_created_suspended_and_stay_pending_until_kueue_resumes_them(emulator, store, cluster,
                                                                                       tmp_path):
    queued = cluster.model_copy(update={"queue_name": "team-a", "labels": {"team": "a"},
                                        "annotations": {"cost-center": "ml-42"}})
    graph = _graph("baseline", store)
    api = _api()
    state = reconcile(graph, store, api, queued)
    corpus = emulator.live()[_name(graph, "corpus")]
    assert corpus["spec"]["suspend"] is True
    assert corpus["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert corpus["metadata"]["labels"]["team"] == "a" and corpus["metadata"]["annotations"]["cost-center"] == "ml-42"
    assert "kueue.x-k8s.io/queue-name" not in corpus["spec"]["template"]["metadata"]["labels"]
    assert corpus["spec"]["template"]["metadata"]["labels"]["team"] == "a"
    for _ in range(3):  # not admitted yet: pending, not failed, and not created again
        state = reconcile(graph, store, api, queued)
        assert state.suspended == ["corpus"] and state.running == [] and state.failed is None
    emulator.batch.patch_namespaced_job(_name(graph, "corpus"), NS, {"spec": {"suspend": False}})  # Kueue admits
    state = reconcile(graph, store, api, queued)
    assert state.running == ["corpus"] and state.suspended == []
    emulator.batch.patch_namespaced_job(_name(graph, "corpus"), NS, {"spec": {"suspend": True}})  # preempted
    assert reconcile(graph, store, api, queued).suspended == ["corpus"]
    emulator.batch.patch_namespaced_job(_name(graph, "corpus"), NS, {"spec": {"suspend": False}})  # re-admitted
    _commit(store, graph, "corpus", tmp_path)
    emulator.set_condition(_name(graph, "corpus"), "Complete")
    state = reconcile(graph, store, api, queued)
    assert state.created == [_name(graph, "build-index"), _name(graph, "splits")]
    assert emulator.posted().count(_name(graph, "corpus")) == 1
    assert emulator.history(_name(graph, "corpus")) == ["created"]
