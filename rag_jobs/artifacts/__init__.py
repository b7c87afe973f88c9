"""Artifact stores (local folder, S3), the key layout, manifests and the commit protocol."""

from rag_jobs.artifacts.commit import (
    commit_checkpoint,
    commit_dir,
    fetch_checkpoint,
    fetch_manifest,
    fetch_step,
    is_committed,
    latest_checkpoint,
    prune_checkpoints,
    read_manifest,
    read_selected,
    sweep_run,
    sweep_uncommitted,
)
from rag_jobs.artifacts.layout import CheckpointRef, RunRef, StepRef, parse_run_uri, run_uri
from rag_jobs.artifacts.manifest import CommitMeta, DeviceInfo, FileEntry, Manifest
from rag_jobs.artifacts.store import ArtifactNotFound, ArtifactStore, LocalStore, S3Store, open_store

__all__ = [
    "ArtifactNotFound",
    "ArtifactStore",
    "CheckpointRef",
    "CommitMeta",
    "DeviceInfo",
    "FileEntry",
    "LocalStore",
    "Manifest",
    "RunRef",
    "S3Store",
    "StepRef",
    "commit_checkpoint",
    "commit_dir",
    "fetch_checkpoint",
    "fetch_manifest",
    "fetch_step",
    "is_committed",
    "latest_checkpoint",
    "open_store",
    "parse_run_uri",
    "prune_checkpoints",
    "read_manifest",
    "read_selected",
    "run_uri",
    "sweep_run",
    "sweep_uncommitted",
]
