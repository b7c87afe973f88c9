"""SIGKILL a training step (once in the middle of writing a checkpoint) or SIGTERM it: every resume continues
from the last committed checkpoint and ends bit-identical (sha256 of the adapter) to an uninterrupted run."""

from __future__ import annotations

import pytest
from faults_training import kill_and_resume, reference_sha, settings, sigterm_checkpoints_and_exits


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_embedder, tiny_generator):
    s = settings(tiny_embedder, tiny_generator)
    work = tmp_path_factory.mktemp("faults")
    return work, s, reference_sha(work, s)


@pytest.mark.slow
def test_sigkill_after_and_during_a_checkpoint_then_resume_is_bit_identical(setup):
    work, s, expected = setup
    fig = kill_and_resume(work, s, [("after-checkpoint", 4), ("mid-checkpoint", 8)], expected=expected)
    rows = fig["rows"]
    assert all(r["killed"] and not r["committed_when_killed"] for r in rows), rows
    assert rows[0]["checkpoints_when_resumed"][-1] >= 4
    assert rows[1]["checkpoints_when_resumed"] == [4]  # checkpoint 8 was cut off before its manifest
    assert all(r["resumed"] for r in rows), rows
    assert fig["resume_identical"] == "2/2", rows
    assert all(r["checkpoints_after_commit"] == [] for r in rows), rows  # a committed step keeps none


@pytest.mark.slow
def test_sigterm_checkpoints_exits_1_and_resumes_bit_identical(setup):
    work, s, expected = setup
    fig = sigterm_checkpoints_and_exits(work, s, expected=expected)
    assert fig["sigterm_exit_code"] == 1, fig
    assert fig["within_grace"] and fig["checkpointed"], fig
    assert fig["resumed"] and fig["identical_after_resume"], fig


@pytest.fixture(scope="module")
def setup_nf4(tmp_path_factory, tiny_embedder, tiny_generator):
    pytest.importorskip("bitsandbytes")
    s = settings(tiny_embedder, tiny_generator, train_limit=16, quantization="nf4")
    work = tmp_path_factory.mktemp("faults-nf4")
    return work, s, reference_sha(work, s)


@pytest.mark.slow
def test_a_4bit_qlora_step_killed_after_a_checkpoint_resumes_bit_identical(setup_nf4):
    """QLoRA (NF4 base on the CPU): the adapter of a run SIGKILLed after checkpoint 4, then resumed, is the
    adapter of an uninterrupted 4-bit run, byte for byte."""
    work, s, expected = setup_nf4
    fig = kill_and_resume(work, s, [("after-checkpoint", 4)], expected=expected)
    (row,) = fig["rows"]
    assert row["killed"] and not row["committed_when_killed"] and row["resumed"], row
    assert fig["resume_identical"] == "1/1", row
