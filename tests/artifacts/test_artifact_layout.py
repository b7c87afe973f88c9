"""Key layout, typed references and run URIs."""

from __future__ import annotations

import time

import pytest

from rag_jobs.artifacts import layout
from rag_jobs.artifacts.layout import CheckpointRef, RunRef, StepRef, parse_run_key, parse_run_uri, run_uri
from rag_jobs.errors import ConfigError, StoreError

ATTEMPT = "0123abcd" + "f" * 16


@pytest.mark.parametrize("name", ["a", "0", "run-1", "ft_gen.lr-3e-05", "x" * 63])
def test_valid_names(name: str) -> None:
    assert RunRef(name).run_id == name
    assert StepRef(name, name).step == name


@pytest.mark.parametrize("name", ["", "A", "-a", ".a", "_a", "a/b", "a b", "x" * 64, "ü", "a\n"])
def test_invalid_names_raise_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="run id"):
        RunRef(name)
    with pytest.raises(ConfigError, match="step name"):
        StepRef("run", name)


def test_graph_json_is_not_a_step_name() -> None:
    with pytest.raises(ConfigError, match="reserved"):
        StepRef("run", "graph.json")


def test_keys() -> None:
    run = RunRef("r1")
    step = run.step("finetune-gen")
    assert run.graph_key == "runs/r1/graph.json"
    assert step.manifest_key == "runs/r1/finetune-gen/_MANIFEST.json"
    assert step.file_key(ATTEMPT, "adapter/model.safetensors") == (
        f"runs/r1/finetune-gen/{ATTEMPT}/adapter/model.safetensors"
    )
    ckpt = step.checkpoint(7)
    assert ckpt == CheckpointRef(step, 7)
    assert ckpt.manifest_key == "runs/r1/finetune-gen/checkpoints/00000007/_MANIFEST.json"
    assert (
        ckpt.file_key(ATTEMPT, "state.pt") == f"runs/r1/finetune-gen/checkpoints/00000007/{ATTEMPT}/state.pt"
    )
    assert step.run == run and (ckpt.run_id, ckpt.step) == ("r1", "finetune-gen")


def test_file_keys_validate_paths_and_attempts() -> None:
    step = StepRef("r", "s")
    for bad in ["../x", "/abs", "a//b", "a\\b", ""]:
        with pytest.raises(StoreError):
            step.file_key(ATTEMPT, bad)
    with pytest.raises(ConfigError, match="attempt"):
        step.file_key("not-hex", "x")


@pytest.mark.parametrize("n", [-1, 10**8, 1.0, True, "3"])
def test_checkpoint_numbers_are_validated(n: object) -> None:
    with pytest.raises(ConfigError, match="checkpoint number"):
        StepRef("r", "s").checkpoint(n)  # type: ignore[arg-type]


def test_attempt_ids_are_unique_hex_and_carry_their_start_time() -> None:
    ids = {layout.new_attempt_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(layout.is_attempt_id(i) for i in ids)
    assert abs(layout.attempt_started(layout.new_attempt_id()) - time.time()) <= 2
    assert layout.attempt_started(layout.new_attempt_id(now=1_000_000)) == 1_000_000
    assert not layout.is_attempt_id("checkpoints")


@pytest.mark.parametrize(
    ("uri", "store", "run_id"),
    [
        ("file:///data/store/runs/r1", "file:///data/store", "r1"),
        ("file:///data/store/runs/r1/", "file:///data/store", "r1"),
        ("s3://bucket/prefix/deeper/runs/exp-2", "s3://bucket/prefix/deeper", "exp-2"),
        ("s3://bucket/runs/exp-2", "s3://bucket", "exp-2"),
        ("/abs/path/runs/x", "/abs/path", "x"),
        ("rel/runs/x", "rel", "x"),
        ("runs/x", ".", "x"),
        ("file:///runs/x", "file:///", "x"),
        ("s3://b/runs/a/runs/x", "s3://b/runs/a", "x"),
    ],
)
def test_parse_run_uri(uri: str, store: str, run_id: str) -> None:
    assert parse_run_uri(uri) == (store, RunRef(run_id))


@pytest.mark.parametrize(
    "uri", ["s3://bucket/prefix", "s3://bucket/runs/Bad", "s3://b/runs/a/b", "s3://runs/x", ""]
)
def test_parse_run_uri_rejects_malformed(uri: str) -> None:
    with pytest.raises(ConfigError):
        parse_run_uri(uri)


def test_run_uri_is_the_inverse() -> None:
    run = RunRef("r9")
    for store in ["s3://b/p", "s3://b/p/", "file:///x/y"]:
        assert parse_run_uri(run_uri(store, run)) == (store.rstrip("/"), run)


def test_parse_run_key() -> None:
    run = RunRef("r")
    assert parse_run_key(run, "runs/r/graph.json").kind == "graph"
    assert parse_run_key(run, "runs/r/s/_MANIFEST.json") == layout.ParsedKey("manifest", step="s")
    assert parse_run_key(run, f"runs/r/s/{ATTEMPT}/a/b.txt") == layout.ParsedKey(
        "file", "s", None, ATTEMPT, "a/b.txt"
    )
    assert parse_run_key(run, "runs/r/s/checkpoints/00000003/_MANIFEST.json") == layout.ParsedKey(
        "manifest", step="s", checkpoint=3
    )
    assert parse_run_key(run, f"runs/r/s/checkpoints/00000003/{ATTEMPT}/x") == layout.ParsedKey(
        "file", "s", 3, ATTEMPT, "x"
    )
    for other in ["runs/r2/s/_MANIFEST.json", "runs/r/s/junk", "runs/r/s/checkpoints/3/_MANIFEST.json", "x"]:
        assert parse_run_key(run, other).kind == "other"
