"""Storage fault scenarios for the artifact stores: interrupted uploads, duplicate execution, reconcile.

Plain functions (no pytest here): each takes a work folder and an S3 endpoint/bucket (or a store),
runs its scenario against the real `rag_jobs.artifacts` code and RETURNS its figures as a dict, so
the same scenarios can back a test (`test_storage_faults.py`) or a one-off reliability report.

* `interrupted_uploads`: multipart uploads cut by injected network faults at several byte offsets
  (in process, through the boto3 client's event hooks) and by SIGKILL of a separate uploader
  process; after each fault no object may be half visible and no manifest may exist without all
  its files; then the sweep (`sweep_run`: attempts, multipart uploads, temp files) must leave no
  orphan multipart upload and no uncommitted attempt folder.
* `duplicate_execution`: the same step committed twice, one after the other and concurrently
  (threads and processes, several rounds, local store and S3): exactly one winner and one
  manifest, every loser gets AlreadyCommitted (exit code 0), the winner's files are intact.
* `reconcile`: walk a store: every manifest's files exist with their sha256, and every other
  object lies in an attempt folder no manifest references (which `sweep` removes).

The S3 scenarios need credentials in the environment (moto accepts any, e.g. AWS_ACCESS_KEY_ID=
testing); `aws_env` provides dummy ones. This file is also the worker of the process scenarios:
`python faults_storage.py --worker '<json spec>'`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rag_jobs.artifacts import layout
from rag_jobs.artifacts.commit import commit_dir, read_manifest, sweep_run
from rag_jobs.artifacts.layout import CheckpointRef, RunRef, StepRef
from rag_jobs.artifacts.store import TMP_PREFIX, ArtifactNotFound, LocalStore, S3Store
from rag_jobs.errors import AlreadyCommitted, IntegrityError

MiB = 1024 * 1024
PART = 5 * MiB  # the smallest part S3 accepts: keeps multipart uploads small and fast
WORKER_TIMEOUT_S = 60.0

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def s3_store(
    endpoint: str, bucket: str, prefix: str, *, max_attempts: int | None = 1, max_concurrency: int = 1
) -> S3Store:
    """An S3Store with 5 MiB parts (anything over 5 MiB goes multipart), one part at a time.

    max_attempts=1 means one attempt, no retry. S3Store passes its max_attempts to botocore as
    retries={"max_attempts": n}, which botocore reads as n RETRIES (n + 1 attempts), so for
    max_attempts=1 this builds the same client with total_max_attempts=1 and hands it over.
    """
    client = None
    if max_attempts == 1:
        import boto3
        from botocore.config import Config

        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=10,
            read_timeout=120,
            s3={"addressing_style": "path"},
        )
        client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
    return S3Store(
        bucket,
        prefix,
        client=client,
        endpoint_url=endpoint,
        max_attempts=max_attempts,
        multipart_threshold=PART,
        multipart_chunksize=PART,
        max_concurrency=max_concurrency,
    )


@contextlib.contextmanager
def aws_env(endpoint: str | None = None) -> Iterator[None]:
    """Dummy credentials (unless some are set) and, if given, AWS_ENDPOINT_URL; restored after."""
    wanted = {
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if endpoint:
        wanted["AWS_ENDPOINT_URL"] = endpoint
    with _env(wanted):
        yield


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def open_uploads(store: S3Store) -> list[dict[str, Any]]:
    """Incomplete multipart uploads under the store's prefix (what list_multipart_uploads shows)."""
    prefix = f"{store.prefix}/" if store.prefix else ""
    uploads: list[dict[str, Any]] = []
    for page in store.client.get_paginator("list_multipart_uploads").paginate(Bucket=store.bucket, Prefix=prefix):
        uploads.extend(page.get("Uploads", []))
    return uploads


def raw_keys(store: LocalStore | S3Store) -> list[str]:
    """Every object of the store, including the ones `list()` hides (`.tmp-*` names)."""
    if isinstance(store, S3Store):
        prefix = f"{store.prefix}/" if store.prefix else ""
        keys = []
        for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix):
            keys.extend(item["Key"][len(prefix) :] for item in page.get("Contents", []))
        return sorted(keys)
    root = store.root
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _runs_of(keys: list[str]) -> list[RunRef]:
    runs = set()
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 3 and parts[0] == layout.RUNS:
            with contextlib.suppress(Exception):
                runs.add(RunRef(parts[1]))
    return sorted(runs, key=lambda run: run.run_id)


def _ref_of(run: RunRef, parsed: layout.ParsedKey) -> StepRef | CheckpointRef:
    assert parsed.step is not None
    step = run.step(parsed.step)
    return step if parsed.checkpoint is None else step.checkpoint(parsed.checkpoint)


# --------------------------------------------------------------------------------------------
# Fault injection on a boto3 client
# --------------------------------------------------------------------------------------------


class NetworkFault:
    """Cut the connection after `after_bytes` request-body bytes (counted over PutObject/UploadPart).

    mode "blip": only the request in flight fails; its retry and later requests go through.
    mode "uploads": from then on every data request (PutObject, UploadPart, CompleteMultipartUpload)
    fails, retries included, while control requests work: the upload fails and boto3 and S3Store
    abort it. mode "down": from then on every request fails, the aborts included, so the
    multipart upload is left orphaned. A fault at an offset >= the file size hits
    CompleteMultipartUpload (every part sent).
    """

    _BODY_OPS = ("PutObject", "UploadPart")
    _DATA_OPS = ("PutObject", "UploadPart", "CompleteMultipartUpload")

    def __init__(self, client: Any, after_bytes: int, *, mode: str = "uploads") -> None:
        if mode not in ("blip", "uploads", "down"):
            raise ValueError(f"unknown fault mode {mode!r}")
        self.client, self.after_bytes, self.mode = client, after_bytes, mode
        self.sent = 0
        self.tripped = False
        self.failed_requests = 0

    def __enter__(self) -> NetworkFault:
        self.client.meta.events.register("before-send.s3", self._before_send)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister("before-send.s3", self._before_send)

    def fail(self, what: str) -> None:
        self.tripped = True
        self.failed_requests += 1
        raise ConnectionResetError(f"injected network fault ({what}) after {self.sent} bytes")

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        if self.tripped:
            if self.mode == "down" or (self.mode == "uploads" and op in self._DATA_OPS):
                self.fail(f"{self.mode}, {op}")
            return
        if op in self._BODY_OPS:
            body = request.body
            if isinstance(body, bytes | bytearray):
                body = io.BytesIO(body)
            if body is not None:
                request.body = _CutBody(body, self)
        elif op == "CompleteMultipartUpload" and self.sent >= self.after_bytes:
            self.fail("connection reset before CompleteMultipartUpload")


class _CutBody:
    """A request body that raises once the fault's byte budget is spent."""

    def __init__(self, inner: Any, fault: NetworkFault) -> None:
        self._inner, self._fault = inner, fault

    def read(self, n: int | None = -1) -> bytes:
        fault = self._fault
        if fault.tripped:
            if fault.mode == "blip":
                return bytes(self._inner.read(n))
            fault.fail("connection reset mid-body")
        budget = fault.after_bytes - fault.sent
        if budget <= 0:
            if not self._inner.read(1):
                return b""  # the body is all sent: the fault will hit the next request
            fault.fail("connection reset mid-body")
        if n is None or n < 0 or n > budget:
            n = budget
        data = bytes(self._inner.read(n))
        fault.sent += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# --------------------------------------------------------------------------------------------
# Checks shared by the scenarios
# --------------------------------------------------------------------------------------------


def half_visible_keys(store: LocalStore | S3Store, expected: dict[str, str]) -> list[str]:
    """Keys of `expected` (key -> sha256) that exist with other content (a partial object)."""
    bad = []
    for key, sha in expected.items():
        try:
            data = store.get_bytes(key)
        except ArtifactNotFound:
            continue
        if sha256_bytes(data) != sha:
            bad.append(key)
    return bad


def check_commit(store: LocalStore | S3Store, ref: StepRef, expected: dict[str, str]) -> dict[str, int]:
    """After a fault in a commit of `ref` whose files are `expected` (relpath -> sha256).

    half_visible: an attempt file that exists with content other than its source's.
    manifest_without_files: the manifest exists but one of its files is missing or differs.
    """
    half = 0
    for key in store.list(ref.prefix):
        parsed = layout.parse_run_key(ref.run, key)
        if parsed.kind == "file" and parsed.checkpoint is None and parsed.relpath in expected:
            if sha256_bytes(store.get_bytes(key)) != expected[parsed.relpath]:
                half += 1
    incomplete = 0
    manifest = read_manifest(store, ref)
    if manifest is not None:
        if set(manifest.files) != set(expected):
            incomplete += 1
        for relpath, entry in manifest.files.items():
            try:
                data = store.get_bytes(entry.key)
            except ArtifactNotFound:
                incomplete += 1
                continue
            if sha256_bytes(data) != entry.sha256 or entry.sha256 != expected.get(relpath):
                incomplete += 1
    return {"half_visible": half, "manifest_without_files": incomplete, "committed": int(manifest is not None)}


def sweep(store: LocalStore | S3Store) -> dict[str, int]:
    """rag_jobs' clean-up after crashed writers (`sweep_run`: what `rag-jobs sweep` runs) over every run of the
    store, with no grace period. Only call it when no writer of the store is in flight."""
    total = {"attempts_removed": 0, "uploads_aborted": 0, "temp_files_removed": 0}
    for run in _runs_of(store.list(f"{layout.RUNS}/")):
        for key, value in sweep_run(store, run, grace_s=0).items():
            total[key] += value
    if isinstance(store, S3Store):  # uploads of keys outside any run (the raw-upload scenarios) too
        total["uploads_aborted"] += store.abort_orphan_uploads(older_than_s=0)
    return total


def reconcile(store: LocalStore | S3Store) -> dict[str, int]:
    """Walk a store: manifests, their files (exist, sha256), and every object outside a manifest.

    lost: files a manifest lists that are missing or whose bytes differ from its sha256.
    unreadable_manifests: manifests that do not parse or belong elsewhere (IntegrityError).
    uncommitted_attempt_objects: objects in attempt folders no manifest references (crashed or
    losing attempts; `sweep` removes them). stray_objects: anything else outside a manifest.
    temp_objects: hidden `.tmp-*` objects. orphan_uploads: incomplete multipart uploads (S3).
    """
    keys = store.list()
    manifests = files_checked = missing = corrupt = stray = uncommitted = bad_manifests = 0
    referenced: set[str] = set()
    committed_attempt: dict[tuple[str, str, int | None], str] = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != layout.RUNS:
            continue
        try:
            run = RunRef(parts[1])
        except Exception:
            continue
        parsed = layout.parse_run_key(run, key)
        if parsed.kind != "manifest":
            continue
        ref = _ref_of(run, parsed)
        try:
            manifest = read_manifest(store, ref)
        except IntegrityError:
            bad_manifests += 1
            continue
        if manifest is None:  # deleted since the listing
            continue
        manifests += 1
        committed_attempt[(run.run_id, parsed.step or "", parsed.checkpoint)] = manifest.attempt
        for entry in manifest.files.values():
            files_checked += 1
            referenced.add(entry.key)
            try:
                data = store.get_bytes(entry.key)
            except ArtifactNotFound:
                missing += 1
                continue
            if len(data) != entry.size or sha256_bytes(data) != entry.sha256:
                corrupt += 1
    for key in keys:
        if key in referenced:
            continue
        parts = key.split("/")
        parsed = layout.ParsedKey("other")
        if len(parts) >= 3 and parts[0] == layout.RUNS:
            with contextlib.suppress(Exception):
                parsed = layout.parse_run_key(RunRef(parts[1]), key)
        if parsed.kind in ("manifest", "graph"):
            continue
        if parsed.kind == "file":
            winner = committed_attempt.get((parts[1], parsed.step or "", parsed.checkpoint))
            if parsed.attempt != winner:
                uncommitted += 1  # a crashed or losing attempt: sweep_uncommitted's business
                continue
        stray += 1  # outside every manifest and every attempt folder (or unlisted in the winner's)
    hidden = [key for key in raw_keys(store) if any(seg.startswith(TMP_PREFIX) for seg in key.split("/"))]
    return {
        "manifests": manifests,
        "unreadable_manifests": bad_manifests,
        "files_checked": files_checked,
        "lost": missing + corrupt,
        "missing": missing,
        "corrupt": corrupt,
        "stray_objects": stray,
        "uncommitted_attempt_objects": uncommitted,
        "temp_objects": len(hidden),
        "orphan_uploads": len(open_uploads(store)) if isinstance(store, S3Store) else 0,
    }


# --------------------------------------------------------------------------------------------
# Worker processes (SIGKILL targets and process contenders)
# --------------------------------------------------------------------------------------------


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(spec: dict[str, Any], log: Path) -> subprocess.Popen[str]:
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=_worker_env(),
        )


def kill_at(spec: dict[str, Any], marker: str, log: Path, timeout_s: float = WORKER_TIMEOUT_S) -> dict[str, Any]:
    """Start a worker, SIGKILL it as soon as it prints a line starting with `marker`."""
    proc = _spawn(spec, log)
    watchdog = threading.Timer(timeout_s, proc.kill)
    watchdog.start()
    seen: list[str] = []
    killed = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line.strip())
            if line.startswith(marker):
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    return {"killed": killed and proc.returncode == -signal.SIGKILL, "rc": proc.returncode, "lines": seen}


def _hold() -> None:
    """Announce the pause point and wait to be killed."""
    print("PAUSED", flush=True)
    time.sleep(WORKER_TIMEOUT_S * 2)
    os._exit(3)


class _PauseBody:
    """A request body that pauses (to be SIGKILLed) after `after` bytes: a kill mid-part."""

    def __init__(self, inner: Any, after: int) -> None:
        self._inner, self._left = inner, after

    def read(self, n: int | None = -1) -> bytes:
        if self._left <= 0:
            _hold()
        if n is None or n < 0 or n > self._left:
            n = self._left
        data = bytes(self._inner.read(n))
        self._left -= len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _GatedStore:
    """A store proxy that calls `gate(key, phase)` around the manifest's conditional write."""

    def __init__(self, inner: Any, gate: Callable[[str, str], None]) -> None:
        self._inner, self._gate = inner, gate

    @property
    def uri(self) -> str:
        return str(self._inner.uri)

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        is_manifest = key.rsplit("/", 1)[-1] == layout.MANIFEST_NAME
        if is_manifest:
            self._gate(key, "before")
        created = self._inner.put_bytes_if_absent(key, data)
        if is_manifest:
            self._gate(key, "after")
        return bool(created)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _worker_store(spec: dict[str, Any]) -> LocalStore | S3Store:
    if spec["store"] == "local":
        return LocalStore(spec["root"])
    return s3_store(spec["endpoint"], spec["bucket"], spec["prefix"], max_attempts=spec.get("max_attempts", 3))


def _worker_upload(spec: dict[str, Any]) -> None:
    """Upload (put_file or commit_dir) through S3, pausing at spec['pause'] to be killed."""
    store = _worker_store(spec)
    assert isinstance(store, S3Store)
    pause = spec.get("pause", {})
    at, n = pause.get("at", "none"), int(pause.get("n", 1))
    parts = {"done": 0}

    def after_part(**_: Any) -> None:
        parts["done"] += 1
        print(f"PART {parts['done']}", flush=True)
        if at == "part-sent" and parts["done"] == n:
            _hold()

    def before_send(request: Any, **_: Any) -> None:
        if at == "mid-part" and parts["done"] + 1 == n:
            request.body = _PauseBody(request.body, int(pause.get("bytes", MiB)))

    store.client.meta.events.register("after-call.s3.UploadPart", after_part)
    store.client.meta.events.register("before-send.s3.UploadPart", before_send)
    if spec["op"] == "put":
        store.put_file(spec["key"], spec["path"])
    else:

        def gate(key: str, phase: str) -> None:
            if at == f"{phase}-manifest":
                _hold()

        commit_dir(_GatedStore(store, gate), StepRef(spec["run"], spec["step"]), spec["dir"], max_workers=1)
    print("DONE", flush=True)


def contender_files(step: str, contender: int) -> dict[str, bytes]:
    """The (deterministic, contender-specific) outputs a contender commits for `step`."""
    rng = random.Random(f"{step}/{contender}")
    return {
        "config.json": json.dumps({"step": step, "contender": contender}).encode(),
        "weights/blob.bin": rng.randbytes(32 * 1024),
    }


def _materialize(folder: Path, files: dict[str, bytes]) -> Path:
    for relpath, data in files.items():
        path = folder.joinpath(*relpath.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def contend(store: Any, ref: StepRef, contender: int, folder: Path) -> dict[str, Any]:
    """One contender: commit its own outputs for `ref`; the outcome as a dict."""
    _materialize(folder, contender_files(ref.step, contender))
    try:
        manifest = commit_dir(store, ref, folder, max_workers=2)
    except AlreadyCommitted as exc:
        return {"contender": contender, "outcome": "lost", "exit_code": exc.exit_code}
    except Exception as exc:  # a fault of the protocol: reported, and counted as an error
        return {"contender": contender, "outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
    return {"contender": contender, "outcome": "won", "attempt": manifest.attempt}


def _file_barrier(folder: Path, contender: int, count: int, timeout_s: float) -> Callable[[str, str], None]:
    """A gate that holds each contender before the manifest write until all `count` are there."""

    def gate(key: str, phase: str) -> None:
        if phase != "before":
            return
        here = folder / key.replace("/", "__")
        here.mkdir(parents=True, exist_ok=True)
        (here / str(contender)).touch()
        deadline = time.monotonic() + timeout_s
        while len(list(here.iterdir())) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"barrier {key}: not all {count} contenders arrived")
            time.sleep(0.005)

    return gate


def _worker_race(spec: dict[str, Any]) -> None:
    """A process contender: commit each step of spec['steps'], all contenders meeting at a barrier."""
    store = _worker_store(spec)
    contender, count = int(spec["contender"]), int(spec["count"])
    gated = _GatedStore(store, _file_barrier(Path(spec["barrier"]), contender, count, 30.0))
    work = Path(spec["work"])
    for step in spec["steps"]:
        ref = StepRef(spec["run"], step)
        result = contend(gated, ref, contender, work / f"{step}-{contender}")
        print("RESULT " + json.dumps({"step": step, **result}), flush=True)


def _worker_main(argv: list[str]) -> int:
    spec = json.loads(argv[argv.index("--worker") + 1])
    if spec["op"] == "race":
        _worker_race(spec)
    else:
        _worker_upload(spec)
    return 0


# --------------------------------------------------------------------------------------------
# a. Interrupted uploads
# --------------------------------------------------------------------------------------------


def _random_file(path: Path, size: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    return sha256_bytes(data)


def interrupted_uploads(
    work: str | os.PathLike[str],
    endpoint: str,
    bucket: str,
    *,
    prefix: str = "faults",
    file_mib: int = 13,
    offsets_mib: tuple[float, ...] = (0, 1, 5, 7.3, 10, 13),
    kills: bool = True,
) -> dict[str, Any]:
    """Cut multipart uploads (in-process faults at byte offsets, SIGKILLed uploader processes).

    Objects go under s3://bucket/<prefix>/raw (put_file) and s3://bucket/<prefix>/commit (commit_dir
    of run 'faults'). After each fault: no key half visible, no manifest without all its files.
    Then `sweep` and count the multipart uploads left.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    size = file_mib * MiB
    big = work / "big.bin"
    big_sha = _random_file(big, size)
    raw = s3_store(endpoint, bucket, f"{prefix}/raw", max_attempts=1)
    commit_store = s3_store(endpoint, bucket, f"{prefix}/commit", max_attempts=1)
    run = RunRef("faults")
    commit_src = work / "commit-src"
    _random_file(commit_src / "b-model.bin", size)
    (commit_src / "a-config.json").write_text('{"model": "tiny"}')
    (commit_src / "c-tokenizer.json").write_text('{"vocab": 30522}')
    commit_expected = {p.relative_to(commit_src).as_posix(): sha256_file(p) for p in commit_src.rglob("*")}

    figures: dict[str, Any] = {
        "uploads_faulted": 0,
        "in_process_faults": 0,
        "sigkills": 0,
        "half_visible": 0,
        "manifest_without_files": 0,
        "recovered_by_retry": 0,
        "complete_after_fault": 0,
        "left_open_after_clean_failure": 0,
        "faults": [],
    }
    raw_expected: dict[str, str] = {}

    def record(kind: str, where: str, faulted: bool, half: int, extra: dict[str, Any] | None = None) -> None:
        figures["uploads_faulted"] += int(faulted)
        figures["half_visible"] += half
        figures["faults"].append(
            {"kind": kind, "where": where, "faulted": faulted, "half_visible": half, **(extra or {})}
        )

    # 1. uploads fail from several byte offsets on (no retry helps): boto3 and S3Store abort them.
    # 2. the same, but the network stays down: the aborts fail too and the upload is orphaned.
    for mode in ("uploads", "down"):
        for i, mib in enumerate(offsets_mib if mode == "uploads" else offsets_mib[1:4]):
            key = f"{mode}/{i}/big.bin"
            raw_expected[key] = big_sha
            with NetworkFault(raw.client, int(mib * MiB), mode=mode) as fault:
                try:
                    raw.put_file(key, big)
                    faulted = False
                except Exception:
                    faulted = True
            figures["in_process_faults"] += int(faulted)
            half = len(half_visible_keys(raw, {key: big_sha}))
            left_open = sum(1 for u in open_uploads(raw) if u["Key"].endswith(f"/{key}"))
            if mode == "uploads":  # the control plane worked: put_file must have aborted its upload
                figures["left_open_after_clean_failure"] += left_open
            record(
                mode, f"{mib} MiB", faulted, half, {"failed_requests": fault.failed_requests, "left_open": left_open}
            )

    # 3. a blip with retries on: the upload recovers and the object is whole.
    retrying = s3_store(endpoint, bucket, f"{prefix}/raw", max_attempts=3)
    key = "blip/big.bin"
    raw_expected[key] = big_sha
    with NetworkFault(retrying.client, int(7.3 * MiB), mode="blip") as fault:
        retrying.put_file(key, big)
    if fault.failed_requests and raw.get_bytes(key) and not half_visible_keys(raw, {key: big_sha}):
        figures["recovered_by_retry"] += 1
    record("blip-retried", "7.3 MiB", fault.failed_requests > 0, len(half_visible_keys(raw, {key: big_sha})))

    # 4. commit_dir with the network going down mid-file: no manifest, the attempt is left to the sweep.
    for i, mib in enumerate((3.0, 9.0)):
        ref = run.step(f"net-{i}")
        with NetworkFault(commit_store.client, int(mib * MiB), mode="down"):
            try:
                commit_dir(commit_store, ref, commit_src, max_workers=1)
                faulted = False
            except Exception:
                faulted = True
        figures["in_process_faults"] += int(faulted)
        check = check_commit(commit_store, ref, commit_expected)
        figures["manifest_without_files"] += check["manifest_without_files"]
        record("commit-network-down", f"{mib} MiB", faulted and not check["committed"], check["half_visible"])

    # 5. SIGKILL a separate uploader process at chosen points.
    if kills:
        base = {"endpoint": endpoint, "bucket": bucket, "store": "s3"}
        put_cases = [
            ("put: after part 1", {"at": "part-sent", "n": 1}, "PAUSED"),
            ("put: mid part 2 (+1 MiB)", {"at": "mid-part", "n": 2, "bytes": MiB}, "PAUSED"),
            ("put: free-running, at first part", {"at": "none"}, "PART 1"),
        ]
        for i, (where, pause, marker) in enumerate(put_cases):
            key = f"killed/{i}/big.bin"
            raw_expected[key] = big_sha
            spec = {**base, "prefix": f"{prefix}/raw", "op": "put", "key": key, "path": str(big), "pause": pause}
            outcome = kill_at(spec, marker, work / "worker.log")
            complete = raw.exists(key)
            figures["sigkills"] += int(outcome["killed"])
            figures["complete_after_fault"] += int(complete)
            half = len(half_visible_keys(raw, {key: big_sha}))
            record("sigkill", where, outcome["killed"] and not complete, half, {"rc": outcome["rc"]})
        commit_cases = [
            ("commit: mid b-model.bin, after part 2", {"at": "part-sent", "n": 2}),
            ("commit: all files up, before the manifest", {"at": "before-manifest"}),
            ("commit: just after the manifest", {"at": "after-manifest"}),
        ]
        for i, (where, pause) in enumerate(commit_cases):
            ref = run.step(f"kill-{i}")
            spec = {
                **base,
                "prefix": f"{prefix}/commit",
                "op": "commit",
                "run": run.run_id,
                "step": ref.step,
                "dir": str(commit_src),
                "pause": pause,
            }
            outcome = kill_at(spec, "PAUSED", work / "worker.log")
            figures["sigkills"] += int(outcome["killed"])
            check = check_commit(commit_store, ref, commit_expected)
            figures["manifest_without_files"] += check["manifest_without_files"]
            # a kill after the manifest landed interrupted no upload: it must read as committed
            in_flight = pause["at"] != "after-manifest"
            record(
                "sigkill",
                where,
                outcome["killed"] and in_flight and not check["committed"],
                check["half_visible"],
                {"rc": outcome["rc"], "committed": check["committed"]},
            )
            if not in_flight:
                figures["committed_after_late_kill"] = check["committed"]

    stray_raw = [k for k in raw_keys(raw) if k not in raw_expected]
    figures["unexpected_raw_objects"] = len(stray_raw)
    figures["orphan_uploads_before_sweep"] = len(open_uploads(raw)) + len(open_uploads(commit_store))
    figures["uncommitted_attempt_objects_before_sweep"] = reconcile(commit_store)["uncommitted_attempt_objects"]
    swept_raw = sweep(raw)
    swept_commit = sweep(commit_store)
    figures["sweep"] = {
        "uploads_aborted": swept_raw["uploads_aborted"] + swept_commit["uploads_aborted"],
        "attempts_removed": swept_commit["attempts_removed"],
    }
    figures["orphan_uploads_after_sweep"] = len(open_uploads(raw)) + len(open_uploads(commit_store))
    figures["half_visible_after_sweep"] = len(half_visible_keys(raw, raw_expected))
    figures["reconcile_commit_store"] = reconcile(commit_store)
    return figures


# --------------------------------------------------------------------------------------------
# b. Duplicate execution
# --------------------------------------------------------------------------------------------


def _verify_step(store: Any, ref: StepRef, results: list[dict[str, Any]]) -> dict[str, int]:
    """One step after its contenders: manifests, winners, overwrites, intact files, loser leftovers."""
    manifest_keys = [k for k in raw_keys(store) if k.startswith(ref.prefix) and k.endswith(layout.MANIFEST_NAME)]
    manifest_keys = [k for k in manifest_keys if "/" not in k[len(ref.prefix) :]]  # the step's, not a checkpoint's
    winners = [r for r in results if r["outcome"] == "won"]
    losers = [r for r in results if r["outcome"] == "lost"]
    errors = [r for r in results if r["outcome"] == "error"]
    manifest = read_manifest(store, ref)
    overwrites = max(0, len(winners) - 1)
    corrupt = 0
    if winners and (manifest is None or manifest.attempt != winners[0]["attempt"]):
        overwrites += 1  # the manifest is not the one the (first) winner wrote
    if manifest is not None:
        owner = next((r["contender"] for r in winners if r["attempt"] == manifest.attempt), None)
        expected = contender_files(ref.step, owner) if owner is not None else {}
        for relpath, entry in manifest.files.items():
            try:
                data = store.get_bytes(entry.key)
            except ArtifactNotFound:
                corrupt += 1
                continue
            if sha256_bytes(data) != entry.sha256 or data != expected.get(relpath):
                corrupt += 1  # a mix of contenders' bytes, or not the winner's
    leftovers = 0
    for key in store.list(ref.prefix):
        parsed = layout.parse_run_key(ref.run, key)
        if (
            parsed.kind == "file"
            and parsed.checkpoint is None
            and (manifest is None or parsed.attempt != manifest.attempt)
        ):
            leftovers += 1
    return {
        "manifests": len(manifest_keys),
        "winners": len(winners),
        "losers": len(losers),
        "losers_clean": sum(1 for r in losers if r.get("exit_code") == 0),
        "errors": len(errors),
        "overwrites": overwrites,
        "corrupt_files": corrupt,
        "loser_leftover_objects": leftovers,
    }


def _race_threads(stores: list[Any], ref: StepRef, work: Path, barrier: bool) -> list[dict[str, Any]]:
    count = len(stores)
    gate_barrier = threading.Barrier(count, timeout=30)

    def gate(key: str, phase: str) -> None:
        if phase == "before":
            gate_barrier.wait()

    start = threading.Barrier(count, timeout=30)
    results: list[dict[str, Any]] = [
        {"contender": i, "outcome": "error", "error": "no result (thread hung)"} for i in range(count)
    ]

    def run(i: int) -> None:
        store = _GatedStore(stores[i], gate) if barrier else stores[i]
        start.wait()
        results[i] = contend(store, ref, i, work / f"{ref.step}-{i}")

    threads = [threading.Thread(target=run, args=(i,), name=f"contender-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _race_processes(spec: dict[str, Any], steps: list[str], count: int, work: Path) -> dict[str, list[dict[str, Any]]]:
    barrier = Path(tempfile.mkdtemp(prefix="barrier-", dir=work))
    procs = []
    for contender in range(count):
        worker = {
            **spec,
            "op": "race",
            "steps": steps,
            "contender": contender,
            "count": count,
            "barrier": str(barrier),
            "work": str(work / f"proc-{contender}"),
        }
        procs.append(_spawn(worker, work / "worker.log"))
    by_step: dict[str, list[dict[str, Any]]] = {step: [] for step in steps}
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=WORKER_TIMEOUT_S * 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        for line in out.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                by_step[result.pop("step")].append(result)
    for results in by_step.values():
        while len(results) < count:  # a contender that died without reporting
            results.append({"contender": -1, "outcome": "error", "error": "no result"})
    return by_step


def _entrypoint_duplicates(store: Any, store_uri: str, work: Path, endpoint: str | None) -> list[dict[str, Any]]:
    """Duplicates through the real step runtime (`run_step`, main thread only); all must exit 0.

    step 'pick': a duplicate commits while run_step computes, so run_step's commit finds the
    manifest at its first check; then the step runs again and is skipped without running its body.
    step 'pick-race': the duplicate commits just before run_step's own conditional manifest write
    (every file of run_step's attempt already uploaded), so run_step loses the write itself.
    """
    from rag_jobs.jobs.common import run_step
    from rag_jobs.strategies.graph import Graph, StepSpec

    run = RunRef("dup-entry")
    early, race = run.step("pick"), run.step("pick-race")
    graph = Graph(
        run_id=run.run_id,
        strategy="faults",
        steps=[StepSpec(name=ref.step, kind="select", config={}) for ref in (early, race)],
    )
    store.put_bytes(run.graph_key, graph.to_json().encode())
    state: dict[str, Any] = {"body": 0, "armed": False, "dup": {}, "lost_write": None}

    def duplicate(ref: StepRef) -> None:
        folder = _materialize(work / f"entry-dup-{ref.step}", contender_files(ref.step, 0))
        state["dup"][ref.step] = commit_dir(store, ref, folder).attempt

    def body(ctx: Any) -> dict[str, Any]:
        state["body"] += 1
        (ctx.out_dir / "selected.json").write_text('{"selected": "late"}')
        if ctx.spec.name == early.step:
            duplicate(early)  # the concurrent duplicate wins while this one computes
        else:
            state["armed"] = True  # ... or just before this one writes its manifest
        return {"em": 0.0}

    store_class = type(store)
    original = store_class.put_bytes_if_absent

    def put_bytes_if_absent(self: Any, key: str, data: bytes) -> bool:
        if state["armed"] and key == race.manifest_key:
            state["armed"] = False
            duplicate(race)
            created = bool(original(self, key, data))
            state["lost_write"] = not created
            return created
        return bool(original(self, key, data))

    previous = signal.getsignal(signal.SIGTERM)
    env = {"RAG_JOBS_CACHE": str(work / "cache")}
    store_class.put_bytes_if_absent = put_bytes_if_absent  # type: ignore[method-assign]
    try:
        with _env(env), aws_env(endpoint) if endpoint else contextlib.nullcontext():
            argv = ["--run", layout.run_uri(store_uri, run), "--step"]
            late = run_step("select", body, [*argv, early.step])
            again = run_step("select", body, [*argv, early.step])
            bodies_before_race = state["body"]
            raced = run_step("select", body, [*argv, race.step])
    finally:
        store_class.put_bytes_if_absent = original  # type: ignore[method-assign]
        signal.signal(signal.SIGTERM, previous)

    def lost(rc: int, ok: bool = True) -> dict[str, Any]:
        return {"outcome": "lost" if rc == 0 and ok else "error", "exit_code": rc}

    return [
        {
            "ref": early,
            "results": [
                {"contender": 0, "outcome": "won", "attempt": state["dup"].get(early.step)},
                {"contender": 1, **lost(late)},
                {"contender": 2, **lost(again, bodies_before_race == 1)},  # skipped: its body never ran
            ],
        },
        {
            "ref": race,
            "results": [
                {"contender": 0, "outcome": "won", "attempt": state["dup"].get(race.step)},
                {
                    "contender": 1,
                    **lost(raced, state["lost_write"] is True),
                    "lost_conditional_write": state["lost_write"],
                },
            ],
        },
    ]


def duplicate_execution(
    work: str | os.PathLike[str],
    endpoint: str,
    bucket: str,
    *,
    prefix: str = "dup",
    rounds: int = 3,
    contenders: int = 3,
    process_rounds: int = 2,
    entrypoint: bool = True,
) -> dict[str, Any]:
    """Commit the same step several times: sequentially, threads, processes, via run_step.

    Each backend (a local folder under `work`, and s3://bucket/<prefix>) gets: `rounds` sequential
    duplicates; `rounds` thread races held at a barrier just before the manifest write (every
    contender has uploaded its files: a true race on the conditional write); `rounds` free-running
    thread races; one set of `contenders` processes racing over `process_rounds` steps (barrier
    too); and, when `entrypoint` (main thread only), a duplicate through `run_step`.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    backends: dict[str, dict[str, Any]] = {
        "local": {"store": "local", "root": str(work / "dup-local")},
        "s3": {"store": "s3", "endpoint": endpoint, "bucket": bucket, "prefix": prefix, "max_attempts": 3},
    }
    uris = {"local": (work / "dup-local").resolve().as_uri(), "s3": f"s3://{bucket}/{prefix}"}
    checks: list[dict[str, Any]] = []
    entry_runs = entry_write_losses = 0
    run = RunRef("dup")
    for name, spec in backends.items():
        stores = [_worker_store(spec) for _ in range(contenders)]
        store = stores[0]
        scratch = work / name
        steps: list[tuple[str, StepRef, list[dict[str, Any]]]] = []
        for r in range(rounds):
            ref = run.step(f"seq-{r}")
            results = [contend(stores[i], ref, i, scratch / f"{ref.step}-{i}") for i in range(2)]
            steps.append(("sequential", ref, results))
        for r in range(rounds):
            ref = run.step(f"race-{r}")
            steps.append(("threads-barrier", ref, _race_threads(stores, ref, scratch, barrier=True)))
        for r in range(rounds):
            ref = run.step(f"free-{r}")
            steps.append(("threads-free", ref, _race_threads(stores, ref, scratch, barrier=False)))
        proc_steps = [f"proc-{r}" for r in range(process_rounds)]
        if proc_steps:
            raced = _race_processes({**spec, "run": run.run_id}, proc_steps, contenders, scratch)
            steps.extend(("processes-barrier", run.step(step), results) for step, results in raced.items())
        if entrypoint and threading.current_thread() is threading.main_thread():
            for item in _entrypoint_duplicates(store, uris[name], scratch, endpoint if name == "s3" else None):
                steps.append(("run_step", item["ref"], item["results"]))
                entry_runs += len(item["results"]) - 1
                entry_write_losses += sum(1 for r in item["results"] if r.get("lost_conditional_write"))
        for mode, ref, results in steps:
            checks.append(
                {
                    "backend": name,
                    "mode": mode,
                    "step": f"{ref.run_id}/{ref.step}",
                    **_verify_step(store, ref, results),
                    "results": results,
                }
            )
    return {
        "rounds": len(checks),
        "manifests_per_step": max(c["manifests"] for c in checks),
        "min_manifests_per_step": min(c["manifests"] for c in checks),
        "winners_per_step": max(c["winners"] for c in checks),
        "min_winners_per_step": min(c["winners"] for c in checks),
        "overwrites": sum(c["overwrites"] for c in checks),
        "corrupt_files": sum(c["corrupt_files"] for c in checks),
        "losers": sum(c["losers"] + c["errors"] for c in checks),
        "loser_exit_clean": sum(c["losers_clean"] for c in checks),
        "errors": sum(c["errors"] for c in checks),
        "loser_leftover_objects": sum(c["loser_leftover_objects"] for c in checks),
        "race_rounds": sum(1 for c in checks if c["mode"] != "sequential"),
        "entrypoint_runs": entry_runs,
        "entrypoint_conditional_write_losses": entry_write_losses,
        "checks": checks,
    }


if __name__ == "__main__" and "--worker" in sys.argv:
    sys.exit(_worker_main(sys.argv))
