"""What every entrypoint shares: argument parsing, the step context, the commit, the exit-code contract."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag_jobs import __version__, interrupts
from rag_jobs.artifacts import (
    RunRef,
    StepRef,
    commit_dir,
    fetch_manifest,
    open_store,
    parse_run_uri,
    prune_checkpoints,
    read_manifest,
)
from rag_jobs.artifacts.step_index import record_step
from rag_jobs.config import step_config
from rag_jobs.errors import AlreadyCommitted, ConfigError, RagJobsError
from rag_jobs.models.device import device_kind, resolve_device, resolve_quantization
from rag_jobs.models.generator import cache_dir
from rag_jobs.progress import log
from rag_jobs.strategies.graph import Graph, StepSpec


def load_graph(store, run: RunRef) -> Graph:
    try:
        text = store.get_bytes(run.graph_key).decode("utf-8")
    except RagJobsError as exc:
        raise ConfigError(f"run {run.run_id!r} has no readable graph.json in {store.uri}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"run {run.run_id!r}: graph.json in {store.uri} is not UTF-8: {exc}") from exc
    return Graph.from_json(text)


class StepContext:
    """Everything a step body needs; bodies write their outputs into `out_dir` and return metrics."""

    def __init__(self, store, run: RunRef, graph: Graph, spec: StepSpec, cfg: Any, out_dir: Path):
        self.store, self.run, self.graph, self.spec, self.cfg = store, run, graph, spec, cfg
        self.out_dir = out_dir
        self.work_dir = out_dir.parent / f"{out_dir.name}-work"  # scratch (checkpoint staging), not committed
        self.label = spec.name
        self.extra: dict[str, Any] = {}
        self._device: str | None = None
        self.tracker = None  # a training step's TensorBoard writer (steps.training.fit), closed by validate
        self.trained_steps = 0

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(getattr(self.cfg, "device", "auto"))
        return self._device

    def input_step(self, role: str) -> StepRef:
        if role not in self.spec.inputs:
            raise ConfigError(f"step {self.spec.name!r} has no input {role!r}")
        return StepRef(self.run.run_id, self.spec.inputs[role])

    def has_input(self, role: str) -> bool:
        return role in self.spec.inputs

    def input_manifest(self, role: str):
        """The manifest of an input; a selection step stands for the grid child it selected."""
        ref = self.input_step(role)
        for _ in range(4):
            manifest = read_manifest(self.store, ref)
            if manifest is None:
                raise ConfigError(f"input {role!r} (step {ref.step!r}) of {self.spec.name!r} is not committed")
            selected = (manifest.extra or {}).get("selected")
            if not selected:
                return manifest
            ref = StepRef(self.run.run_id, selected)
        raise ConfigError(f"input {role!r} of {self.spec.name!r}: selection chain too deep")

    def resolved_input(self, role: str) -> str:
        """The step name that actually holds an input's files (a grid's selected child)."""
        return self.input_manifest(role).step

    def input_dir(self, role: str, files: list[str] | None = None) -> Path:
        """Download (and verify) a committed input step into the local cache; returns its folder."""
        manifest = self.input_manifest(role)
        dest = cache_dir() / "artifacts" / _safe(self.store.uri) / manifest.run_id / manifest.step / manifest.attempt
        return fetch_manifest(self.store, manifest, dest, files=files)

    def log(self, message: str) -> None:
        log(self.label, message)


def _safe(uri: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in uri)[-80:]


def run_step(kind: str, body: Callable[[StepContext], dict], argv: list[str] | None = None) -> int:
    """Parse `--run URI --step NAME`, run the body once, commit; returns the process exit code."""
    parser = argparse.ArgumentParser(prog=kind, description=f"rag-jobs step entrypoint: {kind}")
    parser.add_argument("--run", required=True, help="run URI: <store-uri>/runs/<run-id>")
    parser.add_argument("--step", required=True, help="step name in the run's graph.json")
    args = parser.parse_args(argv)
    interrupts.install()
    quiet_libraries()
    try:
        return _run(kind, args.run, args.step, body)
    except AlreadyCommitted as exc:
        log(args.step, f"another attempt committed this step first; nothing to do ({exc})")
        return 0
    except RagJobsError as exc:
        print(f"{kind}: error: {exc.one_line()}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{kind}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # an unexpected bug or fault: keep the traceback, let the Job retry
        traceback.print_exc()
        print(f"{kind}: error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1


def _run(kind: str, run_uri: str, step_name: str, body: Callable[[StepContext], dict]) -> int:
    store_uri, run = parse_run_uri(run_uri)
    store = open_store(store_uri)
    graph = load_graph(store, run)
    spec = graph.step(step_name)
    if spec.kind != kind:
        raise ConfigError(f"step {step_name!r} is a {spec.kind!r} step, not {kind!r}")
    ref = StepRef(run.run_id, spec.name)
    if read_manifest(store, ref) is not None:
        log(step_name, "already committed; skipping")
        return 0
    missing = [d for d in spec.deps if read_manifest(store, StepRef(run.run_id, d)) is None]
    if missing and (spec.needs == "all" or len(missing) == len(spec.deps)):
        raise ConfigError(f"step {step_name!r} needs {', '.join(missing)}, not committed")
    cfg = step_config(kind, spec.config)
    work = cache_dir() / "work"
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(tempfile.mkdtemp(prefix=f"{run.run_id}-{spec.name}-", dir=work))
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    try:
        ctx = StepContext(store, run, graph, spec, cfg, out_dir)
        log(step_name, f"start {kind} (run {run.run_id}, rag-jobs {__version__})")
        metrics = body(ctx) or {}
        wall_s = time.perf_counter() - t0
        dev_kind, dev_count = device_kind(ctx.device)
        inputs = {}
        for role, dep in spec.inputs.items():
            m = read_manifest(store, StepRef(run.run_id, dep))
            if m is not None:
                inputs[role] = {"step": dep, "attempt": m.attempt, "config_hash": graph.step_hash(dep)}
        meta = {
            "inputs": inputs,
            "config_hash": graph.step_hash(spec.name),
            "started_at": started.isoformat(),
            "finished_at": datetime.now(timezone.utc).isoformat(),
            "wall_s": wall_s,
            "device": {"kind": dev_kind, "count": dev_count},
            "metrics": metrics,
            "extra": {"kind": kind, "label": spec.label, "config": spec.config, **_resolved(cfg, ctx.device),
                      **ctx.extra},
        }
        commit_dir(store, ref, out_dir, meta=meta)
        log(step_name, f"committed in {wall_s:.1f}s")
        _index_step(store, ref, meta["config_hash"], step_name)
        _drop_checkpoints(store, ref, step_name)
        return 0
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(out_dir.parent / f"{out_dir.name}-work", ignore_errors=True)


def _resolved(cfg, device: str) -> dict:
    """What an `auto` setting became on this machine: the generator's quantization (nf4 or none)."""
    if not hasattr(cfg, "quantization"):
        return {}
    return {"quantization": resolve_quantization(cfg.quantization, device)}


def _index_step(store, ref: StepRef, config_hash: str, step_name: str) -> None:
    """Let later runs find this step by its config hash (cross-run reuse); the step is committed either way."""
    try:
        record_step(store, ref, config_hash)
    except RagJobsError as exc:
        log(step_name, f"warning: not recorded for reuse by other runs: {exc.one_line()}")


def _drop_checkpoints(store, ref: StepRef, step_name: str) -> None:
    """A committed step is never resumed: its checkpoints (weights + optimizer state) only cost storage."""
    try:
        dropped = prune_checkpoints(store, ref, keep=0)
    except RagJobsError as exc:  # the step is committed; a checkpoint left behind costs space, nothing else
        log(step_name, f"warning: checkpoints not removed: {exc.one_line()}")
        return
    if dropped:
        log(step_name, f"removed {len(dropped)} checkpoint(s) of the committed step")


def quiet_libraries() -> None:
    """Keep step logs to progress lines: no tqdm bars from the hub, transformers or datasets."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass
