"""The small error hierarchy shared by every entrypoint.

Exit codes are a contract with the Kubernetes Job's podFailurePolicy:
2 = bad input or bad config (retrying cannot help: fail the Job at once),
1 = transient fault (worth a retry).
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2
EXIT_TRANSIENT = 1


class RagJobsError(Exception):
    """Base class: every error rag-jobs raises on purpose carries an exit code."""

    exit_code: int = EXIT_TRANSIENT

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        return f"{type(self).__name__}: {text}" if text else type(self).__name__


class UserError(RagJobsError):
    """Bad input the user can fix: retrying will not help."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(UserError):
    """An invalid configuration value (the message names the field and the value)."""


class DataError(UserError):
    """A malformed dataset, record or corpus."""


class ModelError(UserError):
    """An unknown model name, a missing or corrupt weights file."""


class StoreError(UserError):
    """A store that cannot be reached, read or written with the given settings."""


class IntegrityError(UserError):
    """An artifact whose bytes do not match its manifest (corrupt, truncated or tampered)."""


class AlreadyCommitted(RagJobsError):
    """Another attempt committed this step first; the caller should exit cleanly."""

    exit_code = 0


class TransientError(RagJobsError):
    """A fault that may pass (network, preemption): exit 1 so the Job retries."""

    exit_code = EXIT_TRANSIENT
