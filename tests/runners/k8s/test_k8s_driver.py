"""The driver's reconcile loop against a fake cluster and a local store: order, idempotence, failure, cancel."""

from __future__ import annotations

import json

import pytest
from k8s_helpers import DATA_STEPS, FakeApi

from rag_jobs.artifacts import RunRef, StepRef, commit_dir, open_store
from rag_jobs.errors import EXIT_BAD_INPUT, ConfigError
from rag_jobs.runners.k8s.api import PodInfo
from rag_jobs.runners.k8s.driver import cancel_run, drive, failed_key, reconcile, step_logs
from rag_jobs.runners.local import publish_graph
from rag_jobs.strategies import RunSettings, build_graph


@pytest.fixture
def store(tmp_path):
    return open_store(f"file://{tmp_path}/store")


def _graph(strategy: str, store, **settings):
    graph = build_graph(strategy, RunSettings.model_validate(settings), run_id=f"{strategy}-drv")
    publish_graph(store, graph)
    return graph


def _commit(store, graph, step: str, tmp_path) -> None:
    folder = tmp_path / "out" / step
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"step": step}))
    commit_dir(store, StepRef(graph.run_id, step), folder)


def _commit_data_steps(store, graph, tmp_path) -> None:
    """Commit the corpus, the index and the splits: what every step over questions reads."""
    for step in DATA_STEPS:
        _commit(store, graph, step, tmp_path)


def test_corpus_first_then_each_step_once_its_inputs_commit(store, cluster, fake_api, tmp_path):
    graph = _graph("baseline", store)
    state = reconcile(graph, store, fake_api, cluster)
    assert fake_api.step_labels() == ["corpus"]
    assert state.created == ["baseline-drv-corpus"] and state.waiting == ["build-index", "splits", "evaluate"]
    assert reconcile(graph, store, fake_api, cluster).created == []  # nothing new while the corpus step runs
    _commit(store, graph, "corpus", tmp_path)
    fake_api.set_state("corpus", "succeeded")
    state = reconcile(graph, store, fake_api, cluster)  # the index and the splits read only the corpus
    assert state.created == ["baseline-drv-build-index", "baseline-drv-splits"]
    assert fake_api.step_labels() == ["corpus", "build-index", "splits"]
    assert state.running == ["build-index", "splits"] and state.waiting == ["evaluate"]
    assert reconcile(graph, store, fake_api, cluster).created == []  # nothing new while both run
    _commit(store, graph, "build-index", tmp_path)
    fake_api.set_state("build-index", "succeeded")
    state = reconcile(graph, store, fake_api, cluster)  # evaluate needs the splits too
    assert state.created == [] and state.running == ["splits"] and state.waiting == ["evaluate"]
    _commit(store, graph, "splits", tmp_path)
    fake_api.set_state("splits", "succeeded")
    state = reconcile(graph, store, fake_api, cluster)
    assert fake_api.step_labels() == ["corpus", "build-index", "splits", "evaluate"]
    assert state.running == ["evaluate"] and not state.complete
    _commit(store, graph, "evaluate", tmp_path)
    state = reconcile(graph, store, fake_api, cluster)
    assert state.complete and state.failed is None
    assert len(fake_api.created) == 4


def test_a_restarted_driver_never_duplicates_a_job(store, cluster, fake_api, tmp_path):
    graph = _graph("baseline", store)
    reconcile(graph, store, fake_api, cluster)
    _commit(store, graph, "corpus", tmp_path)
    reconcile(graph, store, fake_api, cluster)
    _commit(store, graph, "build-index", tmp_path)
    _commit(store, graph, "splits", tmp_path)
    reconcile(graph, store, fake_api, cluster)
    before = dict(fake_api.jobs)
    assert len(before) == 4  # corpus, build-index, splits, evaluate
    for _ in range(3):  # a new driver process: nothing in memory, the same store and cluster
        assert reconcile(graph, store, fake_api, cluster).created == []
    assert fake_api.jobs == before and len(fake_api.created) == 4


def test_a_committed_step_gets_no_job(store, cluster, fake_api, tmp_path):
    graph = _graph("baseline", store)
    _commit(store, graph, "corpus", tmp_path)  # e.g. shared with an earlier run, or a job GC'd by its TTL
    _commit(store, graph, "build-index", tmp_path)
    reconcile(graph, store, fake_api, cluster)
    assert fake_api.step_labels() == ["splits"]  # not build-index, though its input is committed too


def test_a_failed_job_fails_the_run_and_stops_creating(store, cluster, fake_api, tmp_path):
    graph = _graph("baseline", store)
    _commit(store, graph, "corpus", tmp_path)
    reconcile(graph, store, fake_api, cluster)
    assert fake_api.step_labels() == ["build-index", "splits"]
    fake_api.set_state("build-index", "failed", "PodFailurePolicy exit code 2")
    state = reconcile(graph, store, fake_api, cluster)
    assert state.failed and "build-index" in state.failed and "exit code 2" in state.failed
    record = json.loads(store.get_bytes(failed_key(RunRef(graph.run_id))))
    assert record["reason"] == state.failed
    _commit(store, graph, "build-index", tmp_path)  # even if the inputs show up later: the run is over
    _commit(store, graph, "splits", tmp_path)
    state = reconcile(graph, store, fake_api, cluster)
    assert state.failed and fake_api.step_labels() == ["build-index", "splits"]
    assert drive(graph, store, fake_api, cluster, sleep=lambda s: None) == EXIT_BAD_INPUT


def test_a_grid_is_one_indexed_job_and_the_selection_survives_failed_children(store, cluster, fake_api, tmp_path):
    graph = _graph("ft-gen", store, gen_lr_grid=[1e-5, 3e-5, 1e-4])
    children = [graph.step("select-gen").inputs[r] for r in sorted(graph.step("select-gen").inputs)]
    _commit_data_steps(store, graph, tmp_path)
    reconcile(graph, store, fake_api, cluster)
    assert fake_api.step_labels() == ["finetune-gen"]
    grid = fake_api.jobs[fake_api.job_for("finetune-gen")]
    assert grid["spec"]["completions"] == 3
    _commit(store, graph, children[0], tmp_path)
    reconcile(graph, store, fake_api, cluster)
    assert "select-gen" not in fake_api.step_labels()  # the other children are still running
    fake_api.set_state("finetune-gen", "failed", "FailedIndexes")  # children 1 and 2 failed for good
    state = reconcile(graph, store, fake_api, cluster)
    assert state.failed is None
    assert fake_api.step_labels() == ["finetune-gen", "select-gen"]
    _commit(store, graph, "select-gen", tmp_path)
    reconcile(graph, store, fake_api, cluster)
    assert fake_api.step_labels()[-1] == "evaluate-ft-gen"


def test_a_grid_with_no_committed_child_fails_the_run(store, cluster, fake_api, tmp_path):
    graph = _graph("ft-gen", store, gen_lr_grid=[1e-5, 3e-5])
    _commit_data_steps(store, graph, tmp_path)
    reconcile(graph, store, fake_api, cluster)
    fake_api.set_state("finetune-gen", "failed")
    state = reconcile(graph, store, fake_api, cluster)
    assert state.failed and "every input of select-gen failed" in state.failed
    assert "select-gen" not in fake_api.step_labels()


def test_a_job_that_succeeded_without_committing_fails_the_run(store, cluster, fake_api):
    graph = _graph("baseline", store)
    reconcile(graph, store, fake_api, cluster)
    fake_api.set_state("corpus", "succeeded")
    assert "step corpus ended uncommitted" in reconcile(graph, store, fake_api, cluster).failed


def test_drive_runs_a_two_phase_graph_to_the_end(store, cluster, fake_api, tmp_path):
    graph = _graph("two-phase", store, gen_lr_grid=[1e-5, 3e-5], embed_lr_grid=[1e-6, 3e-6])

    def finish_running_jobs(_seconds: float) -> None:  # the "cluster": every active Job commits its steps
        for name, manifest in fake_api.jobs.items():
            if fake_api.states.get(name, ("active",))[0] == "active":
                for step in manifest["metadata"]["annotations"]["rag-jobs.io/steps"].split(","):
                    _commit(store, graph, step, tmp_path)
                fake_api.states[name] = ("succeeded", "")

    assert drive(graph, store, fake_api, cluster, sleep=finish_running_jobs, max_passes=20) == 0
    assert fake_api.step_labels() == [*DATA_STEPS, "phase1-gen", "select-phase1", "phase2-pool",
                                      "phase2-embed", "select-phase2", "evaluate-two-phase"]


def test_cancel_marks_the_run_and_deletes_its_jobs_driver_first(store, cluster, fake_api):
    graph = _graph("baseline", store)
    from rag_jobs.runners.k8s.render import render_driver_job

    reconcile(graph, store, fake_api, cluster)
    fake_api.create_job(render_driver_job(graph, cluster, store.uri))
    deleted = cancel_run(RunRef(graph.run_id), store, fake_api)
    assert deleted[0].endswith("-driver") and len(deleted) == 2 and not fake_api.jobs
    assert reconcile(graph, store, fake_api, cluster).failed == "cancelled"
    assert not fake_api.jobs  # the driver, were it still running, creates nothing


def test_logs_of_a_grid_child_come_from_its_index_pod(store, cluster, fake_api):
    graph = _graph("ft-gen", store, gen_lr_grid=[1e-5, 3e-5])
    children = [graph.step("select-gen").inputs[r] for r in sorted(graph.step("select-gen").inputs)]
    base = {"rag-jobs.io/run": graph.run_id, "rag-jobs.io/step": "finetune-gen"}
    fake_api.pods = [
        PodInfo("p0", {**base, "batch.kubernetes.io/job-completion-index": "0"}, "2025-01-01T00:00:00Z"),
        PodInfo("p1-old", {**base, "batch.kubernetes.io/job-completion-index": "1"}, "2025-01-01T00:00:00Z"),
        PodInfo("p1-new", {**base, "batch.kubernetes.io/job-completion-index": "1"}, "2025-01-01T01:00:00Z"),
    ]
    fake_api.logs = {"p1-new": ["retry of child 1"], "p0": ["child 0"]}
    assert list(step_logs(graph, children[1], fake_api)) == ["retry of child 1"]
    assert list(step_logs(graph, children[0], fake_api)) == ["child 0"]
    with pytest.raises(ConfigError, match="no pod"):
        step_logs(graph, "build-index", fake_api)
    with pytest.raises(ConfigError):
        step_logs(graph, "no-such-step", fake_api)


def test_fake_api_is_a_cluster_api():
    from rag_jobs.runners.k8s.api import ClusterApi

    api: ClusterApi = FakeApi()  # the protocol and the fake stay in step (checked by type checkers)
    assert api.create_job({"metadata": {"name": "j", "labels": {}}}) is True
    assert api.create_job({"metadata": {"name": "j", "labels": {}}}) is False


def test_the_driver_reuses_an_equal_step_of_another_run(store, cluster, fake_api, tmp_path):
    from rag_jobs.artifacts.step_index import record_step

    graph = build_graph("baseline", RunSettings.model_validate({"evaluate": {"k": 3}}), run_id="baseline-k3")
    publish_graph(store, graph)
    # another run committed an equal corpus, index and splits, and (as every entrypoint does) recorded them by hash
    for step in DATA_STEPS:
        folder = tmp_path / "other" / step
        folder.mkdir(parents=True)
        (folder / "result.json").write_text("{}")
        want = graph.step_hash(step)
        commit_dir(store, StepRef("other-run", step), folder, meta={"config_hash": want})
        record_step(store, StepRef("other-run", step), want)
    state = reconcile(graph, store, fake_api, cluster)
    assert state.reused == list(DATA_STEPS)
    assert fake_api.step_labels() == ["evaluate"]  # no Job for the shared steps; evaluate starts at once
