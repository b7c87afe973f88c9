"""Bad input or bad config is a typed UserError with a one-line message (exit code 2 through the CLI and the
entrypoints); nothing crashes with a traceback, hangs, runs code or writes outside its folder.

The cases live in faults_inputs.py (plain functions returning a tally); each test here runs one group and
prints every non-clean case when it fails.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from faults_inputs import (
    MUTATIONS,
    run_checkpoint_folder_faults,
    run_checkpoint_store_faults,
    run_cli_config_file_faults,
    run_cli_faults,
    run_config_faults,
    run_dataset_file_faults,
    run_dataset_row_faults,
    run_detector_selftest,
    run_graph_file_faults,
    run_index_faults,
    run_index_forged_meta_faults,
    run_model_file_faults,
    run_path_faults,
    run_s3_credential_faults,
    run_unused_override_faults,
    summary,
)

BAD = ("crashes", "hangs", "escapes", "code_executed", "wrong_accepts", "wrong_rejections", "untidy_rejections")


def assert_clean(result: dict[str, Any], *, fuzz: bool = False) -> None:
    """No crash, hang, escape or payload; every must-reject input a clean rejection, every other accepted.

    `fuzz`: generated inputs whose right outcome is not known beforehand may be rejected or accepted (an
    accepted one is still checked, record by record); the must-reject ones must all be clean rejections.
    """
    report = summary(result)
    print(report)
    bad = {k: result[k] for k in BAD if result[k]}
    assert not bad, f"{bad}\n  {report}"
    assert result["inputs"] > 0, report
    if fuzz:
        assert result["clean_rejections"] + result["accepted"] == result["inputs"], report
        assert result["clean_rejections"] >= result["must_reject"], report
    else:
        assert result["clean_rejections"] == result["must_reject"], report
        assert result["accepted"] == result["inputs"] - result["must_reject"], report


def assert_all_rejected(result: dict[str, Any]) -> None:
    assert_clean(result)
    assert result["clean_rejections"] == result["inputs"], summary(result)


# --- the harness itself -----------------------------------------------------------------------------------


def test_the_classifier_tells_every_outcome_apart(tmp_path):
    result = run_detector_selftest(tmp_path)
    print(summary(result))
    assert {k: result[k] for k in ("inputs", "clean_rejections", "accepted", "crashes", "hangs", "escapes",
                                   "code_executed", "wrong_accepts", "wrong_rejections", "untidy_rejections")} == {
        "inputs": 11, "clean_rejections": 4, "accepted": 2, "crashes": 2, "hangs": 1,
        "escapes": 3,  # a file written outside, the bait deleted, the payload's marker (it lies outside too)
        "code_executed": 1, "wrong_accepts": 1, "wrong_rejections": 1, "untidy_rejections": 1,
    }


def test_the_row_fuzzer_catches_a_reader_that_lets_nul_through(tmp_path, monkeypatch):
    import rag_jobs.data._common as common

    monkeypatch.setattr(common, "_BAD_CHARS", re.compile("(?!x)x"))  # a check that never matches
    result = run_dataset_row_faults(tmp_path, "jsonl", max_examples=len(MUTATIONS) * 3)
    assert result["wrong_accepts"] > 0, summary(result)
    assert any("nul@" in f or "surrogate@" in f for f in result["failures"]), summary(result)


# --- datasets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["hotpotqa", "popqa", "jsonl"])
def test_generated_dataset_rows(tmp_path, reader):
    result = run_dataset_row_faults(tmp_path, reader, max_examples=66)
    assert_clean(result, fuzz=True)
    assert set(result["kinds"]) == set(MUTATIONS), result["kinds"]  # every kind of bad row was generated


def test_dataset_files_specs_and_attached_corpora(tmp_path):
    assert_clean(run_dataset_file_faults(tmp_path))


# --- index ------------------------------------------------------------------------------------------------


def test_index_empty_corpus_wrong_dimension_corrupt_and_truncated_files(tmp_path):
    assert_clean(run_index_faults(tmp_path))


def test_index_folder_whose_meta_does_not_protect_it(tmp_path):
    """load_index checks files against index_meta.json's sha256 only when the meta lists them, and trusts
    FAISS / numpy / json with whatever it then reads: a damaged folder must still be an IntegrityError."""
    assert_all_rejected(run_index_forged_meta_faults(tmp_path))


# --- weights ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_faults(tmp_path_factory, tiny_embedder, tiny_generator) -> dict[str, Any]:
    return run_model_file_faults(tmp_path_factory.mktemp("model-faults"), tiny_embedder, tiny_generator)


def test_corrupt_or_malicious_weights_are_model_errors_and_never_run(model_faults):
    result = model_faults
    report = summary(result)
    print(report)
    for key in ("crashes", "hangs", "escapes", "code_executed", "wrong_accepts", "wrong_rejections"):
        assert result[key] == 0, f"{key}={result[key]}\n  {report}"
    assert result["clean_rejections"] + result["untidy_rejections"] == result["inputs"], report


def test_weight_errors_are_one_line(model_faults):
    """The same cases: the ModelError's own message is one line (it quotes the library's error verbatim)."""
    assert_all_rejected(model_faults)


# --- checkpoints ------------------------------------------------------------------------------------------


def test_resume_from_a_tampered_checkpoint_in_the_store(tmp_path):
    assert_clean(run_checkpoint_store_faults(tmp_path))


def test_resume_from_a_damaged_checkpoint_folder(tmp_path):
    assert_all_rejected(run_checkpoint_folder_faults(tmp_path))


# --- config -----------------------------------------------------------------------------------------------


def test_invalid_config_values(tmp_path):
    assert_clean(run_config_faults(tmp_path))


def test_invalid_settings_the_strategy_does_not_use(tmp_path):
    """`rag-jobs run baseline --batch-size -1`: the value is invalid whether or not the baseline trains."""
    assert_all_rejected(run_unused_override_faults(tmp_path))


def test_cli_bad_values_exit_2_with_one_line(tmp_path):
    assert_all_rejected(run_cli_faults(tmp_path))


def test_cli_config_file_that_is_not_text(tmp_path):
    assert_all_rejected(run_cli_config_file_faults(tmp_path))


# --- store ------------------------------------------------------------------------------------------------


def test_s3_missing_wrong_or_unreachable(tmp_path):
    assert_all_rejected(run_s3_credential_faults(tmp_path))


def test_names_keys_and_paths_stay_inside(tmp_path):
    assert_all_rejected(run_path_faults(tmp_path))


def test_corrupt_graph_json(tmp_path):
    assert_all_rejected(run_graph_file_faults(tmp_path))
