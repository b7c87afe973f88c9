"""The one scheduler both runners use: readiness rules, and reuse of an equal step of another run through the
store-wide step index (one read per step, no listing of runs)."""

from __future__ import annotations

import json

import pytest

from rag_jobs.artifacts import StepRef, commit_dir, open_store, read_manifest
from rag_jobs.artifacts.step_index import find_step, record_step
from rag_jobs.runners.schedule import (
    BLOCKED,
    COMMITTED,
    FAILED,
    PENDING,
    READY,
    RETRYABLE,
    WAIT,
    readiness,
    share_from_other_run,
)
from rag_jobs.strategies import RunSettings, build_graph
from rag_jobs.strategies.graph import StepSpec

SELECT = StepSpec("select-gen", "select", {}, {"child-00": "a", "child-01": "b"}, needs="any")
EVAL = StepSpec("evaluate", "evaluate", {}, {"index": "build-index", "generator": "select-gen"})


@pytest.mark.parametrize("states,verdict", [
    ({"a": PENDING, "b": COMMITTED}, WAIT),
    ({"a": COMMITTED, "b": COMMITTED}, READY),
    ({"a": FAILED, "b": COMMITTED}, READY),  # a child that failed for good does not hold the selection back
    ({"a": RETRYABLE, "b": COMMITTED}, BLOCKED),  # one that may pass on a retry does
    ({"a": FAILED, "b": FAILED}, BLOCKED),
], ids=["a-child-running", "all-committed", "one-failed-for-good", "one-may-pass-on-retry", "all-failed"])
def test_a_grid_selection(states, verdict):
    assert readiness(SELECT, states.__getitem__).state == verdict


@pytest.mark.parametrize("states,verdict", [
    ({"build-index": COMMITTED, "select-gen": PENDING}, WAIT),
    ({"build-index": COMMITTED, "select-gen": COMMITTED}, READY),
    ({"build-index": COMMITTED, "select-gen": FAILED}, BLOCKED),
    ({"build-index": RETRYABLE, "select-gen": COMMITTED}, BLOCKED),
], ids=["an-input-running", "all-committed", "an-input-failed", "an-input-may-pass-on-retry"])
def test_a_step_needs_every_input(states, verdict):
    result = readiness(EVAL, states.__getitem__)
    assert result.state == verdict
    if verdict == BLOCKED:
        assert "evaluate cannot run" in result.reason


def _commit(store, run_id, step, tmp_path, config_hash):
    folder = tmp_path / run_id / step
    folder.mkdir(parents=True)
    (folder / "out.json").write_text(json.dumps({"step": step}))
    commit_dir(store, StepRef(run_id, step), folder, meta={"config_hash": config_hash})
    record_step(store, StepRef(run_id, step), config_hash)


def test_an_equal_step_of_another_run_is_shared_by_one_lookup(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    first = build_graph("baseline", RunSettings(), run_id="first")
    second = build_graph("baseline", RunSettings(evaluate={"k": 3}), run_id="second")
    _commit(store, "first", "build-index", tmp_path, first.step_hash("build-index"))
    assert share_from_other_run(store, second, second.step("build-index")) == "first"
    shared = read_manifest(store, StepRef("second", "build-index"))
    assert shared.extra["shared_from"]["run"] == "first" and shared.files == find_step(
        store, first.step_hash("build-index")).files
    # the evaluate steps differ (k), so nothing is shared for them
    _commit(store, "first", "evaluate", tmp_path, first.step_hash("evaluate"))
    assert share_from_other_run(store, second, second.step("evaluate")) is None


def test_a_removed_run_is_not_reused_and_the_next_commit_takes_its_place(tmp_path):
    import shutil

    store = open_store(f"file://{tmp_path}/store")
    graph = build_graph("baseline", RunSettings(), run_id="gone")
    h = graph.step_hash("build-index")
    _commit(store, "gone", "build-index", tmp_path, h)
    shutil.rmtree(tmp_path / "store" / "runs" / "gone")
    assert find_step(store, h) is None
    _commit(store, "kept", "build-index", tmp_path, h)
    assert find_step(store, h).run_id == "kept"


def test_a_new_code_version_of_a_kind_changes_its_hash(monkeypatch):
    from dataclasses import replace

    from rag_jobs.jobs import registry

    graph = build_graph("baseline", RunSettings(), run_id="v")
    before = (graph.step_hash("build-index"), graph.step_hash("evaluate"))
    run_id = build_graph("baseline", RunSettings()).run_id
    bumped = replace(registry.STEP_KINDS["evaluate"], version=registry.STEP_KINDS["evaluate"].version + 1)
    monkeypatch.setitem(registry.STEP_KINDS, "evaluate", bumped)
    assert graph.step_hash("build-index") == before[0]  # its own kind is unchanged
    assert graph.step_hash("evaluate") != before[1]
    assert build_graph("baseline", RunSettings()).run_id != run_id  # so a re-run does not reuse the old steps
