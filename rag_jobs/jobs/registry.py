"""The one registry of step kinds: name -> config class, entrypoint, console script, resources, code version.

Read by the strategies (a step's config class and code version, in its hash), the local runner and the
Kubernetes renderer (the command a step runs, the resources it asks for), the CLI, and a test that checks
pyproject's console scripts. Importing it loads no model code: entrypoint modules are named, not imported.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class StepKind:
    name: str
    config: type[_Frozen]
    module: str  # the entrypoint: `python -m <module> --run URI --step NAME`, its `main()`
    script: str | None  # the console script of the container image (the five entrypoints), or None
    resources: str  # the key of the cluster config's `resources` this kind's pods ask for
    # Bump when a change alters what the step computes (a bug fix): the version is part of the step's config
    # hash, so committed steps of an older version are no longer reused by new runs.
    version: int = 1

    @property
    def target(self) -> str:
        """The `module:function` of its console script."""
        return f"{self.module}:main"


# Versions: 2 = the audit's fixes (training prompts as long as evaluation's; validation F1 by the dataset's
# rule; cached MNRL replays its dropout; joint clips each model's gradient apart). build-index 2 = it reads the
# committed corpus (the splits are their own step); training and evaluate 3 = the splits step's labels (recall
# by gold title group, unlabelled questions out of the ranking loss) and answer-recall beside recall.
# build-index 3 = index format 2 (memory-mapped passage store over the corpus' Arrow files, ids.npy,
# float16|float32 vectors); older index folders are rebuilt, not read.
STEP_KINDS: dict[str, StepKind] = {k.name: k for k in (
    StepKind("corpus", CorpusConfig, "rag_jobs.jobs.corpus", None, "corpus"),
    StepKind("splits", SplitsConfig, "rag_jobs.jobs.splits", None, "splits"),
    StepKind("build-index", BuildIndexConfig, "rag_jobs.jobs.build_index", "build-index", "build-index", version=3),
    StepKind("finetune-embed", FinetuneEmbedConfig, "rag_jobs.jobs.finetune_embed", "finetune-embed",
             "finetune-embed", version=3),
    StepKind("finetune-gen", FinetuneGenConfig, "rag_jobs.jobs.finetune_gen", "finetune-gen", "finetune-gen",
             version=3),
    StepKind("joint", JointConfig, "rag_jobs.jobs.joint", "joint", "joint", version=3),
    StepKind("score-pool", ScorePoolConfig, "rag_jobs.jobs.score_pool", None, "score-pool", version=3),
    StepKind("evaluate", EvaluateConfig, "rag_jobs.jobs.evaluate", "evaluate", "evaluate", version=3),
    StepKind("select", SelectConfig, "rag_jobs.jobs.select", None, "select"),
)}

CONSOLE_SCRIPTS = frozenset(k.script for k in STEP_KINDS.values() if k.script)


def step_kind(name: str) -> StepKind:
    try:
        return STEP_KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown step kind {name!r}; known: {', '.join(STEP_KINDS)}") from None


def step_config(kind: str, data: dict[str, Any]) -> Any:
    """A step's config from its graph.json dict, validated by its kind's config class."""
    return parse_config(step_kind(kind).config, data, where=f"the config of a {kind} step")
