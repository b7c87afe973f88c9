"""`rag-jobs corpus pull SPEC`: commit a corpus to a store once (e.g. MedRAG's 29.9M Wikipedia chunks), so
every later run, here or in the cluster, reuses it by content instead of reading the source again."""

from __future__ import annotations

from typing import Optional

import typer

from rag_jobs.cli.common import DEFAULT_STORE, app, fail, store_uri_of
from rag_jobs.cli.options import load_settings
from rag_jobs.config import DataConfig
from rag_jobs.errors import RagJobsError

corpus_app = typer.Typer(help="corpora: commit one to a store (pull)", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command()
def pull(
    spec: str = typer.Argument(..., help=DataConfig.model_fields["corpus"].description),
    store: str = typer.Option(DEFAULT_STORE, help="store URI (file:///path or s3://bucket/prefix) or a folder"),
    chunk_size: Optional[int] = typer.Option(None, help=DataConfig.model_fields["chunk_size"].description),
    chunk_overlap: Optional[int] = typer.Option(None, help=DataConfig.model_fields["chunk_overlap"].description),
    shard_rows: Optional[int] = typer.Option(None, min=1,
                                             help=DataConfig.model_fields["corpus_shard_rows"].description),
) -> None:
    """Normalise a corpus into the store (Arrow shards + counts); a run with `--corpus SPEC` then reuses it."""
    from rag_jobs.artifacts import open_store
    from rag_jobs.corpus import check_corpus_spec
    from rag_jobs.runners.local import run_exit_code, run_graph
    from rag_jobs.strategies import build_graph

    try:
        check_corpus_spec(spec)
        flags = {"corpus": spec, "chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
        sets = [f"data.corpus_shard_rows={shard_rows}"] if shard_rows else []
        settings = load_settings(None, flags, sets, command="run")
        graph = build_graph("corpus", settings)
        uri = store_uri_of(store)
        typer.echo(f"[corpus] {spec}: run {graph.run_id} in {uri}")
        outcomes = run_graph(graph, uri, in_process=True)
        code = run_exit_code(outcomes)
        if code:
            raise typer.Exit(code)
        from rag_jobs.artifacts import StepRef, read_manifest

        m = read_manifest(open_store(uri), StepRef(graph.run_id, "corpus"))
    except RagJobsError as exc:
        fail(exc)
        return
    got = m.metrics
    typer.echo(f"corpus: {got['rows']:,} passages, {got['titles']:,} titles, {got['shards']} shard(s) of up to "
               f"{got['shard_rows']:,} rows, {got['dropped_empty']:,} empty dropped")
    typer.echo(f"run: {uri}/runs/{graph.run_id}")
