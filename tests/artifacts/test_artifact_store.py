"""The store contract, run against both the local store and the S3 store (moto)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from rag_jobs.artifacts import local_store as store_mod
from rag_jobs.artifacts.store import ArtifactNotFound, ArtifactStore, LocalStore, S3Store, open_store
from rag_jobs.errors import StoreError

BAD_KEYS = [
    "",
    "../x",
    "a/../b",
    "/abs",
    "a//b",
    "a/",
    "a\\b",
    "a\x00b",
    "./a",
    "a/./b",
    "a/.tmp-1",
    "..",
    "x\ny",
]


def test_both_stores_satisfy_the_protocol(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)


def test_bytes_round_trip(store: ArtifactStore) -> None:
    store.put_bytes("a/b/c.bin", b"\x00\x01payload")
    assert store.get_bytes("a/b/c.bin") == b"\x00\x01payload"
    assert store.exists("a/b/c.bin")
    assert not store.exists("a/b")  # a folder is not an object
    store.put_bytes("a/b/c.bin", b"second")
    assert store.get_bytes("a/b/c.bin") == b"second"
    store.put_bytes("empty", b"")
    assert store.get_bytes("empty") == b""


def test_file_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(100_000))
    store.put_file("deep/er/file.bin", src)
    dest = tmp_path / "out" / "nested" / "file.bin"
    store.get_file("deep/er/file.bin", dest)
    assert dest.read_bytes() == src.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]  # no temp file left behind


def test_list_is_recursive_sorted_and_prefix_is_a_folder(store: ArtifactStore) -> None:
    for key in ["b/2", "a/x/1", "a/0", "ab/3", "c"]:
        store.put_bytes(key, b"x")
    assert store.list() == ["a/0", "a/x/1", "ab/3", "b/2", "c"]
    assert store.list("a") == ["a/0", "a/x/1"]
    assert store.list("a/") == ["a/0", "a/x/1"]
    assert store.list("nothing/here") == []
    assert store.list("c") == []  # 'c' is an object, not a folder


def test_delete_and_delete_prefix(store: ArtifactStore) -> None:
    for key in ["r/1/a", "r/1/b/c", "r/10/a", "r/2"]:
        store.put_bytes(key, b"x")
    store.delete("r/2")
    store.delete("r/2")  # deleting a missing key is fine
    assert not store.exists("r/2")
    assert store.delete_prefix("r/1") == 2
    assert store.list() == ["r/10/a"]  # 'r/1' did not match 'r/10'
    assert store.delete_prefix("nothing") == 0
    with pytest.raises(StoreError, match="whole store"):
        store.delete_prefix("")


def test_missing_key_is_a_one_line_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="not found") as info:
        store.get_bytes("no/such/key")
    assert isinstance(info.value, StoreError)
    assert "\n" not in str(info.value)
    assert store.uri in str(info.value)
    dest = tmp_path / "dl" / "x.bin"
    with pytest.raises(ArtifactNotFound, match="not found"):
        store.get_file("no/such/key", dest)
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_rejected(store: ArtifactStore, key: str, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    calls = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_bytes_if_absent(key, b"x"),
        lambda: store.put_file(key, src),
        lambda: store.get_bytes(key),
        lambda: store.get_file(key, tmp_path / "out"),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="invalid") as info:
            call()
        assert "\n" not in str(info.value)
    if key:
        with pytest.raises(StoreError, match="invalid"):
            store.list(key + "/")
    assert store.list() == []


def test_put_bytes_if_absent(store: ArtifactStore) -> None:
    assert store.put_bytes_if_absent("m/_MANIFEST.json", b"first") is True
    assert store.put_bytes_if_absent("m/_MANIFEST.json", b"second") is False
    assert store.get_bytes("m/_MANIFEST.json") == b"first"


def test_conditional_write_race_has_exactly_one_winner(store: ArtifactStore) -> None:
    for round_ in range(3):
        barrier = threading.Barrier(8)
        results: list[bool] = []
        errors: list[BaseException] = []

        def attempt(
            i: int,
            key: str = f"race/{round_}",
            barrier: threading.Barrier = barrier,
            results: list[bool] = results,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                results.append(store.put_bytes_if_absent(key, f"writer-{i}".encode()))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert sorted(results) == [False] * 7 + [True]
        assert store.get_bytes(f"race/{round_}").startswith(b"writer-")
    assert store.list() == ["race/0", "race/1", "race/2"]


def test_open_store_parses_uris(tmp_path: Path, s3_env: str) -> None:
    local = open_store(tmp_path.as_uri())
    assert isinstance(local, LocalStore) and local.root == tmp_path.resolve()
    assert local.uri == tmp_path.resolve().as_uri()
    assert open_store(str(tmp_path)).uri == local.uri
    assert open_store(f"file://localhost{tmp_path}").uri == local.uri
    s3 = open_store("s3://bucket-name/some/prefix/")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket-name", "some/prefix")
    assert s3.uri == "s3://bucket-name/some/prefix"
    assert s3.endpoint_url == s3_env
    assert open_store("s3://bucket-name").uri == "s3://bucket-name"
    for bad in ["gs://bucket/x", "file://otherhost/x", "s3:///prefix", "s3://b/a/../c", ""]:
        with pytest.raises(StoreError):
            open_store(bad)


# ---------------------------------------------------------------------------------------------
# Local store specifics
# ---------------------------------------------------------------------------------------------


def test_local_failed_write_keeps_old_content_and_no_temp(tmp_path: Path, monkeypatch: Any) -> None:
    store = LocalStore(tmp_path / "s")
    store.put_bytes("k/v", b"old")

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(store_mod.os, "replace", broken_replace)
    with pytest.raises(StoreError, match="cannot write") as info:
        store.put_bytes("k/v", b"new")
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    assert store.get_bytes("k/v") == b"old"
    assert os.listdir(tmp_path / "s" / "k") == ["v"]


def test_local_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    versions = [bytes([65 + i]) * (1_000_000 + 250_000 * i) for i in range(4)]
    store.put_bytes("big", versions[0])
    stop = threading.Event()
    seen: set[int] = set()
    bad: list[int] = []

    def read() -> None:
        while not stop.is_set():
            data = store.get_bytes("big")
            if data not in versions:
                bad.append(len(data))
            seen.add(len(data))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            store.put_bytes("big", versions[i % 4])
    finally:
        stop.set()
        reader.join()
    assert not bad
    assert store.list() == ["big"]


def test_local_list_skips_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    store.put_bytes("a/real", b"x")
    (tmp_path / "s" / "a" / ".tmp-123abc").write_bytes(b"partial")
    assert store.list() == ["a/real"]


def test_local_conditional_write_without_hard_links(tmp_path: Path, monkeypatch: Any) -> None:
    def no_links(src: Any, dst: Any) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(store_mod.os, "link", no_links)
    store = LocalStore(tmp_path / "s")
    assert store.put_bytes_if_absent("m", b"one") is True
    assert store.put_bytes_if_absent("m", b"two") is False
    assert store.get_bytes("m") == b"one"
    assert store.list() == ["m"]


def test_local_delete_removes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    store.put_bytes("a/b/c/d", b"x")
    store.put_bytes("a/e", b"x")
    store.delete("a/b/c/d")
    assert sorted(p.name for p in (tmp_path / "s" / "a").iterdir()) == ["e"]
    store.delete_prefix("a")
    assert list((tmp_path / "s").iterdir()) == []


def test_local_missing_source_file_is_store_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    with pytest.raises(StoreError, match="cannot read local file"):
        store.put_file("x", tmp_path / "missing.bin")


def test_local_store_on_a_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(StoreError, match="not a folder"):
        LocalStore(tmp_path / "f")
