"""What every command shares: the app, the one-line error exit, store URIs and opening a run."""

from __future__ import annotations

from pathlib import Path

import typer

from rag_jobs.artifacts import open_store, parse_run_uri
from rag_jobs.errors import RagJobsError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Fine-tune the retriever and generator of a RAG pipeline, by every strategy of the paper.")

DEFAULT_STORE = ".rag-jobs/store"


def fail(exc: RagJobsError) -> None:
    typer.echo(f"rag-jobs: error: {exc.one_line()}", err=True)
    raise typer.Exit(exc.exit_code)


def store_uri_of(store: str) -> str:
    """A `file://` URI for a plain path (made absolute), other URIs unchanged."""
    if "://" in store:
        return store
    return "file://" + str(Path(store).expanduser().resolve())


def open_run(run: str):
    """(store, RunRef) of a run given as `<store-uri>/runs/<run-id>` or as a local folder path."""
    store_uri, ref = parse_run_uri(store_uri_of(run))
    return open_store(store_uri), ref


def open_run_graph(run: str):
    """(store, RunRef, graph) of a run: its graph.json read from the store."""
    from rag_jobs.jobs.common import load_graph

    store, ref = open_run(run)
    return store, ref, load_graph(store, ref)


RunArg = typer.Argument(..., help="run URI: <store-uri>/runs/<run-id>")

__all__ = ["DEFAULT_STORE", "RunArg", "app", "fail", "open_run", "open_run_graph", "store_uri_of"]
