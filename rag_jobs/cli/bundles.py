"""`rag-jobs export` and `rag-jobs ask`: a finished run's strategy as a deployable bundle, and answers from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rag_jobs.cli.common import RunArg, app, fail, open_run_graph
from rag_jobs.errors import DataError, RagJobsError


@app.command()
def export(
    run: str = RunArg,
    out: str = typer.Option(..., "--out", help="a new local folder for the bundle, or a store prefix "
                            "(s3://bucket/bundles/name; bundle.json is uploaded last)"),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="which strategy of the run (its row label, "
                                           "e.g. 2-Phase, or its name, e.g. two-phase); needed when it has several"),
    merge: bool = typer.Option(False, "--merge", help="also merge the LoRA adapter into the base in 16-bit"),
) -> None:
    """Export one strategy of a finished run: embedder (query/document routes), adapter, prompt, card."""
    from rag_jobs.bundle import export_to

    try:
        store, _ref, graph = open_run_graph(run)
        desc = export_to(store, graph, out, strategy=strategy, merge=merge)
    except RagJobsError as exc:
        fail(exc)
    m = desc["metrics"]
    typer.echo(f"exported {desc['strategy']} of run {graph.run_id} to {out} ({desc['bytes'] / 1e6:.1f} MB): "
               f"EM {100 * (m['em'] or 0):.1f} F1 {100 * (m['f1'] or 0):.1f} on {m['n']} {m['split']} questions")


@app.command()
def ask(
    bundle: str = typer.Argument(..., help="a bundle (a folder or store prefix from rag-jobs export), or a "
                                 "finished run (<store-uri>/runs/<run-id>: its strategy is exported into the "
                                 "cache first)"),
    question: Optional[str] = typer.Argument(None, help="the question (or --questions FILE)"),
    questions: Optional[Path] = typer.Option(None, "--questions", help="a JSONL file of {\"question\": ...} rows, "
                                             "answered together (as evaluate batches them)"),
    k: Optional[int] = typer.Option(None, "--k", min=1, max=100, help="passages retrieved (default: the run's k)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per question on stdout"),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="for a run: which of its strategies"),
) -> None:
    """Answer with a bundle: the tuned query encoder, the run's index, the tuned generator and the paper's prompt."""
    from rag_jobs.bundle import Pipeline

    try:
        texts = _questions(question, questions)
        rows = Pipeline(_bundle_of(bundle, strategy)).ask(texts, k)
    except RagJobsError as exc:
        fail(exc)
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
            continue
        typer.echo(f"Q: {row['question']}\nA: {row['answer']}")
        for s in row["sources"]:
            typer.echo(f"   {s['score']:.3f}  {s['title'] or s['id']}")


def _bundle_of(spec: str, strategy: str | None) -> Path:
    """A bundle folder as given, a store bundle fetched into the cache, or a run's strategy exported once into
    the cache (reused next time)."""
    from rag_jobs.bundle import BUNDLE_FILE, open_bundle
    from rag_jobs.bundle import export as do_export
    from rag_jobs.models.generator import cache_dir

    if (Path(spec) / BUNDLE_FILE).is_file():
        return Path(spec)
    if "/runs/" not in spec.replace("\\", "/"):
        if "://" in spec:
            return open_bundle(spec)
        raise DataError(f"{spec} is neither a bundle folder (no {BUNDLE_FILE}) nor <store-uri>/runs/<run-id>")
    store, _ref, graph = open_run_graph(spec)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{graph.run_id}-{strategy or 'default'}")
    folder = cache_dir() / "bundles" / safe
    if not (folder / BUNDLE_FILE).is_file():
        do_export(store, graph, folder, strategy=strategy)
    return folder


def _questions(question: str | None, path: Path | None) -> list[str]:
    if (question is None) == (path is None):
        raise DataError("give a question or --questions FILE (one of them)")
    if question is not None:
        if not question.strip():
            raise DataError("the question is empty")
        return [question]
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"--questions {path}: {exc}") from exc
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)["question"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"--questions {path} line {i}: not a JSON object with a 'question' ({exc})") from exc
        if not isinstance(q, str) or not q.strip():
            raise DataError(f"--questions {path} line {i}: 'question' must be a non-empty string")
        out.append(q)
    if not out:
        raise DataError(f"--questions {path} holds no question")
    return out
