"""The store-wide step index: config hash -> the run that first committed a step of that hash.

Cross-run reuse (`compare` builds one index for every strategy; a later run shares any equal step) reads one
key per step instead of listing every run of the store.
"""

from __future__ import annotations

import json

from rag_jobs.artifacts.commit import read_manifest
from rag_jobs.artifacts.layout import StepRef, step_index_key
from rag_jobs.artifacts.manifest import Manifest
from rag_jobs.artifacts.store import ArtifactNotFound
from rag_jobs.errors import ConfigError, IntegrityError


def record_step(store, ref: StepRef, config_hash: str) -> None:
    """Note that `ref` committed a step of `config_hash`. The first record wins, unless the run it names no
    longer holds that step (removed), when this one takes its place."""
    key = step_index_key(config_hash)
    body = json.dumps({"run": ref.run_id, "step": ref.step}, sort_keys=True).encode()
    if store.put_bytes_if_absent(key, body):
        return
    if find_step(store, config_hash) is None:
        store.put_bytes(key, body)


def find_step(store, config_hash: str) -> Manifest | None:
    """The committed manifest the index names for `config_hash`, or None (no record, or it is gone or differs)."""
    try:
        entry = json.loads(store.get_bytes(step_index_key(config_hash)))
        manifest = read_manifest(store, StepRef(str(entry["run"]), str(entry["step"])))
    except (ArtifactNotFound, ValueError, KeyError, TypeError, IntegrityError, ConfigError):
        return None
    return manifest if manifest is not None and manifest.config_hash == config_hash else None
