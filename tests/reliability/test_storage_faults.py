"""Storage faults against a moto S3 server and a local folder: interrupted uploads leave nothing
half visible and the sweep leaves no orphan upload; duplicate executions commit exactly once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from faults_storage import (
    duplicate_execution,
    interrupted_uploads,
    open_uploads,
    reconcile,
    s3_store,
    sweep,
)

from rag_jobs.artifacts.store import LocalStore


@pytest.fixture
def s3(s3_env: str) -> dict[str, str]:
    """Dummy credentials, no real AWS settings, and a fresh bucket on the session's moto server."""
    import boto3

    bucket = f"faults-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1").create_bucket(Bucket=bucket)
    return {"endpoint": s3_env, "bucket": bucket}


def _show(name: str, figures: dict[str, Any]) -> None:
    print(f"{name}: {json.dumps(figures, default=str)}")


@pytest.mark.timeout(120)
def test_interrupted_uploads_leave_nothing_half_visible(s3: dict[str, str], tmp_path: Path) -> None:
    figures = interrupted_uploads(tmp_path / "uploads", s3["endpoint"], s3["bucket"])
    _show("interrupted_uploads", {k: v for k, v in figures.items() if k != "faults"})
    failed = [f for f in figures["faults"] if f["half_visible"]]
    assert figures["half_visible"] == 0, failed
    assert figures["half_visible_after_sweep"] == 0
    assert figures["manifest_without_files"] == 0
    assert figures["orphan_uploads_after_sweep"] == 0
    assert figures["left_open_after_clean_failure"] == 0  # put_file aborted what it could reach
    # the faults really cut uploads: every in-process fault raised, every deterministic kill landed
    assert figures["in_process_faults"] == 11
    assert figures["sigkills"] == 6
    assert figures["uploads_faulted"] >= 15
    assert figures["recovered_by_retry"] == 1
    # a SIGKILL (and a dead network) leave multipart uploads behind that only the sweep aborts
    assert figures["orphan_uploads_before_sweep"] >= 5
    assert figures["sweep"]["uploads_aborted"] == figures["orphan_uploads_before_sweep"]
    # crashed commits left attempt folders; the sweep removed them, and the one commit that landed
    # (killed just after its manifest) is whole
    assert figures["uncommitted_attempt_objects_before_sweep"] > 0
    assert figures["sweep"]["attempts_removed"] >= 3
    assert figures["committed_after_late_kill"] == 1
    assert figures["unexpected_raw_objects"] == 0
    after = figures["reconcile_commit_store"]
    assert after["manifests"] == 1
    assert after["unreadable_manifests"] == 0
    assert after["lost"] == 0
    assert after["stray_objects"] == 0
    assert after["uncommitted_attempt_objects"] == 0
    assert after["orphan_uploads"] == 0


@pytest.mark.timeout(120)
def test_duplicate_execution_commits_exactly_once(s3: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "dup"
    figures = duplicate_execution(work, s3["endpoint"], s3["bucket"], rounds=3, contenders=3, process_rounds=2)
    _show("duplicate_execution", {k: v for k, v in figures.items() if k != "checks"})
    bad = [
        c
        for c in figures["checks"]
        if c["manifests"] != 1
        or c["winners"] != 1
        or c["overwrites"]
        or c["corrupt_files"]
        or c["errors"]
        or c["loser_leftover_objects"]
    ]
    assert bad == []
    assert figures["manifests_per_step"] == figures["min_manifests_per_step"] == 1
    assert figures["winners_per_step"] == figures["min_winners_per_step"] == 1
    assert figures["overwrites"] == 0
    assert figures["corrupt_files"] == 0
    assert figures["errors"] == 0
    assert figures["loser_leftover_objects"] == 0
    # every step had losers, and every loser ended cleanly (AlreadyCommitted / exit code 0)
    per_backend = 3 + 3 + 3 + 2 + 2  # steps: sequential, 2 thread modes, processes, run_step
    assert figures["rounds"] == 2 * per_backend
    assert figures["losers"] == figures["loser_exit_clean"] == 2 * (3 * 1 + 3 * 2 * 2 + 2 * 2 + 3)
    assert figures["entrypoint_runs"] == 6  # run_step exited 0 each time it lost or skipped
    assert figures["entrypoint_conditional_write_losses"] == 2  # one lost the manifest write itself
    # the barrier races were real: several contenders uploaded and only then lost the manifest write
    raced = [c for c in figures["checks"] if c["mode"] in ("threads-barrier", "processes-barrier")]
    assert raced and all(c["losers"] == 2 for c in raced)

    for store in (LocalStore(work / "dup-local"), s3_store(s3["endpoint"], s3["bucket"], "dup")):
        state = reconcile(store)
        _show(f"reconcile {store.uri}", state)
        assert state["manifests"] == 3 * 3 + 2 + 2
        assert state["lost"] == 0
        assert state["stray_objects"] == 0
        assert state["uncommitted_attempt_objects"] == 0  # losers discarded their own attempts
        assert state["temp_objects"] == 0
        assert state["orphan_uploads"] == 0


def test_reconcile_flags_lost_and_stray_objects_and_sweep_clears_attempts(s3: dict[str, str], tmp_path: Path) -> None:
    """reconcile itself must see what it is meant to catch, or the figures above prove nothing."""
    from rag_jobs.artifacts import RunRef, commit_dir
    from rag_jobs.artifacts.layout import new_attempt_id

    for store in (LocalStore(tmp_path / "store"), s3_store(s3["endpoint"], s3["bucket"], "rec")):
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        (src / "a.bin").write_bytes(b"a" * 100)
        (src / "b.bin").write_bytes(b"b" * 100)
        step = RunRef("rec").step("s")
        manifest = commit_dir(store, step, src)
        assert reconcile(store)["lost"] == 0
        store.put_bytes(manifest.files["a.bin"].key, b"tampered")  # corrupt a committed file
        store.delete(manifest.files["b.bin"].key)  # lose another
        store.put_bytes("notes/readme.txt", b"stray")
        store.put_bytes(step.file_key(new_attempt_id(now=0), "x.bin"), b"left by a crash")
        state = reconcile(store)
        assert (state["lost"], state["missing"], state["corrupt"]) == (2, 1, 1)
        assert state["stray_objects"] == 1
        assert state["uncommitted_attempt_objects"] == 1
        swept = sweep(store)
        assert swept["attempts_removed"] == 1
        assert reconcile(store)["uncommitted_attempt_objects"] == 0
        if hasattr(store, "client"):
            assert open_uploads(store) == []
