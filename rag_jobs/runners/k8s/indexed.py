"""Run the grid child that this pod's completion index picks, so a grid is one Indexed Job.

    python -m rag_jobs.runners.k8s.indexed --steps a,b,c -- finetune-embed --run URI

Kubernetes sets JOB_COMPLETION_INDEX on each pod of an Indexed Job; index i runs the command
after `--` with `--step <i-th step>` appended, by exec (no shell, no extra process: signals and
the exit code reach the Job unchanged). The entrypoints need no change.
"""

from __future__ import annotations

import os
import sys

from rag_jobs.errors import EXIT_BAD_INPUT

INDEX_ENV = "JOB_COMPLETION_INDEX"


def child_argv(argv: list[str], env: dict[str, str]) -> list[str]:
    """The command this index runs; ValueError with a one-line reason on bad arguments."""
    if "--" not in argv:
        raise ValueError("usage: indexed --steps a,b,c -- COMMAND...")
    head, command = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    if len(head) != 2 or head[0] != "--steps" or not command:
        raise ValueError("usage: indexed --steps a,b,c -- COMMAND...")
    steps = [s for s in head[1].split(",") if s]
    raw = env.get(INDEX_ENV)
    if raw is None or not raw.isdigit():
        raise ValueError(f"${INDEX_ENV} must be a completion index, got {raw!r} (is this an Indexed Job?)")
    index = int(raw)
    if index >= len(steps):
        raise ValueError(f"${INDEX_ENV}={index} but only {len(steps)} steps were given: {','.join(steps)}")
    return [*command, "--step", steps[index]]


def main(argv: list[str] | None = None) -> None:
    try:
        command = child_argv(sys.argv[1:] if argv is None else argv, dict(os.environ))
    except ValueError as exc:
        print(f"indexed: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_INPUT)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
