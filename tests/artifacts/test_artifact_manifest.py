"""Manifests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rag_jobs import __version__
from rag_jobs.artifacts.manifest import (
    CommitMeta,
    DeviceInfo,
    FileEntry,
    Manifest,
    as_commit_meta,
)
from rag_jobs.errors import ConfigError, IntegrityError

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _manifest(**changes: object) -> Manifest:
    fields: dict[str, object] = {
        "run_id": "r",
        "step": "s",
        "attempt": "0" * 24,
        "files": {"a.bin": FileEntry(sha256="a" * 64, size=3, key="runs/r/s/" + "0" * 24 + "/a.bin")},
        "started_at": T0,
        "finished_at": T0 + timedelta(hours=2),
        "wall_s": 7200.0,
        "device": DeviceInfo(kind="NVIDIA H100", count=4),
        "metrics": {"em": 0.5, "per_dataset": {"hotpotqa": 0.4}},
    }
    fields.update(changes)
    return Manifest(**fields)  # type: ignore[arg-type]


def test_manifest_json_round_trip() -> None:
    manifest = _manifest()
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    assert again.version == __version__
    assert again.accelerator_hours == pytest.approx(8.0)
    assert again.total_size == 3


@pytest.mark.parametrize("data", [b"", b"{not json", b"[]", b'{"run_id": "r"}'])
def test_corrupt_manifest_is_integrity_error(data: bytes) -> None:
    with pytest.raises(IntegrityError, match="corrupt") as info:
        Manifest.from_json(data, source="s3://b/runs/r/s/_MANIFEST.json")
    assert "s3://b/runs/r/s/_MANIFEST.json" in str(info.value) and "\n" not in str(info.value)


def test_bad_file_entry_is_integrity_error() -> None:
    doc = _manifest().model_dump(mode="json")
    doc["files"]["a.bin"]["sha256"] = "xyz"
    import json

    with pytest.raises(IntegrityError, match=r"files\.a\.bin\.sha256"):
        Manifest.from_json(json.dumps(doc))


def test_commit_meta_from_mapping() -> None:
    meta = as_commit_meta(
        {"inputs": {"index": {"step": "build-index", "attempt": "x"}}, "started_at": "2025-01-02T03:04:05"}
    )
    assert meta.started_at == T0  # naive times are UTC
    assert as_commit_meta(None) == CommitMeta()
    with pytest.raises(ConfigError, match="wall_s"):
        as_commit_meta({"wall_s": -1})
    with pytest.raises(ConfigError, match="unknown"):
        as_commit_meta({"unknown": 1})
