"""SIGTERM handling: raise at once outside the training loop, at the next step boundary inside it."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from rag_jobs.errors import TransientError


class Preempted(TransientError):
    """SIGTERM (node drain, preemption, cancel): exit 1 so the Job retries and the step resumes."""


_state = {"deferred": False, "requested": False}


def _handler(signum, frame):
    if _state["deferred"]:
        _state["requested"] = True
        return
    raise Preempted("received SIGTERM (preemption or cancel); the step resumes from its last checkpoint")


def install() -> None:
    signal.signal(signal.SIGTERM, _handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside this block SIGTERM only sets a flag; the loop polls `stop_requested()` between steps."""
    _state["deferred"] = True
    try:
        yield
    finally:
        _state["deferred"] = False


def stop_requested() -> bool:
    return _state["requested"]
