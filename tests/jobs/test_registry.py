"""The registry of step kinds is the one list: pyproject's console scripts, the entrypoint modules, the
resources the cluster config knows and the graphs' step kinds all agree with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import tomllib

from rag_jobs.errors import ConfigError
from rag_jobs.jobs.registry import STEP_KINDS, step_config, step_kind
from rag_jobs.runners.k8s.config import DEFAULT_RESOURCES
from rag_jobs.strategies import ALL_STRATEGIES, RunSettings, build_graph

REPO = Path(__file__).resolve().parents[2]


def test_pyproject_scripts_are_the_registry_s():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    expected = {k.script: k.target for k in STEP_KINDS.values() if k.script}
    assert {name: target for name, target in scripts.items() if name != "rag-jobs"} == expected
    assert scripts["rag-jobs"] == "rag_jobs.cli:main"


@pytest.mark.parametrize("kind", sorted(STEP_KINDS))
def test_each_kind_has_an_entrypoint_and_resources(kind):
    spec = step_kind(kind)
    assert importlib.util.find_spec(spec.module) is not None
    assert spec.resources in DEFAULT_RESOURCES
    assert spec.version >= 1


def test_every_step_of_every_strategy_is_a_registered_kind():
    settings = RunSettings(embed_lr=1e-5, gen_lr=1e-4)
    for strategy in ALL_STRATEGIES:
        for step in build_graph(strategy, settings).steps:
            step_config(step.kind, step.config)  # its own kind's class validates it


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown step kind .train.*score-pool"):
        step_kind("train")
