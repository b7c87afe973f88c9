"""Each strategy of the paper as a graph of steps (pure data: nothing here runs a model)."""

from __future__ import annotations

from typing import Any

from rag_jobs.config import (
    BuildIndexConfig,
    CorpusConfig,
    EvaluateConfig,
    FinetuneEmbedConfig,
    FinetuneGenConfig,
    JointConfig,
    ScorePoolConfig,
    SelectConfig,
    SplitsConfig,
    _Frozen,
    parse_config,
)
from rag_jobs.errors import ConfigError
from rag_jobs.jobs.registry import step_kind
from rag_jobs.strategies.graph import Graph, StepSpec, canonical_hash
from rag_jobs.strategies.settings import PAPER_LR_GRID, RunSettings

__all__ = ["ALL_STRATEGIES", "PAPER_LR_GRID", "STRATEGIES", "RunSettings", "build_graph", "lr_tag"]


def _dump(cfg: _Frozen) -> dict[str, Any]:
    """A step config as graph.json holds it: only the values that differ from the defaults, so adding a field
    (at a default that keeps today's behaviour) leaves every earlier step's config hash as it was."""
    return cfg.model_dump(mode="json", exclude_defaults=True)


def lr_tag(lr: float) -> str:
    """A step-name tag that names the learning rate exactly: the fewest mantissa digits that read back equal
    (1e-05 -> lr-1e-05, 1.5e-05 -> lr-1.5e-05), so nearby rates of a grid never share a name."""
    for digits in range(17):
        text = f"{lr:.{digits}e}"
        if float(text) == lr:
            break
    return f"lr-{text}".replace("+", "")


class _Builder:
    """Builds the steps of one or more strategies, sharing steps by name."""

    def __init__(self, s: RunSettings):
        self.s = s
        self.steps: dict[str, StepSpec] = {}

    def add(self, spec: StepSpec) -> str:
        known = self.steps.setdefault(spec.name, spec)
        if known != spec:  # strategies share a step by name only when they would compute the same thing
            raise ConfigError(f"two different steps are both named {spec.name!r}")
        return spec.name

    def corpus(self) -> str:
        """The passages to index: --corpus, and/or the datasets' own passages (without --corpus, or with
        --corpus-with-dataset-passages). Shared across runs by the content of a local source."""
        d = self.s.data
        source = d.corpus or ""
        datasets: tuple[str, ...] = ()
        if not source or d.corpus_with_dataset_passages:
            datasets = tuple(x for x in (d.dataset, d.validation_dataset, d.test_dataset) if x)
        cfg = parse_config(CorpusConfig, {"source": source, "source_digest": local_digest(source), "datasets": datasets,
                                          "chunk_size": d.chunk_size, "chunk_overlap": d.chunk_overlap,
                                          "max_passage_chars": d.max_passage_chars, "shard_rows": d.corpus_shard_rows},
                           where="the corpus step")
        return self.add(StepSpec("corpus", "corpus", _dump(cfg)))

    def splits(self) -> str:
        """The questions of each split with their labels; apart from the index, so one index serves them all."""
        d = self.s.data
        cfg = parse_config(SplitsConfig, {"dataset": d.dataset, "validation_dataset": d.validation_dataset,
                                          "test_dataset": d.test_dataset, "limit": d.limit, "seed": d.seed,
                                          "split": d.split,
                                          "derive_labels": bool(d.corpus) and not d.corpus_with_dataset_passages},
                           where="the splits step")
        return self.add(StepSpec("splits", "splits", _dump(cfg), {"corpus": self.corpus()}))

    def data(self) -> dict[str, str]:
        """The inputs every step over questions takes: the index, the corpus it keeps its passages in, and the
        splits."""
        return {"index": self.index(), "corpus": self.corpus(), "splits": self.splits()}

    def index(self) -> str:
        s = self.s
        encode = {"embedder": s.embedder, "device": s.device, "shards": s.index_shards}
        base = {**encode, "index_factory": s.index_factory, "seed": s.data.seed,
                "search_params": s.index_search_params, "vectors": s.index_vectors}
        corpus = {"corpus": self.corpus()}
        inputs = {}
        if s.index_shards > 1:  # each shard encodes one slice of the corpus; build-index merges them
            for i in range(s.index_shards):  # shards see only what changes their vectors: any index type reuses them
                shard = parse_config(BuildIndexConfig, {**encode, "shard": i})
                inputs[f"shard-{i:03d}"] = self.add(StepSpec(f"index-shard.{i:03d}", "build-index", _dump(shard),
                                                             corpus, gpus=1))
        cfg = parse_config(BuildIndexConfig, base)
        return self.add(StepSpec("build-index", "build-index", _dump(cfg), {**corpus, **inputs},
                                 gpus=0 if inputs else 1))

    def evaluate(self, name: str, label: str, **inputs: str) -> str:
        s = self.s
        cfg = parse_config(EvaluateConfig, {"generator": s.generator, "quantization": s.quantization,
                                            "device": s.device, **s.evaluate.values()}, where="the evaluate step")
        return self.add(StepSpec(name, "evaluate", _dump(cfg), {**self.data(), **inputs}, gpus=1,
                                 label=label))

    def _train_cfg(self, model: type[_Frozen], **values: Any) -> dict:
        """A training (or score-pool) step's config: the run's models and device, the `train:` overrides this
        kind knows, then what the graph sets (`values`)."""
        s = self.s
        train = {k: v for k, v in s.train.values().items() if k in model.model_fields}
        val = {"select_by": s.select_by, **train.pop("validation", {})}
        base = {"generator": s.generator, "quantization": s.quantization, "device": s.device, "seed": s.data.seed}
        return _dump(parse_config(model, {**base, **train, "validation": val, **values},
                                  where=f"a {model.__name__} step"))

    def grid(self, prefix: str, kind: str, model: type[_Frozen], lr_field: str, lrs, select: str,
             inputs: dict[str, str], **extra: Any) -> str:
        """One child per learning rate (`lr_field` of the child's config), and the selection over them."""
        children = {}
        if len(set(lrs)) != len(lrs):
            raise ConfigError(f"the {prefix} learning-rate grid repeats a value: {list(lrs)}")
        for i, lr in enumerate(lrs):
            name = f"{prefix}.{lr_tag(lr)}"
            self.add(StepSpec(name, kind, self._train_cfg(model, **{lr_field: lr}, **extra),
                              {**self.data(), **inputs}, gpus=self.s.gpus))
            children[f"child-{i:02d}"] = name
        cfg = parse_config(SelectConfig, {"select_by": self.s.select_by, "role": prefix})
        return self.add(StepSpec(select, "select", _dump(cfg), children, needs="any"))

    def embed_grid(self) -> str:
        return self.grid("finetune-embed", "finetune-embed", FinetuneEmbedConfig, "lr", self.s.embed_grid(),
                         "select-embed", {}, hard_negatives=self.s.hard_negatives)

    def gen_grid(self) -> str:
        return self.grid("finetune-gen", "finetune-gen", FinetuneGenConfig, "lr", self.s.gen_grid(), "select-gen",
                         {})

    def two_phase(self) -> tuple[str, str]:
        if self.s.phase1 == "concat":  # the generator of Ft. Gen.: trained on the prompt it is evaluated with
            phase1 = self.gen_grid()
        else:
            phase1 = self.grid("phase1-gen", "joint", JointConfig, "gen_lr", self.s.gen_grid(), "select-phase1",
                               {}, train="generator")
        inputs = {"generator": phase1}
        pool = self.s.phase2_pool
        if pool is None:  # twice the passages a training step reads: few fall outside, the pool stays small
            pool = 2 * self.s.train_k()
        if pool:
            cfg = self._train_cfg(ScorePoolConfig, pool=pool)
            # one process, on the kind of device the children use (a GPU's nf4 scores would not be the CPU's)
            inputs["pool"] = self.add(StepSpec("phase2-pool", "score-pool", cfg, {**self.data(), **inputs},
                                               gpus=min(1, self.s.gpus)))
        phase2 = self.grid("phase2-embed", "joint", JointConfig, "embed_lr", self.s.embed_grid(), "select-phase2",
                           inputs, train="embedder")
        return phase1, phase2

    def joint(self, loss: str, from_two_phase: bool) -> str:
        name = f"joint-{loss}"
        if from_two_phase:
            phase1, phase2 = self.two_phase()
            cfg = self._train_cfg(JointConfig, train="both", loss=loss, lrs_from_inputs=True)
            inputs = {**self.data(), "lr-embedder": phase2, "lr-generator": phase1}
        else:
            if self.s.embed_lr is None or self.s.gen_lr is None:
                raise ConfigError(f"rag-{loss} needs both learning rates: --embed-lr and --gen-lr, or --from-run "
                                  "<a finished two-phase run> (as the paper takes them from two-phase)")
            cfg = self._train_cfg(JointConfig, train="both", loss=loss, embed_lr=self.s.embed_lr,
                                  gen_lr=self.s.gen_lr)
            inputs = self.data()
        return self.add(StepSpec(name, "joint", cfg, inputs, gpus=self.s.gpus))


def _corpus(b: _Builder, in_compare: bool = False) -> None:
    b.corpus()


def _index(b: _Builder, in_compare: bool = False) -> None:
    b.index()


def _baseline(b: _Builder, in_compare: bool = False) -> None:
    b.evaluate("evaluate", "No Ft.")


def _ft_embed(b: _Builder, in_compare: bool = False) -> None:
    b.evaluate("evaluate-ft-embed", "Ft. Embed.", embedder=b.embed_grid())


def _ft_gen(b: _Builder, in_compare: bool = False) -> None:
    b.evaluate("evaluate-ft-gen", "Ft. Gen.", generator=b.gen_grid())


def _independent(b: _Builder, in_compare: bool = False) -> None:
    b.evaluate("evaluate-independent", "Indp.", embedder=b.embed_grid(), generator=b.gen_grid())


def _two_phase(b: _Builder, in_compare: bool = False) -> None:
    phase1, phase2 = b.two_phase()
    b.evaluate("evaluate-two-phase", "2-Phase", embedder=phase2, generator=phase1)


def _rag(loss: str, label: str):
    def build(b: _Builder, in_compare: bool = False) -> None:
        joint = b.joint(loss, from_two_phase=in_compare)
        b.evaluate(f"evaluate-rag-{loss}", label, embedder=joint, generator=joint)

    return build


STRATEGIES = {
    "corpus": _corpus,  # only the corpus (`rag-jobs corpus pull`: a team commits a large corpus once)
    "index": _index,  # only the index (for the index service, or to share it with later runs)
    "baseline": _baseline,
    "ft-embed": _ft_embed,
    "ft-gen": _ft_gen,
    "independent": _independent,
    "two-phase": _two_phase,
    "rag-sequence": _rag("sequence", "RAG-Seq."),
    "rag-token": _rag("token", "RAG-Tok."),
}
COMPARE_ORDER = ["baseline", "ft-embed", "ft-gen", "independent", "two-phase", "rag-sequence", "rag-token"]
ALL_STRATEGIES = [*STRATEGIES, "compare"]


def local_digest(source: str) -> str | None:
    """The content hash of a corpus source whose files are here; None for a hub dataset or for files only the
    cluster's pods see (the step is then keyed by the spec)."""
    if not source:
        return None
    from pathlib import Path

    from rag_jobs.corpus.sources import parse_corpus_spec, source_digest

    spec = parse_corpus_spec(source)
    if spec.kind == "hf" or not Path(spec.arg).expanduser().exists():
        return None
    return source_digest(source)


def build_graph(strategy: str, settings: RunSettings, run_id: str | None = None) -> Graph:
    """The graph of a strategy; the default run id is derived from the strategy and the step configs."""
    b = _Builder(settings)
    if strategy == "compare":
        for name in COMPARE_ORDER:
            STRATEGIES[name](b, in_compare=True)
    elif strategy in STRATEGIES:
        STRATEGIES[strategy](b)
    else:
        raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(ALL_STRATEGIES)}")
    steps = list(b.steps.values())
    if run_id is None:
        digest = canonical_hash({"strategy": strategy, "steps": [[s.name, s.kind, step_kind(s.kind).version, s.config,
                                                                   s.inputs] for s in steps]})
        run_id = f"{strategy}-{digest[:10]}"
    return Graph(run_id=run_id, strategy=strategy, steps=steps, settings=settings.model_dump(mode="json"))
