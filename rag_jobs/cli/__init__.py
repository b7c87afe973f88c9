"""The `rag-jobs` command line: run a strategy locally (the embedded default) or on Kubernetes, inspect runs.

One module per command group; each registers its commands on the one typer app of `common`.
"""

from __future__ import annotations

import sys

import typer

from rag_jobs.cli import bundles, cluster, corpora, planning, runs, serving  # noqa: F401  (each registers its commands)
from rag_jobs.cli.common import DEFAULT_STORE, app, open_run, store_uri_of
from rag_jobs.cli.options import check_settings, load_settings, lrs_from_run

__all__ = ["DEFAULT_STORE", "app", "check_settings", "load_settings", "lrs_from_run", "main", "open_run",
           "store_uri_of"]


def _usage_error_line(exc: Exception) -> str:
    """A command-line usage error as one line: the message, then where to find help."""
    message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"rag-jobs: error: {message}{hint}"


def main() -> None:
    try:
        rc = app(standalone_mode=False)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Abort:
        typer.echo("rag-jobs: aborted", err=True)
        sys.exit(1)
    except typer.TyperException as exc:  # Click's usage errors: one line, exit 2
        code = int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `rag-jobs` / `rag-jobs report`: the help itself
            typer.echo(exc.format_message())  # type: ignore[attr-defined]
        else:
            typer.echo(_usage_error_line(exc), err=True)
        sys.exit(code)
    sys.exit(rc if isinstance(rc, int) else 0)
