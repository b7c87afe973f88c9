"""The little of the Kubernetes API that rag-jobs uses, as a protocol: `submit.KubeApi` is the real one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class JobInfo:
    """A Job as the driver sees it. state: active (not finished), succeeded, or failed (for good)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    state: str = "active"
    message: str = ""  # the Failed condition's reason and message
    suspended: bool = False  # spec.suspend: waiting for Kueue to admit it (or preempted by it); still pending

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


@dataclass(frozen=True)
class PodInfo:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    created: str = ""  # RFC 3339: sorts by time
    phase: str = ""


class ClusterApi(Protocol):
    """Jobs and their pods in ONE namespace (the implementation is bound to it)."""

    def create_job(self, manifest: dict[str, Any]) -> bool:
        """Create the Job; False (and no error) when a Job of that name exists already."""
        ...

    def list_jobs(self, labels: dict[str, str]) -> list[JobInfo]:
        """The Jobs carrying every one of these labels."""
        ...

    def delete_job(self, name: str) -> None:
        """Delete a Job and (in the background) its pods; no error when it is gone already."""
        ...

    def list_pods(self, labels: dict[str, str]) -> list[PodInfo]:
        ...

    def pod_logs(self, pod: str, *, follow: bool = False) -> Iterator[str]:
        """The pod's log lines (following it while it runs, when asked)."""
        ...
