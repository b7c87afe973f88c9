"""Commands over runs in a store: run a strategy here, sweep, status, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from rag_jobs.artifacts import open_store
from rag_jobs.cli.common import DEFAULT_STORE, RunArg, app, fail, open_run, open_run_graph, store_uri_of
from rag_jobs.cli.options import SettingsInput, with_settings
from rag_jobs.errors import ConfigError, RagJobsError
from rag_jobs.report import collect_rows, format_table, order_rows
from rag_jobs.strategies import ALL_STRATEGIES, build_graph

StrategyArg = typer.Argument(..., help=f"one of: {', '.join(ALL_STRATEGIES)}")


@app.command()
@with_settings("run")
def run(
    strategy: str = StrategyArg,
    store: str = typer.Option(DEFAULT_STORE, help="store URI (file:///path or s3://bucket/prefix) or a folder"),
    run_id: Optional[str] = typer.Option(None, help="run id (default: derived from strategy and settings)"),
    parallel: int = typer.Option(1, min=1, help="independent steps run at once"),
    in_process: bool = typer.Option(False, "--in-process", help="run each step's entrypoint in this process, one "
                                    "at a time (no per-step start-up: small runs, debugging); by default every "
                                    "step is its own process, as on Kubernetes"),
    *,
    settings: SettingsInput,
) -> None:
    """Run a strategy's graph on this machine with a local (or S3) store."""
    from rag_jobs.runners.local import run_exit_code, run_graph

    try:
        if in_process and parallel > 1:
            raise ConfigError(f"--in-process runs one step at a time: drop --parallel {parallel}")
        graph = build_graph(strategy, settings.settings(), run_id)
        if graph.settings.get("track") == "mlflow":
            from rag_jobs.training.tracking import check_mlflow_server

            check_mlflow_server()  # here, before any step: not after an hour of index building
        uri = store_uri_of(store)
        typer.echo(f"[run] {strategy}: run {graph.run_id} in {uri} ({len(graph.steps)} steps)")
        outcomes = run_graph(graph, uri, max_parallel=parallel, in_process=in_process)
        rows = collect_rows(open_store(uri), graph)
    except RagJobsError as exc:
        fail(exc)
        return
    typer.echo("")
    typer.echo(format_table(order_rows(rows)) if rows else "(no results)")
    typer.echo(f"\nrun: {uri}/runs/{graph.run_id}")
    code = run_exit_code(outcomes)
    if code:
        for o in outcomes.values():
            if o.state == "failed":
                detail = o.error or f"exit code {o.exit_code}"
                typer.echo(f"rag-jobs: error: step {o.name} failed: {detail}", err=True)
        raise typer.Exit(code)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@app.command()
def sweep(
    run: str = RunArg,
    grace_hours: float = typer.Option(6.0, min=0.0, help="leave anything younger alone (it may be uploading)"),
) -> None:
    """Remove what crashed steps left in a run: uncommitted attempts, incomplete uploads, temporary files."""
    from rag_jobs.artifacts import sweep_run

    try:
        st, ref = open_run(run)
        found = sweep_run(st, ref, grace_s=grace_hours * 3600.0)
    except RagJobsError as exc:
        fail(exc)
        return
    typer.echo(" ".join(f"{k}={v}" for k, v in found.items()))


@app.command()
def status(run: str = RunArg) -> None:
    """Each step's state, duration and metrics, read from the store."""
    from rag_jobs.artifacts import StepRef, read_manifest

    try:
        st, ref, graph = open_run_graph(run)
        typer.echo(f"{'step':34s} {'kind':15s} {'state':10s} {'time':>9s}  metrics")
        for s in graph.topo_order():
            m = read_manifest(st, StepRef(ref.run_id, s.name))
            state = "committed" if m else "pending"
            wall = f"{m.wall_s:.1f}s" if m and m.wall_s is not None else "-"
            shown = ""
            if m is not None:
                keys = ("em", "f1", "recall", "val_em", "val_f1", "val_recall", "lr", "selected")
                shown = " ".join(f"{k}={_short(m.metrics[k])}" for k in keys if m.metrics.get(k) is not None)
            typer.echo(f"{s.name:34s} {s.kind:15s} {state:10s} {wall:>9s}  {shown}")
            noise = (m.metrics.get("noise") or {}) if m is not None else {}
            if noise.get("verdict"):
                typer.echo(f"{'':34s} {'':15s} {'':10s} {'':>9s}  {noise['verdict']}")
    except RagJobsError as exc:
        fail(exc)


@app.command()
def report(
    runs: list[str] = typer.Argument(..., help="run URIs: <store-uri>/runs/<run-id> (several are merged)"),
    out: Path = typer.Option(Path("report"), help="folder for table.md, table.csv, figure.png, lr_curves.png"),
) -> None:
    """The paper's table (Markdown + CSV), a Figure-2-style PNG and the learning-rate curves."""
    from rag_jobs.report import markdown_table, selection_verdicts, write_report

    try:
        loaded = [open_run_graph(run_arg) for run_arg in runs]
        pairs = [(st, graph) for st, _ref, graph in loaded]
        paths = write_report(pairs, out)
        rows = order_rows([r for st, g in pairs for r in collect_rows(st, g)])
    except RagJobsError as exc:
        fail(exc)
        return
    typer.echo(markdown_table(rows))
    for name, verdict in (v for st, g in pairs for v in selection_verdicts(st, g).items()):
        typer.echo(f"{name}: {verdict}")
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
