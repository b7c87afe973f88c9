"""`rag-jobs plan`: recommend a strategy and estimate each strategy's device-hours."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rag_jobs.cli.common import app, fail
from rag_jobs.config import DataConfig
from rag_jobs.errors import ConfigError, RagJobsError
from rag_jobs.strategies import RunSettings


def corpus_size(spec: str, store: str) -> dict:
    """The committed corpus of `spec` in `store` (found by its step hash: `rag-jobs corpus pull` made it): its
    manifest's counts, read without loading a passage."""
    from rag_jobs.artifacts import open_store
    from rag_jobs.artifacts.step_index import find_step
    from rag_jobs.cli.common import store_uri_of
    from rag_jobs.cli.options import load_settings
    from rag_jobs.corpus import check_corpus_spec
    from rag_jobs.strategies import build_graph

    check_corpus_spec(spec)
    graph = build_graph("corpus", load_settings(None, {"corpus": spec}, command="run"))
    m = find_step(open_store(store_uri_of(store)), graph.step_hash("corpus"))
    if m is None:
        raise ConfigError(f"--corpus {spec}: not committed in {store}; run `rag-jobs corpus pull {spec} --store "
                          f"{store}` first, or give --passages N")
    return m.metrics


def _workload(dataset: Optional[str], settings_k: int, *, train_questions: Optional[int], passages: Optional[int],
              context_labels: str, known_lrs: bool, grid: int, pool: int, split: tuple[float, float, float],
              corpus: Optional[dict] = None):
    """The planner's workload from a dataset (counted, token lengths approximated) and the overriding flags."""
    from rag_jobs.data import check_dataset_spec, load_dataset
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
    if corpus is not None:  # about 4 characters per subword token in English
        stats["passages"] = int(corpus["rows"])
        tokens["passage_tokens"] = float(corpus["mean_chars"]) / 4.0
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
    dataset: Optional[str] = typer.Option(None, help=DataConfig.model_fields["dataset"].description),
    corpus: Optional[str] = typer.Option(None, help="size the corpus from its committed manifest in --store "
                                         "(rows, mean length) without loading it: " +
                                         str(DataConfig.model_fields["corpus"].description)),
    store: str = typer.Option(".rag-jobs/store", help="the store holding the committed corpus of --corpus"),
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
    from rag_jobs.planning import format_plan, load_profile, measure_profile, save_profile

    try:
        if context_labels not in ("yes", "no", "auto"):
            raise ConfigError(f"--context-labels {context_labels!r}: choose yes, no or auto")
        n_gpus, gpu_name = _gpus(gpus)
        work = _workload(dataset, k, train_questions=train_questions, passages=passages,
                         context_labels=context_labels, known_lrs=known_lrs, grid=grid,
                         pool=pool if pool is not None else 2 * k,
                         split=RunSettings().data.split, corpus=corpus_size(corpus, store) if corpus else None)
        if measure:
            from rag_jobs.models import check_model_name

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
        fail(exc)
        return
    typer.echo(format_plan(work, prof, gpus=n_gpus, paper=paper))
    if gpu_name and gpu_name.lower() not in prof.device.lower():
        typer.echo(f"\nnote: the profile was measured on {prof.device!r}, not {gpu_name!r}: the hours are those of "
                   f"the profile's device; measure on the target with `rag-jobs plan --measure --save-profile`.")
