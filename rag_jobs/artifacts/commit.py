"""The commit protocol: upload under a fresh attempt folder, then create `_MANIFEST.json` last.

Readers trust only committed steps. The manifest is created with a conditional write, so when
two attempts race exactly one wins; the loser deletes its own files and raises AlreadyCommitted.
Checkpoints follow the same protocol one folder deeper (see `layout`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag_jobs.artifacts import layout
from rag_jobs.artifacts.digests import file_sha256, remember_sha256
from rag_jobs.artifacts.layout import CheckpointRef, RunRef, StepRef
from rag_jobs.artifacts.manifest import CommitMeta, FileEntry, Manifest, as_commit_meta, current_image
from rag_jobs.artifacts.store import TMP_PREFIX, ArtifactNotFound, ArtifactStore, validate_key
from rag_jobs.errors import AlreadyCommitted, ConfigError, IntegrityError, StoreError, TransientError

DEFAULT_WORKERS = 8
DEFAULT_SWEEP_GRACE_S = 6 * 3600.0
_HASH_BUFFER = 4 * 1024 * 1024

Target = StepRef | CheckpointRef


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_BUFFER):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _local_files(local_dir: Path) -> dict[str, Path]:
    """relpath -> path of every regular file under local_dir (`.tmp-*` names skipped)."""
    if not local_dir.is_dir():
        raise StoreError(f"cannot commit {str(local_dir)!r}: not a folder")
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(local_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(TMP_PREFIX))
        for name in sorted(filenames):
            if name.startswith(TMP_PREFIX):
                continue
            path = Path(dirpath, name)
            if not path.is_file():
                if path.is_symlink():
                    raise StoreError(f"cannot commit {str(path)!r}: broken symbolic link")
                continue
            relpath = path.relative_to(local_dir).as_posix()
            found[validate_key(relpath, what="file path")] = path
    return found


def read_manifest(store: ArtifactStore, ref: Target) -> Manifest | None:
    """The manifest of a step or checkpoint, or None when it is not committed."""
    try:
        data = store.get_bytes(ref.manifest_key)
    except ArtifactNotFound:
        return None
    manifest = Manifest.from_json(data, source=f"{store.uri}/{ref.manifest_key}")
    n = ref.n if isinstance(ref, CheckpointRef) else None
    if (manifest.run_id, manifest.step, manifest.checkpoint) != (ref.run_id, ref.step, n):
        raise IntegrityError(
            f"{store.uri}/{ref.manifest_key} belongs to run {manifest.run_id!r} step {manifest.step!r}"
            f" checkpoint {manifest.checkpoint}, not to {ref.describe()}"
        )
    if not layout.is_attempt_id(manifest.attempt):
        raise IntegrityError(f"{store.uri}/{ref.manifest_key} is corrupt: bad attempt {manifest.attempt!r}")
    return manifest



def read_selected(store: ArtifactStore, ref: StepRef, depth: int = 4) -> Manifest | None:
    """The manifest of a committed step, or None; a selection step stands for the grid child it selected."""
    for _ in range(depth):
        manifest = read_manifest(store, ref)
        selected = (manifest.extra or {}).get("selected") if manifest is not None else None
        if not selected:
            return manifest
        ref = StepRef(ref.run_id, selected)
    raise IntegrityError(f"{ref.describe()}: selection chain deeper than {depth}")

def is_committed(store: ArtifactStore, ref: Target) -> bool:
    """Whether the step (or checkpoint) has a manifest."""
    return store.exists(ref.manifest_key)


def commit_dir(
    store: ArtifactStore,
    step_ref: StepRef,
    local_dir: str | os.PathLike[str],
    *,
    meta: CommitMeta | Mapping[str, Any] | None = None,
    max_workers: int = DEFAULT_WORKERS,
) -> Manifest:
    """Upload every file of local_dir, then commit the step; AlreadyCommitted if another won."""
    return _commit(store, step_ref, Path(local_dir), as_commit_meta(meta), max_workers)


def commit_checkpoint(
    store: ArtifactStore,
    step_ref: StepRef,
    n: int,
    local_dir: str | os.PathLike[str],
    meta: CommitMeta | Mapping[str, Any] | None = None,
    *,
    max_workers: int = DEFAULT_WORKERS,
) -> Manifest:
    """Commit local_dir as checkpoint `n` of the step (same protocol as `commit_dir`)."""
    return _commit(store, step_ref.checkpoint(n), Path(local_dir), as_commit_meta(meta), max_workers)


def _commit(store: ArtifactStore, ref: Target, local_dir: Path, meta: CommitMeta, workers: int) -> Manifest:
    started_at = meta.started_at or datetime.now(timezone.utc)
    existing = read_manifest(store, ref)
    if existing is not None:
        raise AlreadyCommitted(f"{ref.describe()} is already committed (attempt {existing.attempt})")
    files = _local_files(local_dir)
    attempt = layout.new_attempt_id()

    def upload(item: tuple[str, Path]) -> tuple[str, FileEntry]:
        relpath, path = item
        key = ref.file_key(attempt, relpath)
        before = path.stat()
        sha256, size = _hash_file(path)
        store.put_file(key, path)
        after = path.stat()
        if (before.st_size, before.st_mtime_ns, size) != (after.st_size, after.st_mtime_ns, after.st_size):
            raise StoreError(f"cannot commit {str(path)!r}: the file changed while it was uploaded")
        return relpath, FileEntry(sha256=sha256, size=size, key=key)

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="commit") as pool:
            entries = dict(pool.map(upload, files.items()))
        present = set(store.list(ref.attempt_prefix(attempt)))
        missing = sorted(entry.key for entry in entries.values() if entry.key not in present)
        if missing:
            raise TransientError(
                f"cannot commit {ref.describe()}: {len(missing)} uploaded file(s) vanished, e.g. {missing[0]}"
            )
    except BaseException:
        _discard(store, ref, attempt)
        raise

    committed_at = datetime.now(timezone.utc)
    finished_at = meta.finished_at or committed_at
    wall_s = meta.wall_s if meta.wall_s is not None else (finished_at - started_at).total_seconds()
    manifest = Manifest(
        run_id=ref.run_id,
        step=ref.step,
        checkpoint=ref.n if isinstance(ref, CheckpointRef) else None,
        attempt=attempt,
        files=dict(sorted(entries.items())),
        inputs=dict(meta.inputs),
        config_hash=meta.config_hash,
        image=current_image(),
        started_at=started_at,
        finished_at=finished_at,
        committed_at=committed_at,
        wall_s=max(0.0, wall_s),
        device=meta.device,
        metrics=dict(meta.metrics),
        extra=dict(meta.extra),
    )
    try:
        created = store.put_bytes_if_absent(ref.manifest_key, manifest.to_json())
    except Exception:
        # The write may have landed although the reply was lost: only discard if another attempt won.
        with contextlib.suppress(Exception):
            winner = read_manifest(store, ref)
            if winner is not None and winner.attempt == attempt:
                return winner
            if winner is not None:
                _discard(store, ref, attempt)
        raise
    if created:
        return manifest
    winner = read_manifest(store, ref)
    if winner is not None and winner.attempt == attempt:
        return winner  # a retried request whose first try had already created the manifest
    _discard(store, ref, attempt)
    raise AlreadyCommitted(f"{ref.describe()} was committed first by attempt {_attempt_of(winner)}")


def _order(n: int | None) -> int:
    return -1 if n is None else n


def _attempt_of(manifest: Manifest | None) -> str:
    return manifest.attempt if manifest is not None else "unknown"


def _discard(store: ArtifactStore, ref: Target, attempt: str) -> None:
    with contextlib.suppress(Exception):
        store.delete_prefix(ref.attempt_prefix(attempt))


def _require(store: ArtifactStore, ref: Target) -> Manifest:
    manifest = read_manifest(store, ref)
    if manifest is None:
        raise ArtifactNotFound(f"{ref.describe()} is not committed in {store.uri}")
    return manifest


def fetch_step(
    store: ArtifactStore,
    step_ref: StepRef,
    dest_dir: str | os.PathLike[str],
    *,
    files: Iterable[str] | None = None,
    max_workers: int = DEFAULT_WORKERS,
) -> Path:
    """Download the committed step's files (or `files`) into dest_dir, verified; return dest_dir."""
    return fetch_manifest(store, _require(store, step_ref), dest_dir, files=files, max_workers=max_workers)


def fetch_checkpoint(
    store: ArtifactStore,
    step_ref: StepRef,
    n: int,
    dest_dir: str | os.PathLike[str],
    *,
    files: Iterable[str] | None = None,
    max_workers: int = DEFAULT_WORKERS,
) -> Path:
    """Download committed checkpoint `n` into dest_dir, verified; return dest_dir."""
    manifest = _require(store, step_ref.checkpoint(n))
    return fetch_manifest(store, manifest, dest_dir, files=files, max_workers=max_workers)


def fetch_manifest(
    store: ArtifactStore,
    manifest: Manifest,
    dest_dir: str | os.PathLike[str],
    *,
    files: Iterable[str] | None = None,
    max_workers: int = DEFAULT_WORKERS,
) -> Path:
    """Download the files a manifest lists; files already in dest_dir with the right sha256 are kept."""
    dest = Path(dest_dir)
    source = f"step {manifest.step!r} of run {manifest.run_id!r}"
    if manifest.checkpoint is not None:
        source = f"checkpoint {manifest.checkpoint} of {source}"
    source += f" in {store.uri}"
    wanted = sorted(manifest.files) if files is None else list(dict.fromkeys(files))
    unknown = [name for name in wanted if name not in manifest.files]
    if unknown:
        raise ArtifactNotFound(f"{source} has no file {unknown[0]!r}")
    for relpath in wanted:
        try:
            validate_key(relpath, what="file path")
            validate_key(manifest.files[relpath].key)
        except StoreError as exc:
            raise IntegrityError(f"manifest of {source} is corrupt: {exc}") from exc

    def fetch(relpath: str) -> None:
        entry = manifest.files[relpath]
        target = dest.joinpath(*relpath.split("/"))
        if _matches(target, entry):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            store.get_file(entry.key, tmp)
            sha256, size = _hash_file(tmp)
            if size != entry.size or sha256 != entry.sha256:
                raise IntegrityError(
                    f"{relpath!r} of {source} does not match its manifest (expected {entry.size} bytes "
                    f"sha256 {entry.sha256[:12]}..., got {size} bytes sha256 {sha256[:12]}...)"
                )
            os.replace(tmp, target)
            remember_sha256(target, sha256)  # verified once per fetch: later readers trust it unchanged
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    try:
        dest.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="fetch") as pool:
            list(pool.map(fetch, wanted))
    except OSError as exc:
        raise StoreError(f"cannot write into {str(dest)!r}: {exc.strerror or exc}") from exc
    return dest


def _matches(path: Path, entry: FileEntry) -> bool:
    """Whether `path` already holds exactly the file of `entry` (the sha256-keyed local cache)."""
    try:
        if not path.is_file() or path.stat().st_size != entry.size:
            return False
        return file_sha256(path) == entry.sha256  # hashed again only if changed since it was verified
    except OSError:
        return False


def _committed_checkpoints(store: ArtifactStore, step_ref: StepRef) -> list[int]:
    run = step_ref.run
    found = []
    for key in store.list(step_ref.checkpoints_prefix):
        parsed = layout.parse_run_key(run, key)
        if parsed.kind == "manifest" and parsed.step == step_ref.step and parsed.checkpoint is not None:
            found.append(parsed.checkpoint)
    return sorted(found)


def latest_checkpoint(store: ArtifactStore, step_ref: StepRef) -> tuple[int, Manifest] | None:
    """The newest committed checkpoint (n, manifest), or None."""
    for n in reversed(_committed_checkpoints(store, step_ref)):
        manifest = read_manifest(store, step_ref.checkpoint(n))
        if manifest is not None:  # else pruned since the listing
            return n, manifest
    return None


def prune_checkpoints(store: ArtifactStore, step_ref: StepRef, keep: int = 2) -> list[int]:
    """Delete all committed checkpoints but the newest `keep`; return the numbers deleted."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ConfigError(f"keep must be an integer >= 0, got {keep!r}")
    committed = _committed_checkpoints(store, step_ref)
    doomed = committed[: len(committed) - keep] if keep else committed
    for n in doomed:
        ref = step_ref.checkpoint(n)
        store.delete(ref.manifest_key)  # uncommit first, so no reader trusts a half-deleted one
        store.delete_prefix(ref.prefix)
    return doomed


def sweep_uncommitted(
    store: ArtifactStore,
    run_ref: RunRef,
    *,
    grace_s: float = DEFAULT_SWEEP_GRACE_S,
    now: float | None = None,
) -> list[str]:
    """Delete attempt folders no manifest references and older than grace_s; return their prefixes.

    An attempt younger than `grace_s` may still be uploading, so it is kept; pass grace_s=0 only
    when no attempt of this run can be in flight.
    """
    cutoff = (time.time() if now is None else now) - grace_s
    attempts: dict[tuple[str, int | None], set[str]] = {}
    for key in store.list(run_ref.prefix):
        parsed = layout.parse_run_key(run_ref, key)
        if parsed.kind == "file" and parsed.step is not None and parsed.attempt is not None:
            attempts.setdefault((parsed.step, parsed.checkpoint), set()).add(parsed.attempt)

    removed: list[str] = []
    for (step, n), found in sorted(attempts.items(), key=lambda item: (item[0][0], _order(item[0][1]))):
        step_ref = run_ref.step(step)
        ref: Target = step_ref if n is None else step_ref.checkpoint(n)
        try:
            manifest = read_manifest(store, ref)  # read now, not from the listing: it may have just landed
        except IntegrityError:
            continue  # never delete around a manifest we cannot read
        keep = manifest.attempt if manifest is not None else None
        for attempt in sorted(found):
            if attempt == keep or layout.attempt_started(attempt) > cutoff:
                continue
            prefix = ref.attempt_prefix(attempt)
            store.delete_prefix(prefix)
            removed.append(prefix)
    return sorted(removed)


def sweep_run(store: ArtifactStore, run_ref: RunRef, *, grace_s: float = DEFAULT_SWEEP_GRACE_S) -> dict[str, int]:
    """Everything a crash can leave behind in a run, older than grace_s: uncommitted attempt folders, incomplete
    multipart uploads (S3: those of the whole store prefix) and temporary files of killed writers (local)."""
    removed = sweep_uncommitted(store, run_ref, grace_s=grace_s)
    aborted = store.abort_orphan_uploads(older_than_s=grace_s) if hasattr(store, "abort_orphan_uploads") else 0
    temps = store.remove_stale_temp_files(run_ref.prefix, grace_s) if hasattr(store, "remove_stale_temp_files") else 0
    return {"attempts_removed": len(removed), "uploads_aborted": aborted, "temp_files_removed": temps}
