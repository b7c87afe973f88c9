"""`rag-jobs serve`: the index service."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rag_jobs.cli.common import app, fail
from rag_jobs.errors import ConfigError, RagJobsError


@app.command()
def serve(
    index: Optional[str] = typer.Option(None, "--index", help="index folder, or <store-uri>/runs/<run-id>/build-index "
                                        "(with --pipeline: defaults to the bundle's index)"),
    pipeline: Optional[str] = typer.Option(None, "--pipeline", help="a bundle of rag-jobs export (folder or store "
                                           "prefix): also answer questions at POST /v1/answer"),
    device: str = typer.Option("auto", "--device", help="where the pipeline's models run: auto, cpu, cuda[:N]"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8080, help="TCP port"),
    token_file: Optional[Path] = typer.Option(
        None, "--token-file", help="file holding the bearer token (else $RAG_JOBS_INDEX_TOKEN[_FILE])"),
    no_auth: bool = typer.Option(False, "--no-auth", help="serve without a token beyond 127.0.0.1 (explicitly)"),
    max_batch: int = typer.Option(256, help="query vectors per request"),
    max_k: int = typer.Option(1000, help="results per query"),
    max_in_flight: int = typer.Option(64, help="concurrent requests before answering 503"),
    max_answers_queued: int = typer.Option(8, help="with --pipeline: answers waiting for the generator before "
                                           "answering 503"),
    max_question_chars: int = typer.Option(2000, help="with --pipeline: characters of one question"),
) -> None:
    """Serve an index over HTTP (the index service; `helm/index-service` deploys it), and with --pipeline
    answer questions with an exported bundle."""
    from rag_jobs.index.service import read_token
    from rag_jobs.index.service import serve as run_service

    if index is None and pipeline is None:
        fail(ConfigError("give --index or --pipeline"))
    try:
        token = None if no_auth else read_token(token_file)
        extra = {"pipeline_device": device, "max_answers_queued": max_answers_queued,
                 "max_question_chars": max_question_chars} if pipeline else {}
        run_service(index, pipeline=pipeline, host=host, port=port, token=token, no_auth=no_auth,
                    max_batch=max_batch, max_k=max_k, max_in_flight=max_in_flight, **extra)
    except RagJobsError as exc:
        fail(exc)
