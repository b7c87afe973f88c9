"""The `_MANIFEST.json` that commits a step or a checkpoint (a step's config hash is graph.canonical_hash)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag_jobs import __version__
from rag_jobs.errors import ConfigError, IntegrityError

IMAGE_ENV = "RAG_JOBS_IMAGE"


class FileEntry(BaseModel):
    """One committed file: its digest, its size and where it lives in the store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    key: str


class DeviceInfo(BaseModel):
    """What the step ran on: kind (e.g. 'cpu', 'NVIDIA H100') and accelerator count (0 on CPU)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "cpu"
    count: int = Field(default=0, ge=0)


class CommitMeta(BaseModel):
    """What the caller knows about a step when committing it; the rest is filled in by commit.

    started_at defaults to the start of the commit, finished_at to its end, and wall_s to
    finished_at - started_at (pass the step's own compute time to leave the upload out).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict)
    config_hash: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    wall_s: float | None = Field(default=None, ge=0)
    device: DeviceInfo = Field(default_factory=DeviceInfo)
    metrics: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("started_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Naive times are taken as UTC, so they can be compared with the commit's clock."""
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class Manifest(BaseModel):
    """The commit record of a step (or of one of its checkpoints)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal[1] = 1
    run_id: str
    step: str
    checkpoint: int | None = None
    attempt: str
    files: dict[str, FileEntry] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    config_hash: str = ""
    version: str = __version__
    image: str | None = None
    started_at: datetime
    finished_at: datetime
    committed_at: datetime | None = None
    wall_s: float = Field(ge=0)
    device: DeviceInfo = Field(default_factory=DeviceInfo)
    metrics: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def total_size(self) -> int:
        """Bytes over all files."""
        return sum(entry.size for entry in self.files.values())

    @property
    def accelerator_hours(self) -> float:
        """wall_s x accelerator count, in hours."""
        return self.wall_s * self.device.count / 3600.0

    def to_json(self) -> bytes:
        """Serialise (indented, UTF-8)."""
        return self.model_dump_json(indent=2).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "manifest") -> Manifest:
        """Parse; IntegrityError naming `source` if the bytes are not a valid manifest."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise IntegrityError(f"{source} is corrupt: {_first_error(exc)}") from exc


def as_commit_meta(meta: CommitMeta | Mapping[str, Any] | None) -> CommitMeta:
    """Accept a CommitMeta, a plain mapping of its fields, or None; ConfigError if invalid."""
    if meta is None:
        return CommitMeta()
    if isinstance(meta, CommitMeta):
        return meta
    try:
        return CommitMeta.model_validate(dict(meta))
    except (ValidationError, TypeError, ValueError) as exc:
        raise ConfigError(f"invalid commit metadata: {_first_error(exc)}") from exc


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "document"
        return f"{where}: {' '.join(str(first.get('msg', '')).split())}"
    return " ".join(str(exc).split())


def current_image() -> str | None:
    """The container image this process runs in, from RAG_JOBS_IMAGE (None when unset)."""
    return os.environ.get(IMAGE_ENV) or None
