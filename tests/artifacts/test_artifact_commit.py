"""The commit protocol, checkpoints and the sweeper, against both stores."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rag_jobs import __version__
from rag_jobs.artifacts import layout
from rag_jobs.artifacts.commit import (
    commit_checkpoint,
    commit_dir,
    fetch_checkpoint,
    fetch_step,
    is_committed,
    latest_checkpoint,
    prune_checkpoints,
    read_manifest,
    sweep_uncommitted,
)
from rag_jobs.artifacts.layout import RunRef, StepRef
from rag_jobs.artifacts.manifest import CommitMeta, DeviceInfo
from rag_jobs.artifacts.store import ArtifactNotFound, ArtifactStore
from rag_jobs.errors import AlreadyCommitted, ConfigError, IntegrityError, StoreError

STEP = StepRef("run-1", "finetune-gen")


def make_dir(root: Path, files: dict[str, bytes] | None = None) -> Path:
    files = (
        files
        if files is not None
        else {
            "adapter/model.safetensors": os.urandom(50_000),
            "adapter/config.json": b'{"r": 8}',
            "metrics.json": b"{}",
            "empty.txt": b"",
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def contents(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_commit_then_fetch(store: ArtifactStore, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("RAG_JOBS_IMAGE", "ghcr.io/x/rag-jobs:1")
    src = make_dir(tmp_path / "out")
    (src / ".tmp-partial").write_bytes(b"skipped")
    meta = CommitMeta(
        inputs={"index": "abc"}, config_hash="f" * 64, device=DeviceInfo(kind="cpu"), metrics={"em": 1}
    )
    assert not is_committed(store, STEP) and read_manifest(store, STEP) is None

    manifest = commit_dir(store, STEP, src, meta=meta)

    assert is_committed(store, STEP)
    assert read_manifest(store, STEP) == manifest
    assert (manifest.run_id, manifest.step, manifest.checkpoint) == ("run-1", "finetune-gen", None)
    assert manifest.version == __version__ and manifest.image == "ghcr.io/x/rag-jobs:1"
    assert manifest.inputs == {"index": "abc"} and manifest.metrics == {"em": 1}
    assert manifest.started_at <= manifest.finished_at and manifest.wall_s >= 0
    expected = {k: v for k, v in contents(src).items() if not k.startswith(".tmp-")}
    assert sorted(manifest.files) == sorted(expected)
    for rel, data in expected.items():
        entry = manifest.files[rel]
        assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.size == len(data)
        assert entry.key == STEP.file_key(manifest.attempt, rel)
        assert store.get_bytes(entry.key) == data
    assert sorted(store.list(STEP.prefix)) == sorted(
        [STEP.manifest_key] + [e.key for e in manifest.files.values()]
    )

    dest = fetch_step(store, STEP, tmp_path / "dest")
    assert contents(dest) == expected


def test_manifest_is_written_last(store: ArtifactStore, tmp_path: Path, recorder: Any) -> None:
    spy = recorder(store)
    commit_dir(spy, STEP, make_dir(tmp_path / "out"))
    writes = [(name, arg) for name, arg in spy.calls if name.startswith("put_")]
    assert writes[-1] == ("put_bytes_if_absent", STEP.manifest_key)
    assert [name for name, _ in writes[:-1]] == ["put_file"] * 4


def test_recommit_raises_and_leaves_the_winner_intact(store: ArtifactStore, tmp_path: Path) -> None:
    winner = commit_dir(store, STEP, make_dir(tmp_path / "a"))
    before = store.list()
    with pytest.raises(AlreadyCommitted, match=winner.attempt):
        commit_dir(store, STEP, make_dir(tmp_path / "b"))
    assert store.list() == before
    assert read_manifest(store, STEP) == winner


def test_losing_the_race_after_upload_removes_the_losers_files(
    store: ArtifactStore, tmp_path: Path, recorder: Any
) -> None:
    winner = commit_dir(store, STEP, make_dir(tmp_path / "a"))
    before = store.list()

    def hide_manifest(method: Any, key: str) -> bytes:  # the loser does not see the winner up front
        if key == STEP.manifest_key:
            raise ArtifactNotFound("hidden")
        return method(key)

    spy = recorder(store, {"get_bytes": hide_manifest})
    with pytest.raises(AlreadyCommitted):
        commit_dir(spy, STEP, make_dir(tmp_path / "b"))
    assert spy.names("put_file")  # it did upload, then lost on the manifest
    assert store.list() == before
    assert read_manifest(store, STEP) == winner


def test_concurrent_commits_have_one_winner(store: ArtifactStore, tmp_path: Path) -> None:
    dirs = [make_dir(tmp_path / f"d{i}", {"w.bin": bytes([i]) * 1000}) for i in range(4)]
    barrier = threading.Barrier(4)
    won: list[Any] = []
    lost: list[BaseException] = []

    def go(folder: Path) -> None:
        barrier.wait()
        try:
            won.append(commit_dir(store, STEP, folder))
        except AlreadyCommitted as exc:
            lost.append(exc)

    threads = [threading.Thread(target=go, args=(d,)) for d in dirs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 3
    assert read_manifest(store, STEP) == won[0]
    assert store.list(STEP.prefix) == sorted([STEP.manifest_key, won[0].files["w.bin"].key])


def test_failed_upload_leaves_no_attempt_files(store: ArtifactStore, tmp_path: Path, recorder: Any) -> None:
    uploads: list[str] = []

    def fail_third(method: Any, key: str, path: Any) -> None:
        uploads.append(key)
        if len(uploads) == 3:
            raise StoreError("simulated upload failure")
        method(key, path)

    with pytest.raises(StoreError, match="simulated"):
        commit_dir(recorder(store, {"put_file": fail_third}), STEP, make_dir(tmp_path / "out"), max_workers=1)
    assert store.list() == []
    assert not is_committed(store, STEP)


def test_fetch_detects_corruption(store: ArtifactStore, tmp_path: Path) -> None:
    manifest = commit_dir(store, STEP, make_dir(tmp_path / "out"))
    entry = manifest.files["adapter/config.json"]
    for evil in [b'{"r": 9}', b"truncated"]:  # same size, other size
        store.put_bytes(entry.key, evil)
        dest = tmp_path / f"dest-{len(evil)}"
        with pytest.raises(IntegrityError, match=r"adapter/config\.json") as info:
            fetch_step(store, STEP, dest, files=["adapter/config.json"])
        assert "\n" not in str(info.value)
        assert list(dest.rglob("*.json")) == [] and list(dest.rglob(".tmp-*")) == []


def test_fetch_subset_and_local_cache(store: ArtifactStore, tmp_path: Path, recorder: Any) -> None:
    manifest = commit_dir(store, STEP, make_dir(tmp_path / "out"))
    dest = tmp_path / "dest"
    fetch_step(store, STEP, dest, files=["adapter/config.json"])
    assert list(contents(dest)) == ["adapter/config.json"]

    spy = recorder(store)
    fetch_step(spy, STEP, dest)
    assert len(spy.names("get_file")) == 3  # the config was already there and verified

    spy = recorder(store)
    fetch_step(spy, STEP, dest)
    assert spy.names("get_file") == []

    (dest / "metrics.json").write_bytes(b"{ }")  # tampered locally: fetched again
    spy = recorder(store)
    fetch_step(spy, STEP, dest)
    assert spy.names("get_file") == [manifest.files["metrics.json"].key]
    assert (dest / "metrics.json").read_bytes() == b"{}"


def test_fetch_errors(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="not committed"):
        fetch_step(store, STEP, tmp_path / "d")
    commit_dir(store, STEP, make_dir(tmp_path / "out"))
    with pytest.raises(ArtifactNotFound, match=r"no file 'nope'"):
        fetch_step(store, STEP, tmp_path / "d", files=["nope"])


def test_read_manifest_rejects_corrupt_or_foreign_manifests(store: ArtifactStore, tmp_path: Path) -> None:
    store.put_bytes(STEP.manifest_key, b"{ not json")
    with pytest.raises(IntegrityError, match="corrupt"):
        read_manifest(store, STEP)
    other = commit_dir(store, StepRef("run-1", "other"), make_dir(tmp_path / "o"))
    store.put_bytes(STEP.manifest_key, other.to_json())
    with pytest.raises(IntegrityError, match="belongs to"):
        read_manifest(store, STEP)


def test_manifest_with_escaping_path_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    manifest = commit_dir(store, STEP, make_dir(tmp_path / "out", {"a": b"x"}))
    doc = manifest.model_dump(mode="json")
    doc["files"] = {"../escape": doc["files"]["a"]}
    import json

    store.delete(STEP.manifest_key)
    store.put_bytes(STEP.manifest_key, json.dumps(doc).encode())
    with pytest.raises(IntegrityError, match="corrupt"):
        fetch_step(store, STEP, tmp_path / "dest" / "inner")
    assert not (tmp_path / "dest" / "escape").exists()


def test_commit_accepts_a_meta_mapping(store: ArtifactStore, tmp_path: Path) -> None:
    manifest = commit_dir(
        store,
        STEP,
        make_dir(tmp_path / "out", {}),
        meta={
            "inputs": {"index": {"step": "build-index"}},
            "wall_s": 12.5,
            "device": {"kind": "cuda", "count": 2},
        },
    )
    assert manifest.files == {} and manifest.wall_s == 12.5 and manifest.device.count == 2
    with pytest.raises(ConfigError, match="device"):
        commit_dir(store, StepRef("run-1", "x"), tmp_path / "out", meta={"device": "gpu"})


def test_local_dir_problems(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a folder"):
        commit_dir(store, STEP, tmp_path / "missing")
    with pytest.raises(StoreError, match="backslash"):
        commit_dir(store, STEP, make_dir(tmp_path / "bad", {"a\\b": b"x"}))
    assert store.list() == []


def test_checkpoints_latest_fetch_and_prune(store: ArtifactStore, tmp_path: Path) -> None:
    assert latest_checkpoint(store, STEP) is None
    for n in range(3):
        commit_checkpoint(store, STEP, n, make_dir(tmp_path / f"c{n}", {"state.bin": bytes([n]) * 10}))
    leftover = STEP.checkpoint(3).file_key(layout.new_attempt_id(), "state.bin")  # crashed mid-upload
    store.put_bytes(leftover, b"partial")
    with pytest.raises(AlreadyCommitted):
        commit_checkpoint(store, STEP, 2, tmp_path / "c0")

    n, manifest = latest_checkpoint(store, STEP)  # type: ignore[misc]
    assert n == 2 and manifest.checkpoint == 2
    assert contents(fetch_checkpoint(store, STEP, 1, tmp_path / "f1")) == {"state.bin": b"\x01" * 10}

    assert prune_checkpoints(store, STEP, keep=2) == [0]
    assert not is_committed(store, STEP.checkpoint(0))
    assert store.list(STEP.checkpoint(0).prefix) == []
    assert latest_checkpoint(store, STEP)[0] == 2  # type: ignore[index]
    assert prune_checkpoints(store, STEP) == []
    with pytest.raises(ConfigError):
        prune_checkpoints(store, STEP, keep=-1)
    assert prune_checkpoints(store, STEP, keep=0) == [1, 2]
    assert latest_checkpoint(store, STEP) is None
    assert store.exists(leftover)  # uncommitted leftovers are the sweeper's job
    assert not is_committed(store, STEP)  # checkpoints never commit the step itself


def test_sweep_uncommitted(store: ArtifactStore, tmp_path: Path) -> None:
    run = RunRef("run-1")
    now = time.time()
    old, young = layout.new_attempt_id(now - 2 * 86400), layout.new_attempt_id(now - 60)
    committed = commit_dir(store, run.step("done"), make_dir(tmp_path / "a", {"x": b"1"}))
    commit_checkpoint(store, run.step("train"), 4, make_dir(tmp_path / "c", {"s": b"2"}))
    store.put_bytes("runs/run-1/graph.json", b"{}")
    leftovers = {
        "done-old": run.step("done").file_key(old, "x"),
        "done-young": run.step("done").file_key(young, "x"),
        "pending-old": run.step("pending").file_key(old, "deep/y"),
        "ckpt-old": run.step("train").checkpoint(4).file_key(old, "s"),
        "ckpt-uncommitted-old": run.step("train").checkpoint(5).file_key(old, "s"),
    }
    for key in leftovers.values():
        store.put_bytes(key, b"junk")
    store.put_bytes("runs/other-run/s/" + old + "/x", b"not ours")

    removed = sweep_uncommitted(store, run)
    assert removed == sorted(
        [
            run.step("done").attempt_prefix(old),
            run.step("pending").attempt_prefix(old),
            run.step("train").checkpoint(4).attempt_prefix(old),
            run.step("train").checkpoint(5).attempt_prefix(old),
        ]
    )
    assert store.exists(leftovers["done-young"])  # may still be uploading
    assert sweep_uncommitted(store, run, grace_s=0) == [run.step("done").attempt_prefix(young)]
    assert sweep_uncommitted(store, run, grace_s=0) == []
    assert read_manifest(store, run.step("done")) == committed
    assert contents(fetch_step(store, run.step("done"), tmp_path / "d")) == {"x": b"1"}
    assert latest_checkpoint(store, run.step("train"))[0] == 4  # type: ignore[index]
    assert store.exists("runs/run-1/graph.json") and store.exists("runs/other-run/s/" + old + "/x")


def test_sweep_never_deletes_around_an_unreadable_manifest(store: ArtifactStore) -> None:
    run = RunRef("run-1")
    old = layout.new_attempt_id(time.time() - 86400)
    store.put_bytes(run.step("s").manifest_key, b"garbage")
    store.put_bytes(run.step("s").file_key(old, "x"), b"x")
    assert sweep_uncommitted(store, run, grace_s=0) == []
    assert store.exists(run.step("s").file_key(old, "x"))


def test_sweep_run_removes_stale_attempts_and_temp_files_of_killed_writers(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rag_jobs.artifacts import LocalStore, RunRef, sweep_run
    from rag_jobs.cli import app

    store = LocalStore(tmp_path / "store")
    run = RunRef("r1")
    store.put_bytes(f"runs/r1/step-a/{layout.new_attempt_id()}/w.bin", b"half")  # an attempt that never committed
    tmp = tmp_path / "store" / "runs" / "r1" / "step-a" / ".tmp-0123456789abcdef"  # a writer killed mid-write
    tmp.write_bytes(b"partial")
    assert sweep_run(store, run) == {"attempts_removed": 0, "uploads_aborted": 0, "temp_files_removed": 0}
    old = time.time() - 7 * 3600
    os.utime(tmp, (old, old))
    res = CliRunner().invoke(app, ["sweep", f"{store.uri}/runs/r1", "--grace-hours", "0"])
    assert res.exit_code == 0, res.output
    assert "attempts_removed=1" in res.output and "temp_files_removed=1" in res.output
    assert not tmp.exists() and store.list("runs/r1/") == []
