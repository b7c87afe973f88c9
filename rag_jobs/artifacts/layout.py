"""The key layout of a store: the ONE module that knows key strings.

```
runs/<run>/graph.json                                         the run's graph
runs/<run>/<step>/_MANIFEST.json                              commit marker of the step (written last)
runs/<run>/<step>/<attempt>/<relpath>                         files of one commit attempt
runs/<run>/<step>/checkpoints/<n:08d>/_MANIFEST.json          commit marker of checkpoint n
runs/<run>/<step>/checkpoints/<n:08d>/<attempt>/<relpath>     files of one checkpoint attempt
steps/<config-hash>.json                                      which run first committed a step of that hash
```

A checkpoint is laid out exactly like a step, one folder deeper, so one commit protocol serves
both, and pruning checkpoint n is deleting one folder. An attempt id is 24 hex digits: the start
time (8 hex digits of Unix seconds) then 16 random ones, so concurrent attempts never share a
folder and a sweeper can tell an old leftover from an upload still in flight.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from rag_jobs.artifacts.store import validate_key
from rag_jobs.errors import ConfigError

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_NAME_RE = re.compile(NAME_PATTERN)
_ATTEMPT_RE = re.compile(r"^[0-9a-f]{24}$")
_CHECKPOINT_RE = re.compile(r"^[0-9]{8}$")

RUNS = "runs"
GRAPH_NAME = "graph.json"
MANIFEST_NAME = "_MANIFEST.json"
CHECKPOINTS = "checkpoints"
MAX_CHECKPOINT = 10**8 - 1
FAILED_NAME = "_FAILED.json"  # the run's failure marker (the Kubernetes driver writes it once)

# Folder and file names inside a step's outputs, shared by the steps that write and the steps that read them.
EMBEDDER_DIR = "embedder"  # a fine-tuned sentence-transformers model
ADAPTER_DIR = "adapter"  # a LoRA adapter (peft)
SPLITS_FILE = "splits.jsonl"  # the question splits, committed with the index
POOL_TENSORS = "pool.safetensors"  # the score pool of cached phase 2
POOL_META = "pool.json"
VALIDATION_FILE = "validation.jsonl"  # a grid child's per-question validation scores (the selection's noise check)
_RESERVED_STEPS = frozenset({GRAPH_NAME})


def validate_name(value: object, *, field: str) -> str:
    """Return `value` if it is a valid run id / step name, else raise ConfigError naming `field`."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ConfigError(f"{field} must match {NAME_PATTERN} (lower case, at most 63 chars), got {value!r}")
    return value


def new_attempt_id(now: float | None = None) -> str:
    """A fresh attempt id: 8 hex digits of Unix time, then 16 random hex digits."""
    seconds = int(time.time() if now is None else now)
    return f"{seconds & 0xFFFFFFFF:08x}{secrets.token_hex(8)}"


def is_attempt_id(value: str) -> bool:
    """Whether `value` has the shape of an attempt id."""
    return bool(_ATTEMPT_RE.fullmatch(value))


def attempt_started(attempt: str) -> float:
    """The Unix time (whole seconds) at which the attempt started."""
    if not is_attempt_id(attempt):
        raise ValueError(f"not an attempt id: {attempt!r}")
    return float(int(attempt[:8], 16))


@dataclass(frozen=True)
class RunRef:
    """A run in a store."""

    run_id: str

    def __post_init__(self) -> None:
        validate_name(self.run_id, field="run id")

    @property
    def prefix(self) -> str:
        """The folder of the run, with a trailing '/'."""
        return f"{RUNS}/{self.run_id}/"

    @property
    def graph_key(self) -> str:
        """Key of the run's graph.json."""
        return f"{RUNS}/{self.run_id}/{GRAPH_NAME}"

    def step(self, name: str) -> StepRef:
        """The step `name` of this run."""
        return StepRef(self.run_id, name)


class _Committed:
    """What a step and a checkpoint share: one folder (their `prefix`) of attempt folders, a manifest beside them."""

    @property
    def manifest_key(self) -> str:
        """Key of the commit marker."""
        return f"{self.prefix}{MANIFEST_NAME}"

    def attempt_prefix(self, attempt: str) -> str:
        """The folder of one commit attempt, with a trailing '/'."""
        return f"{self.prefix}{_checked_attempt(attempt)}/"

    def file_key(self, attempt: str, relpath: str) -> str:
        """Key of file `relpath` of one commit attempt."""
        return self.attempt_prefix(attempt) + validate_key(relpath, what="file path")


@dataclass(frozen=True)
class StepRef(_Committed):
    """One step of a run; its files live in attempt folders, its manifest beside them."""

    run_id: str
    step: str

    def __post_init__(self) -> None:
        validate_name(self.run_id, field="run id")
        validate_name(self.step, field="step name")
        if self.step in _RESERVED_STEPS:
            raise ConfigError(f"step name {self.step!r} is reserved")

    @property
    def run(self) -> RunRef:
        """The run this step belongs to."""
        return RunRef(self.run_id)

    @property
    def prefix(self) -> str:
        """The folder of the step, with a trailing '/'."""
        return f"{RUNS}/{self.run_id}/{self.step}/"

    @property
    def checkpoints_prefix(self) -> str:
        """The folder holding every checkpoint of the step, with a trailing '/'."""
        return f"{self.prefix}{CHECKPOINTS}/"

    def checkpoint(self, n: int) -> CheckpointRef:
        """Checkpoint number `n` of this step."""
        return CheckpointRef(self, n)

    def describe(self) -> str:
        """Human-readable name for messages."""
        return f"step {self.step!r} of run {self.run_id!r}"


@dataclass(frozen=True)
class CheckpointRef(_Committed):
    """Checkpoint `n` (0 <= n < 10**8) of a step; laid out like a step, one folder deeper."""

    step_ref: StepRef
    n: int

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 0 <= self.n <= MAX_CHECKPOINT:
            raise ConfigError(f"checkpoint number must be an integer in [0, {MAX_CHECKPOINT}]: {self.n!r}")

    @property
    def run_id(self) -> str:
        """The run id of the step."""
        return self.step_ref.run_id

    @property
    def step(self) -> str:
        """The step name."""
        return self.step_ref.step

    @property
    def prefix(self) -> str:
        """The folder of this checkpoint, with a trailing '/'."""
        return f"{self.step_ref.checkpoints_prefix}{self.n:08d}/"

    def describe(self) -> str:
        """Human-readable name for messages."""
        return f"checkpoint {self.n} of {self.step_ref.describe()}"


def _checked_attempt(attempt: str) -> str:
    if not is_attempt_id(attempt):
        raise ConfigError(f"attempt id must be 24 hex digits, got {attempt!r}")
    return attempt


@dataclass(frozen=True)
class ParsedKey:
    """What a key under `runs/<run>/` is (see `parse_run_key`)."""

    kind: Literal["graph", "manifest", "file", "other"]
    step: str | None = None
    checkpoint: int | None = None
    attempt: str | None = None
    relpath: str | None = None


def parse_run_key(run: RunRef, key: str) -> ParsedKey:
    """Classify a key of `run`: its graph, a step/checkpoint manifest or attempt file, or other."""
    if not key.startswith(run.prefix):
        return ParsedKey("other")
    parts = key[len(run.prefix) :].split("/")
    if parts == [GRAPH_NAME]:
        return ParsedKey("graph")
    if len(parts) < 2 or not _NAME_RE.fullmatch(parts[0]) or parts[0] in _RESERVED_STEPS:
        return ParsedKey("other")
    step, rest = parts[0], parts[1:]
    checkpoint: int | None = None
    if rest[0] == CHECKPOINTS:
        if len(rest) < 3 or not _CHECKPOINT_RE.fullmatch(rest[1]):
            return ParsedKey("other")
        checkpoint, rest = int(rest[1]), rest[2:]
    if rest == [MANIFEST_NAME]:
        return ParsedKey("manifest", step=step, checkpoint=checkpoint)
    if len(rest) >= 2 and is_attempt_id(rest[0]):
        return ParsedKey("file", step, checkpoint, rest[0], "/".join(rest[1:]))
    return ParsedKey("other", step=step, checkpoint=checkpoint)


STEP_INDEX = "steps"
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def step_index_key(config_hash: str) -> str:
    """The store-wide record of the step that first committed with this config hash (cross-run reuse reads one
    key instead of listing every run)."""
    if not _HASH_RE.match(config_hash):
        raise ConfigError(f"config hash {config_hash!r} is not 64 hex digits")
    return f"{STEP_INDEX}/{config_hash}.json"


def run_uri(store_uri: str, run: RunRef) -> str:
    """The URI of a run: `<store-uri>/runs/<run-id>`."""
    return f"{store_uri.rstrip('/')}/{RUNS}/{run.run_id}"


def parse_run_uri(uri: str) -> tuple[str, RunRef]:
    """Split `<store-uri>/runs/<run-id>` into (store URI, RunRef); ConfigError if malformed."""
    if not isinstance(uri, str):
        raise ConfigError(f"run URI must be a string, got {uri!r}")
    text = uri.rstrip("/")
    head, sep, run_id = text.rpartition(f"/{RUNS}/")
    if not sep:
        if not text.startswith(f"{RUNS}/"):
            raise ConfigError(f"run URI must look like <store-uri>/{RUNS}/<run-id>, got {uri!r}")
        head, run_id = ".", text[len(RUNS) + 1 :]
    if "/" in run_id or not _NAME_RE.fullmatch(run_id):
        raise ConfigError(f"run URI {uri!r}: run id must match {NAME_PATTERN}, got {run_id!r}")
    if head.endswith(":/"):  # "s3://runs/x": 'runs' is the bucket or host, not a folder
        raise ConfigError(f"run URI must look like <store-uri>/{RUNS}/<run-id>, got {uri!r}")
    if head == "" or head.endswith("://"):  # "/runs/x" or "file:///runs/x": the store is "/"
        head += "/"
    return head, RunRef(run_id)
