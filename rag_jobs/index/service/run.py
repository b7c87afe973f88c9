"""The index service: a loaded FAISS index behind HTTP (FastAPI, served by uvicorn).

Running it: the bearer token (`read_token`), `serve` (uvicorn) and `main`, the entrypoint of
`python -m rag_jobs.index.service` (its --help shows this docstring's first line).
"""

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Any

from rag_jobs.errors import ConfigError, RagJobsError
from rag_jobs.index.service.app import create_app
from rag_jobs.index.service.constants import (
    DEFAULT_MAX_ANSWERS_QUEUED,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_IDS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_K,
    DEFAULT_MAX_QUESTION_CHARS,
    DEFAULT_PORT,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
)

log = logging.getLogger("rag_jobs.index.service")

# ---------------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------------


def read_token(token_file: "str | os.PathLike[str] | None" = None, env: "dict[str, str] | None" = None) -> "str | None":
    """The bearer token: from `token_file`, else $RAG_JOBS_INDEX_TOKEN, else the file $RAG_JOBS_INDEX_TOKEN_FILE."""
    env = os.environ if env is None else env
    path = token_file
    if path is None:
        value = (env.get(TOKEN_ENV) or "").strip()
        if value:
            return value
        path = env.get(TOKEN_FILE_ENV) or None
        if path is None:
            return None
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"token file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    if not value:
        raise ConfigError(f"token file {str(path)!r} is empty")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    index: "str | None" = None,
    *,
    pipeline: "str | None" = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: "str | None" = None,
    no_auth: bool = False,
    log_level: str = "info",
    **limits: Any,
) -> None:
    """Run the service with uvicorn until SIGINT/SIGTERM. Without a token the service refuses to listen
    beyond the loopback interface unless `no_auth` says so explicitly."""
    import uvicorn

    if token is None and not no_auth and not _is_loopback(host):
        raise ConfigError(f"no token for a service listening on {host}: give --token-file, set {TOKEN_ENV} "
                          f"or {TOKEN_FILE_ENV}, or pass --no-auth")
    if token is not None and no_auth:
        raise ConfigError("--no-auth contradicts the token that was given")
    if not 0 < port < 65536:
        raise ConfigError(f"port must be in 1..65535, got {port}")
    if pipeline is not None:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise ConfigError(f"--pipeline {pipeline} needs torch and the models: run the rag-jobs-pipeline image "
                              "(the index-service image has no torch)")
    app = create_app(index, pipeline=pipeline, token=token, **limits)  # a bad index or bundle fails here
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if token is None:
        log.warning("authentication is OFF: anyone who can reach %s:%d can query the index", host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False,
                timeout_graceful_shutdown=10, proxy_headers=False)


def _env_int(env: "dict[str, str]", name: str, default: "int | None") -> "int | None":
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def main(argv: "list[str] | None" = None, env: "dict[str, str] | None" = None) -> int:
    """`python -m rag_jobs.index.service`: the container's entrypoint (no typer, no torch needed).
    Every flag defaults to an environment variable (RAG_JOBS_INDEX, RAG_JOBS_INDEX_MAX_BATCH, ...), which
    is how the Helm chart's ConfigMap configures it."""
    env = dict(os.environ if env is None else env)
    try:
        defaults = {name: _env_int(env, f"RAG_JOBS_INDEX_{name.upper()}", value) for name, value in (
            ("port", DEFAULT_PORT), ("max_batch", DEFAULT_MAX_BATCH), ("max_k", DEFAULT_MAX_K),
            ("max_ids", DEFAULT_MAX_IDS), ("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
            ("max_in_flight", DEFAULT_MAX_IN_FLIGHT), ("search_threads", None),
            ("max_question_chars", DEFAULT_MAX_QUESTION_CHARS), ("max_answers_queued", DEFAULT_MAX_ANSWERS_QUEUED))}
    except ConfigError as exc:
        print(f"index-service: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    ap = argparse.ArgumentParser(prog="python -m rag_jobs.index.service", description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=env.get("RAG_JOBS_INDEX") or None,
                    help="index folder, or <store-uri>/runs/<run-id>/build-index (env RAG_JOBS_INDEX)")
    ap.add_argument("--pipeline", default=env.get("RAG_JOBS_PIPELINE") or None,
                    help="a bundle of rag-jobs export (folder or store prefix): also answer questions at "
                         "/v1/answer; the index defaults to the bundle's (env RAG_JOBS_PIPELINE)")
    ap.add_argument("--pipeline-device", default=env.get("RAG_JOBS_PIPELINE_DEVICE", "auto"),
                    help="where the pipeline's models run: auto, cpu, cuda[:N] (env RAG_JOBS_PIPELINE_DEVICE)")
    ap.add_argument("--host", default=env.get("RAG_JOBS_INDEX_HOST", "127.0.0.1"),
                    help="interface to listen on (0.0.0.0 in a container)")
    ap.add_argument("--port", type=int, default=defaults["port"])
    ap.add_argument("--token-file", default=None, help=f"file holding the bearer token (else ${TOKEN_ENV})")
    ap.add_argument("--no-auth", action="store_true", help="serve without a token (explicitly)")
    ap.add_argument("--max-batch", type=int, default=defaults["max_batch"])
    ap.add_argument("--max-k", type=int, default=defaults["max_k"])
    ap.add_argument("--max-ids", type=int, default=defaults["max_ids"])
    ap.add_argument("--max-body-bytes", type=int, default=defaults["max_body_bytes"])
    ap.add_argument("--max-in-flight", type=int, default=defaults["max_in_flight"])
    ap.add_argument("--search-threads", type=int, default=defaults["search_threads"])
    ap.add_argument("--max-question-chars", type=int, default=defaults["max_question_chars"])
    ap.add_argument("--max-answers-queued", type=int, default=defaults["max_answers_queued"])
    ap.add_argument("--log-level", default=env.get("RAG_JOBS_INDEX_LOG_LEVEL", "info"),
                    choices=["debug", "info", "warning", "error"])
    args = ap.parse_args(argv)
    if not args.index and not args.pipeline:
        ap.error("--index (or RAG_JOBS_INDEX) or --pipeline (or RAG_JOBS_PIPELINE) is required")
    try:
        token = None if args.no_auth else read_token(args.token_file, env)
        extra = {} if not args.pipeline else {"pipeline_device": args.pipeline_device}
        serve(args.index, pipeline=args.pipeline, host=args.host, port=args.port, token=token, no_auth=args.no_auth,
              log_level=args.log_level, max_batch=args.max_batch, max_k=args.max_k, max_ids=args.max_ids,
              max_body_bytes=args.max_body_bytes, max_in_flight=args.max_in_flight,
              search_threads=args.search_threads, max_question_chars=args.max_question_chars,
              max_answers_queued=args.max_answers_queued, **extra)
    except RagJobsError as exc:
        print(f"index-service: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    return 0

