"""The `rag-jobs` command line: run a strategy locally (the embedded default), inspect runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml

from rag_jobs.artifacts import open_store, parse_run_uri
from rag_jobs.config import parse_config
from rag_jobs.data import check_dataset_spec
from rag_jobs.errors import ConfigError, RagJobsError
from rag_jobs.jobs.common import load_graph
from rag_jobs.models import check_model_name
from rag_jobs.report import order_rows
from rag_jobs.results import collect_rows, format_table
from rag_jobs.runners.local import run_exit_code, run_graph
from rag_jobs.strategies import ALL_STRATEGIES, RunSettings, build_graph

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Fine-tune the retriever and generator of a RAG pipeline, by every strategy of the paper.")

DEFAULT_STORE = ".rag-jobs/store"


def _fail(exc: RagJobsError) -> None:
    typer.echo(f"rag-jobs: error: {exc.one_line()}", err=True)
    raise typer.Exit(exc.exit_code)


def store_uri_of(store: str) -> str:
    """A `file://` URI for a plain path (made absolute), other URIs unchanged."""
    if "://" in store:
        return store
    return "file://" + str(Path(store).expanduser().resolve())


def load_settings(config: Optional[Path], overrides: dict[str, Any]) -> RunSettings:
    """Settings from a jobs/*.yaml file (if given), then the command-line flags on top."""
    data: dict[str, Any] = {}
    if config is not None:
        if not config.exists():
            raise ConfigError(f"config file {config} does not exist")
        try:
            loaded = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {config} is not valid YAML: {str(exc).splitlines()[0]}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"config file {config} cannot be read as UTF-8 text: {why}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config} must be a mapping of settings")
        data = {k: v for k, v in loaded.items() if k not in ("strategy", "store")}
    data.setdefault("data", {})
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("dataset", "limit", "seed"):
            data["data"][key] = value
        elif key == "eval_limit":
            data.setdefault("evaluate", {})["limit"] = value
        elif key in ("train_limit", "max_steps", "batch_size"):
            data.setdefault("train", {})[key] = value
        elif key == "val_limit":
            data.setdefault("train", {}).setdefault("validation", {})["limit"] = value
        elif key == "lr_grid":
            grid = parse_lr_grid(value)
            data["embed_lr_grid"] = grid
            data["gen_lr_grid"] = grid
        else:
            data[key] = value
    return parse_config(RunSettings, data)


def parse_lr_grid(text: str) -> list[float]:
    """`1e-5,3e-5,1e-4` -> [1e-05, 3e-05, 0.0001]; ConfigError naming the bad value otherwise."""
    out = []
    for part in text.split(","):
        try:
            out.append(float(part))
        except ValueError:
            raise ConfigError(f"--lr-grid value {part.strip()!r} is not a number") from None
    return out


def lrs_from_run(run: str) -> tuple[float, float]:
    """The (embedder, generator) learning rates a finished two-phase run selected."""
    from rag_jobs.artifacts import StepRef, read_manifest

    store_uri, ref = parse_run_uri(run if "://" in run else store_uri_of(run))
    st = open_store(store_uri)
    found = []
    # phase 1 is select-phase1, or select-gen in a two-phase run with `phase1: concat`
    for steps in (("select-phase2",), ("select-phase1", "select-gen")):
        manifests = [m for m in (read_manifest(st, StepRef(ref.run_id, step)) for step in steps) if m is not None]
        if not manifests:
            raise ConfigError(f"--from-run {run}: step {steps[0]!r} is not committed (is it a finished two-phase "
                              "run?)")
        found.append(float(manifests[0].metrics["lr"]))
    return found[0], found[1]


def check_settings(settings: RunSettings) -> None:
    """Fail fast, before anything is written, on a missing data file or an unknown model name."""
    check_dataset_spec(settings.data.dataset)
    check_model_name(settings.embedder, "embedder")
    check_model_name(settings.generator, "generator")



# The options `run` and `submit` share: everything that shapes the graph.
DatasetOpt = Annotated[Optional[str], typer.Option(help="demo | hotpotqa:PATH | popqa:PATH | jsonl:DIR | hf:NAME")]
LimitOpt = Annotated[Optional[int], typer.Option(help="use at most this many questions (before splitting)")]
EvalLimitOpt = Annotated[Optional[int], typer.Option(help="evaluate at most this many test questions")]
SeedOpt = Annotated[Optional[int], typer.Option(help="split / data-order seed")]
EmbedderOpt = Annotated[Optional[str], typer.Option(help="minilm, a local path or a Hugging Face name")]
GeneratorOpt = Annotated[Optional[str], typer.Option(help="smollm2-135m, a local path or a Hugging Face name")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="auto | cpu | cuda")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="a jobs/*.yaml run specification")]
RunIdOpt = Annotated[Optional[str], typer.Option(help="run id (default: derived from strategy and settings)")]
LrGridOpt = Annotated[Optional[str], typer.Option(help="comma-separated learning rates (default: the paper's nine)")]
EmbedLrOpt = Annotated[Optional[float], typer.Option(help="fix the embedder learning rate (no grid)")]
GenLrOpt = Annotated[Optional[float], typer.Option(help="fix the generator learning rate (no grid)")]
FromRunOpt = Annotated[Optional[str], typer.Option(help="take both learning rates from a finished two-phase run")]
SelectByOpt = Annotated[Optional[str], typer.Option(help="grid selection: em (the paper; F1 breaks ties) or recall")]
TrainLimitOpt = Annotated[Optional[int], typer.Option(help="train on at most this many questions")]
ValLimitOpt = Annotated[Optional[int], typer.Option(help="score grid children on at most this many questions")]
MaxStepsOpt = Annotated[Optional[int], typer.Option(help="stop each training step after this many optimizer steps")]
BatchSizeOpt = Annotated[Optional[int], typer.Option(help="training batch size (the paper: 8)")]
Phase2PoolOpt = Annotated[Optional[int], typer.Option(
    help="cached phase 2: passages per question scored once by the frozen generator (default 2 x the training "
         "k, so 10 for k = 5; 0 = off)")]
Phase1Opt = Annotated[Optional[str], typer.Option(
    help="two-phase phase 1: rag (the paper: RAG loss over single-passage prompts) or concat (reuse the Ft. Gen. "
         "grid: the generator trained on the concatenated top-k, the prompt it is evaluated with)")]
HardNegativesOpt = Annotated[Optional[int], typer.Option(
    help="finetune-embed: per question, this many top-ranked non-gold passages as extra negatives (not in the "
         "paper; default 0 = in-batch negatives only)")]
IndexShardsOpt = Annotated[Optional[int], typer.Option(
    help="encode the corpus in this many parallel shard steps, then merge (default 1)")]
SETTING_FLAGS = ("dataset", "limit", "seed", "embedder", "generator", "device", "eval_limit", "lr_grid", "embed_lr",
                 "gen_lr", "select_by", "train_limit", "val_limit", "max_steps", "batch_size", "gpus", "phase2_pool",
                 "phase1", "hard_negatives", "index_shards")


def settings_from_flags(config: Optional[Path], flags: dict[str, Any], *, local: bool = True) -> RunSettings:
    """RunSettings from a config file and the shared flags (`--from-run` fills both learning rates).

    `local`: the data and models must be reachable from here (not so for a cluster's pods).
    """
    flags = {k: flags.get(k) for k in (*SETTING_FLAGS, "from_run")}
    from_run = flags.pop("from_run")
    if from_run is not None:
        flags["embed_lr"], flags["gen_lr"] = lrs_from_run(from_run)
    settings = load_settings(config, flags)
    if local:
        check_settings(settings)
    return settings


@app.command()
def run(
    strategy: str = typer.Argument(..., help=f"one of: {', '.join(ALL_STRATEGIES)}"),
    dataset: DatasetOpt = None,
    store: str = typer.Option(DEFAULT_STORE, help="store URI (file:///path or s3://bucket/prefix) or a folder"),
    limit: LimitOpt = None,
    eval_limit: EvalLimitOpt = None,
    seed: SeedOpt = None,
    embedder: EmbedderOpt = None,
    generator: GeneratorOpt = None,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    run_id: RunIdOpt = None,
    parallel: int = typer.Option(1, min=1, help="independent steps run at once"),
    lr_grid: LrGridOpt = None,
    embed_lr: EmbedLrOpt = None,
    gen_lr: GenLrOpt = None,
    from_run: FromRunOpt = None,
    select_by: SelectByOpt = None,
    train_limit: TrainLimitOpt = None,
    val_limit: ValLimitOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchSizeOpt = None,
    phase2_pool: Phase2PoolOpt = None,
    phase1: Phase1Opt = None,
    hard_negatives: HardNegativesOpt = None,
    index_shards: IndexShardsOpt = None,
) -> None:
    """Run a strategy's graph on this machine with a local (or S3) store."""
    try:
        settings = settings_from_flags(config, locals())
        graph = build_graph(strategy, settings, run_id)
        uri = store_uri_of(store)
        typer.echo(f"[run] {strategy}: run {graph.run_id} in {uri} ({len(graph.steps)} steps)")
        outcomes = run_graph(graph, uri, max_parallel=parallel)
        rows = collect_rows(open_store(uri), graph)
    except RagJobsError as exc:
        _fail(exc)
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
    run: str = typer.Argument(..., help="run URI: <store-uri>/runs/<run-id>"),
    grace_hours: float = typer.Option(6.0, min=0.0, help="leave anything younger alone (it may be uploading)"),
) -> None:
    """Remove what crashed steps left in a run: uncommitted attempts, incomplete uploads, temporary files."""
    from rag_jobs.artifacts import sweep_run

    try:
        store_uri, ref = parse_run_uri(run if "://" in run else store_uri_of(run))
        found = sweep_run(open_store(store_uri), ref, grace_s=grace_hours * 3600.0)
    except RagJobsError as exc:
        _fail(exc)
        return
    typer.echo(" ".join(f"{k}={v}" for k, v in found.items()))


@app.command()
def status(run: str = typer.Argument(..., help="run URI: <store-uri>/runs/<run-id>")) -> None:
    """Each step's state, duration and metrics, read from the store."""
    from rag_jobs.artifacts import StepRef, read_manifest

    try:
        store_uri, ref = parse_run_uri(store_uri_of(run) if "://" not in run else run)
        st = open_store(store_uri)
        graph = load_graph(st, ref)
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
    except RagJobsError as exc:
        _fail(exc)


@app.command()
def report(
    runs: list[str] = typer.Argument(..., help="run URIs: <store-uri>/runs/<run-id> (several are merged)"),
    out: Path = typer.Option(Path("report"), help="folder for table.md, table.csv, figure.png, lr_curves.png"),
) -> None:
    """The paper's table (Markdown + CSV), a Figure-2-style PNG and the learning-rate curves."""
    from rag_jobs.report import markdown_table, order_rows, write_report

    try:
        loaded = []
        for run_arg in runs:
            store_uri, ref = parse_run_uri(run_arg if "://" in run_arg else store_uri_of(run_arg))
            st = open_store(store_uri)
            loaded.append((st, load_graph(st, ref)))
        paths = write_report(loaded, out)
        rows = order_rows([r for st, g in loaded for r in collect_rows(st, g)])
    except RagJobsError as exc:
        _fail(exc)
        return
    typer.echo(markdown_table(rows))
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


# --- Kubernetes: submit, drive, logs, cancel ----------------------------------------------------------------


def _k8s_run(run: str):
    """(store, RunRef, graph) of a run URI."""
    store_uri, ref = parse_run_uri(run if "://" in run else store_uri_of(run))
    st = open_store(store_uri)
    return st, ref, load_graph(st, ref)


def _k8s_cluster(cluster_config: Optional[Path], namespace: Optional[str]):
    from rag_jobs.runners.k8s.config import load_cluster_config

    cluster = load_cluster_config(cluster_config)
    return cluster.model_copy(update={"namespace": namespace}) if namespace else cluster


@app.command()
def submit(
    strategy: str = typer.Argument(..., help=f"one of: {', '.join(ALL_STRATEGIES)}"),
    store: str = typer.Option(..., help="the run's store: s3://bucket/prefix (pods must reach it)"),
    cluster_config: Optional[Path] = typer.Option(None, help="YAML ClusterConfig: namespace, image, GPUs, S3"),
    namespace: Optional[str] = typer.Option(None, help="override the cluster config's namespace"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print every Job as YAML; touch neither cluster nor store"),
    wait: bool = typer.Option(False, "--wait", help="follow the run until it is complete or failed"),
    dataset: DatasetOpt = None,
    limit: LimitOpt = None,
    eval_limit: EvalLimitOpt = None,
    seed: SeedOpt = None,
    embedder: EmbedderOpt = None,
    generator: GeneratorOpt = None,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    run_id: RunIdOpt = None,
    lr_grid: LrGridOpt = None,
    embed_lr: EmbedLrOpt = None,
    gen_lr: GenLrOpt = None,
    from_run: FromRunOpt = None,
    select_by: SelectByOpt = None,
    train_limit: TrainLimitOpt = None,
    val_limit: ValLimitOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchSizeOpt = None,
    phase2_pool: Phase2PoolOpt = None,
    phase1: Phase1Opt = None,
    hard_negatives: HardNegativesOpt = None,
    index_shards: IndexShardsOpt = None,
    gpus: Optional[int] = typer.Option(None, help="GPUs per training step (several: torchrun in one pod)"),
) -> None:
    """Run a strategy on Kubernetes: upload graph.json, start the in-cluster driver (one Job per step)."""
    from rag_jobs.runners.k8s.render import render, render_driver_job, to_yaml

    try:
        settings = settings_from_flags(config, locals(), local=False)
        graph = build_graph(strategy, settings, run_id)
        cluster = _k8s_cluster(cluster_config, namespace)
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
        _fail(exc)


@app.command()
def drive(
    run: str = typer.Argument(..., help="run URI: <store-uri>/runs/<run-id>"),
    cluster_config: Optional[Path] = typer.Option(None, help="YAML ClusterConfig (default: $RAG_JOBS_CLUSTER_CONFIG)"),
    poll: float = typer.Option(15.0, min=0.1, help="seconds between reconcile passes"),
) -> None:
    """The in-cluster driver: create each step's Job once its inputs are committed (restartable)."""
    from rag_jobs.runners.k8s.driver import drive as drive_run
    from rag_jobs.runners.k8s.submit import KubeApi

    try:
        st, _ref, graph = _k8s_run(run)
        cluster = _k8s_cluster(cluster_config, None)
        code = drive_run(graph, st, KubeApi(cluster.namespace), cluster, poll_s=poll)
    except RagJobsError as exc:
        _fail(exc)
        return
    if code:
        raise typer.Exit(code)


@app.command()
def logs(
    run: str = typer.Argument(..., help="run URI: <store-uri>/runs/<run-id>"),
    step: str = typer.Argument(..., help="step name (a grid child too), or 'driver'"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing while the step runs"),
    cluster_config: Optional[Path] = typer.Option(None, help="YAML ClusterConfig (for its namespace)"),
    namespace: Optional[str] = typer.Option(None, help="override the cluster config's namespace"),
) -> None:
    """The log of a step's newest pod."""
    from rag_jobs.runners.k8s.driver import step_logs
    from rag_jobs.runners.k8s.submit import KubeApi

    try:
        _st, _ref, graph = _k8s_run(run)
        cluster = _k8s_cluster(cluster_config, namespace)
        for line in step_logs(graph, step, KubeApi(cluster.namespace), follow=follow):
            typer.echo(line)
    except RagJobsError as exc:
        _fail(exc)


@app.command()
def cancel(
    run: str = typer.Argument(..., help="run URI: <store-uri>/runs/<run-id>"),
    cluster_config: Optional[Path] = typer.Option(None, help="YAML ClusterConfig (for its namespace)"),
    namespace: Optional[str] = typer.Option(None, help="override the cluster config's namespace"),
) -> None:
    """Mark the run cancelled and delete its Jobs (driver first; pods go in the background)."""
    from rag_jobs.runners.k8s.driver import cancel_run
    from rag_jobs.runners.k8s.submit import KubeApi

    try:
        store_uri, ref = parse_run_uri(run if "://" in run else store_uri_of(run))
        cluster = _k8s_cluster(cluster_config, namespace)
        deleted = cancel_run(ref, open_store(store_uri), KubeApi(cluster.namespace))
    except RagJobsError as exc:
        _fail(exc)
        return
    typer.echo(f"[cancel] run {ref.run_id}: deleted {len(deleted)} Jobs" + (f": {', '.join(deleted)}" if deleted
                                                                               else ""))


@app.command()
def serve(
    index: str = typer.Option(..., "--index", help="index folder, or <store-uri>/runs/<run-id>/build-index"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8080, help="TCP port"),
    token_file: Optional[Path] = typer.Option(
        None, "--token-file", help="file holding the bearer token (else $RAG_JOBS_INDEX_TOKEN[_FILE])"),
    no_auth: bool = typer.Option(False, "--no-auth", help="serve without a token beyond 127.0.0.1 (explicitly)"),
    max_batch: int = typer.Option(256, help="query vectors per request"),
    max_k: int = typer.Option(1000, help="results per query"),
    max_in_flight: int = typer.Option(64, help="concurrent requests before answering 503"),
) -> None:
    """Serve an index over HTTP (the index service; `helm/index-service` deploys it)."""
    from rag_jobs.index.service import read_token
    from rag_jobs.index.service import serve as run_service

    try:
        token = None if no_auth else read_token(token_file)
        run_service(index, host=host, port=port, token=token, no_auth=no_auth, max_batch=max_batch, max_k=max_k,
                    max_in_flight=max_in_flight)
    except RagJobsError as exc:
        _fail(exc)




def _workload(dataset: Optional[str], settings_k: int, *, train_questions: Optional[int], passages: Optional[int],
              context_labels: str, known_lrs: bool, grid: int, pool: int, split: tuple[float, float, float]):
    """The planner's workload from a dataset (counted, token lengths approximated) and the overriding flags."""
    from rag_jobs.data import load_dataset
    from rag_jobs.planning import Workload

    stats = {"train": 0, "validation": 0, "test": 0, "passages": 0}
    tokens = {}
    labelled = context_labels == "yes"
    if dataset is not None:
        check_dataset_spec(dataset)
        ds = load_dataset(dataset)
        n = len(ds.examples)
        stats = {"train": int(n * split[0]), "validation": int(n * split[1]), "test": n - int(n * split[0])
                 - int(n * split[1]), "passages": len(ds.corpus)}

        def mean_tokens(texts) -> float:  # about 1.3 tokens per word for English subword vocabularies
            texts = list(texts)[:2000]
            return 1.3 * sum(len(t.split()) for t in texts) / max(len(texts), 1)

        tokens = {"passage_tokens": mean_tokens(p.content for p in ds.corpus),
                  "question_tokens": 60.0 + mean_tokens(e.question for e in ds.examples),
                  "answer_tokens": 1.0 + mean_tokens(e.answers[0] for e in ds.examples)}
        if context_labels == "auto":
            labelled = ds.has_context_labels
    elif context_labels == "auto":
        raise ConfigError("--context-labels auto needs --dataset; say yes or no")
    if train_questions is not None:
        total = train_questions / split[0]
        stats.update(train=train_questions, validation=int(total * split[1]), test=int(total * split[2]))
    if passages is not None:
        stats["passages"] = passages
    if stats["train"] <= 0 or stats["passages"] <= 0:
        raise ConfigError("the workload is empty: give --dataset, or --train-questions and --passages")
    return Workload(**stats, **tokens, k=settings_k, grid=grid, pool=pool, has_context_labels=labelled,
                    known_lrs=known_lrs)


def _gpus(spec: str) -> tuple[int, str]:
    """`8xA10` -> (8, 'A10'); `4` -> (4, '')."""
    count, _, name = spec.partition("x")
    try:
        n = int(count)
    except ValueError:
        raise ConfigError(f"--gpus {spec!r}: expected COUNTxNAME such as 8xA10, or a count") from None
    if n <= 0:
        raise ConfigError(f"--gpus {spec!r}: the count must be positive")
    return n, name


@app.command()
def plan(
    dataset: DatasetOpt = None,
    context_labels: str = typer.Option("auto", help="yes | no | auto (from the dataset)"),
    known_lrs: bool = typer.Option(False, "--known-lrs", help="the learning rates are known (no grid needed)"),
    gpus: str = typer.Option("1", help="devices the run gets, e.g. 8xA10 (wall hours = device-hours / count)"),
    profile: Optional[Path] = typer.Option(None, help="a profile JSON (from --measure) of the target device"),
    measure: bool = typer.Option(False, "--measure", help="measure this machine's throughputs first (~1 min)"),
    save_profile_to: Optional[Path] = typer.Option(None, "--save-profile", help="write the measured profile"),
    embedder: str = typer.Option("minilm", help="embedder to measure"),
    generator: str = typer.Option("smollm2-135m", help="generator to measure"),
    device: str = typer.Option("auto", help="device to measure on"),
    train_questions: Optional[int] = typer.Option(None, min=1, help="override: training questions"),
    passages: Optional[int] = typer.Option(None, min=1, help="override: corpus size (e.g. 29900000)"),
    k: int = typer.Option(5, min=1, help="documents per question"),
    grid: int = typer.Option(9, min=1, help="learning rates per grid (the paper: 9)"),
    pool: Optional[int] = typer.Option(None, min=1, help="cached phase 2: passages scored per question "
                                       "(default 2 x k, as `run`)"),
    paper: bool = typer.Option(False, "--paper", help="add the paper's measured HotPotQA hours for comparison"),
) -> None:
    """Recommend a strategy (the paper's conclusions) and estimate each strategy's device-hours."""
    from rag_jobs.planning import format_plan
    from rag_jobs.profiling import load_profile, measure_profile, save_profile

    try:
        if context_labels not in ("yes", "no", "auto"):
            raise ConfigError(f"--context-labels {context_labels!r}: choose yes, no or auto")
        n_gpus, gpu_name = _gpus(gpus)
        work = _workload(dataset, k, train_questions=train_questions, passages=passages,
                         context_labels=context_labels, known_lrs=known_lrs, grid=grid,
                         pool=pool if pool is not None else 2 * k,
                         split=RunSettings().data.split)
        if measure:
            check_model_name(embedder, "embedder")
            check_model_name(generator, "generator")
            prof = measure_profile(embedder, generator, device=device)
            if save_profile_to is not None:
                save_profile(prof, save_profile_to)
        elif profile is not None:
            prof = load_profile(profile)
        else:
            raise ConfigError("give --profile FILE (a measured profile of the target device) or --measure")
    except RagJobsError as exc:
        _fail(exc)
        return
    typer.echo(format_plan(work, prof, gpus=n_gpus, paper=paper))
    if gpu_name and gpu_name.lower() not in prof.device.lower():
        typer.echo(f"\nnote: the profile was measured on {prof.device!r}, not {gpu_name!r}: the hours are those of "
                   f"the profile's device; measure on the target with `rag-jobs plan --measure --save-profile`.")


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


if __name__ == "__main__":
    main()
