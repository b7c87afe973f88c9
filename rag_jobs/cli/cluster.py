"""Kubernetes commands: submit a strategy, the in-cluster driver, logs, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rag_jobs.artifacts import open_store
from rag_jobs.cli.common import RunArg, app, fail, open_run, open_run_graph, store_uri_of
from rag_jobs.cli.options import SettingsInput, with_settings
from rag_jobs.cli.runs import StrategyArg
from rag_jobs.errors import ConfigError, RagJobsError
from rag_jobs.strategies import build_graph

ClusterConfigOpt = typer.Option(None, help="YAML ClusterConfig (for its namespace)")
NamespaceOpt = typer.Option(None, help="override the cluster config's namespace")


def _cluster(cluster_config: Optional[Path], namespace: Optional[str]):
    from rag_jobs.runners.k8s.config import load_cluster_config

    cluster = load_cluster_config(cluster_config)
    return cluster.model_copy(update={"namespace": namespace}) if namespace else cluster


@app.command()
@with_settings("submit")
def submit(
    strategy: str = StrategyArg,
    store: str = typer.Option(..., help="the run's store: s3://bucket/prefix (pods must reach it)"),
    cluster_config: Optional[Path] = typer.Option(None, help="YAML ClusterConfig: namespace, image, GPUs, S3"),
    namespace: Optional[str] = NamespaceOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="print every Job as YAML; touch neither cluster nor store"),
    wait: bool = typer.Option(False, "--wait", help="follow the run until it is complete or failed"),
    run_id: Optional[str] = typer.Option(None, help="run id (default: derived from strategy and settings)"),
    *,
    settings: SettingsInput,
) -> None:
    """Run a strategy on Kubernetes: upload graph.json, start the in-cluster driver (one Job per step)."""
    from rag_jobs.runners.k8s.render import render, render_driver_job, to_yaml

    try:
        graph = build_graph(strategy, settings.settings(local=False), run_id)
        cluster = _cluster(cluster_config, namespace)
        if graph.settings.get("track") == "mlflow" and not cluster.mlflow_tracking_uri:
            raise ConfigError("--track mlflow needs the cluster config's mlflow_tracking_uri: a pod's own "
                              "./mlruns is deleted with the pod")
        uri = store_uri_of(store)
        if dry_run:
            typer.echo(to_yaml([*render(graph, cluster, uri), render_driver_job(graph, cluster, uri)]), nl=False)
            return
        from rag_jobs.runners.k8s.submit import KubeApi, check_store, submit_run, wait_run

        check_store(uri)
        st = open_store(uri)
        api = KubeApi(cluster.namespace)
        driver = submit_run(graph, cluster, st, api)
        typer.echo(f"[submit] {strategy}: run {graph.run_id} ({len(graph.steps)} steps), driver Job {driver} "
                   f"in namespace {cluster.namespace}")
        typer.echo(f"run: {uri}/runs/{graph.run_id}")
        if wait:
            code = wait_run(graph, st, api)
            if code:
                raise typer.Exit(code)
    except RagJobsError as exc:
        fail(exc)


@app.command()
def drive(
    run: str = RunArg,
    cluster_config: Optional[Path] = typer.Option(None, help="YAML ClusterConfig (default: $RAG_JOBS_CLUSTER_CONFIG)"),
    poll: float = typer.Option(15.0, min=0.1, help="seconds between reconcile passes"),
) -> None:
    """The in-cluster driver: create each step's Job once its inputs are committed (restartable)."""
    from rag_jobs.runners.k8s.driver import drive as drive_run
    from rag_jobs.runners.k8s.submit import KubeApi

    try:
        st, _ref, graph = open_run_graph(run)
        cluster = _cluster(cluster_config, None)
        code = drive_run(graph, st, KubeApi(cluster.namespace), cluster, poll_s=poll)
    except RagJobsError as exc:
        fail(exc)
        return
    if code:
        raise typer.Exit(code)


@app.command()
def logs(
    run: str = RunArg,
    step: str = typer.Argument(..., help="step name (a grid child too), or 'driver'"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing while the step runs"),
    cluster_config: Optional[Path] = ClusterConfigOpt,
    namespace: Optional[str] = NamespaceOpt,
) -> None:
    """The log of a step's newest pod."""
    from rag_jobs.runners.k8s.driver import step_logs
    from rag_jobs.runners.k8s.submit import KubeApi

    try:
        _st, _ref, graph = open_run_graph(run)
        cluster = _cluster(cluster_config, namespace)
        for line in step_logs(graph, step, KubeApi(cluster.namespace), follow=follow):
            typer.echo(line)
    except RagJobsError as exc:
        fail(exc)


@app.command()
def cancel(
    run: str = RunArg,
    cluster_config: Optional[Path] = ClusterConfigOpt,
    namespace: Optional[str] = NamespaceOpt,
) -> None:
    """Mark the run cancelled and delete its Jobs (driver first; pods go in the background)."""
    from rag_jobs.runners.k8s.driver import cancel_run
    from rag_jobs.runners.k8s.submit import KubeApi

    try:
        st, ref = open_run(run)
        cluster = _cluster(cluster_config, namespace)
        deleted = cancel_run(ref, st, KubeApi(cluster.namespace))
    except RagJobsError as exc:
        fail(exc)
        return
    typer.echo(f"[cancel] run {ref.run_id}: deleted {len(deleted)} Jobs" + (f": {', '.join(deleted)}" if deleted
                                                                               else ""))
