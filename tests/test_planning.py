"""`rag-jobs plan`: the cost model by hand, the paper's recommendation rules, the CLI, a measured profile."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest
from typer.testing import CliRunner

from rag_jobs.cli import app
from rag_jobs.planning import Profile, Workload, estimate, load_profile, measure_profile, recommend, save_profile

UNIT = Profile(device="unit", gen_forward_tokens_per_s=1.0, gen_train_tokens_per_s=1.0, gen_decode_tokens_per_s=1.0,
               embed_passages_per_s=1.0, embed_train_questions_per_s=1.0)
SMALL = Workload(train=10, validation=2, test=2, passages=100, passage_tokens=10, question_tokens=5, answer_tokens=1,
                 k=2, grid=3, pool=4)


def test_estimates_by_hand():
    # one passage prompt 16 tokens, k=2 passages 26; validation 2 x (26 + 1) = 54 s per child
    est = {k: v.hours * 3600 for k, v in estimate(SMALL, UNIT).items()}
    assert est["Ft. Embed."] == pytest.approx(3 * (10 + 54))
    assert est["Ft. Gen."] == pytest.approx(3 * (10 * 26 + 54))
    assert est["Indp."] == pytest.approx(est["Ft. Embed."] + est["Ft. Gen."])
    phase1 = 3 * (10 * 2 * 16 + 54)
    assert est["2-Phase"] == pytest.approx(phase1 + 3 * (10 + 10 * 2 * 16 + 54))
    assert est["2-Phase (cached)"] == pytest.approx(phase1 + 10 * 4 * 16 + 3 * (10 + 54))
    assert est["2-Phase (concat, cached)"] == pytest.approx(est["Ft. Gen."] + 10 * 4 * 16 + 3 * (10 + 54))
    assert est["RAG-Tok."] == est["RAG-Seq."] == pytest.approx(3 * (10 * 2 * 16 + 10 + 54))


def test_cached_phase_two_pays_off_once_the_grid_scores_more_than_the_pool():
    big_grid = Workload(**{**asdict(SMALL), "grid": 9, "pool": 10, "k": 5})
    est = estimate(big_grid, UNIT)
    assert est["2-Phase (cached)"].hours < est["2-Phase"].hours
    assert est["Ft. Embed."].hours < est["Indp."].hours < est["2-Phase"].hours


def test_recommendation_follows_the_paper():
    assert recommend(SMALL)[0] == "independent"
    no_labels = Workload(**{**asdict(SMALL), "has_context_labels": False})
    assert recommend(no_labels)[0] == "two-phase"
    assert recommend(Workload(**{**asdict(no_labels), "known_lrs": True}))[0] == "rag-token"


def test_profile_rejects_non_positive_throughputs():
    with pytest.raises(ValueError, match="gen_decode_tokens_per_s"):
        Profile(**{**asdict(UNIT), "gen_decode_tokens_per_s": 0.0})


def test_cli_plan_for_the_demo_set(tmp_path):
    prof = tmp_path / "profile.json"
    save_profile(Profile(**{**asdict(UNIT), "device": "cpu"}), prof)
    res = CliRunner().invoke(app, ["plan", "--dataset", "demo", "--profile", str(prof), "--gpus", "8xA10", "--paper"])
    assert res.exit_code == 0, res.output
    assert "recommended: independent" in res.output
    assert "| 2-Phase (cached) |" in res.output and "| 61.0 |" in res.output
    assert "not 'A10'" in res.output  # a CPU profile is not an A10 one, and the plan says so
    res = CliRunner().invoke(app, ["plan", "--dataset", "demo", "--profile", str(prof), "--context-labels", "no",
                                   "--passages", "29900000", "--train-questions", "90447"])
    assert res.exit_code == 0 and "recommended: two-phase" in res.output and "29,900,000 passages" in res.output


@pytest.mark.parametrize("args, message", [
    (["--gpus", "eightxA10"], "--gpus"),
    (["--context-labels", "maybe"], "--context-labels"),
    ([], "--profile"),
])
def test_cli_plan_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    prof = tmp_path / "p.json"
    save_profile(UNIT, prof)
    extra = [] if "--profile" == message else ["--profile", str(prof)]
    res = CliRunner().invoke(app, ["plan", "--dataset", "demo", *extra, *args])
    assert res.exit_code == 2 and message in res.output


def test_a_broken_profile_file_is_a_config_error(tmp_path):
    from rag_jobs.errors import ConfigError

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"device": "x"}))
    with pytest.raises(ConfigError, match="not a valid profile"):
        load_profile(bad)


def test_measure_profile_with_tiny_models(tiny_embedder, tiny_generator, tmp_path):
    prof = measure_profile(tiny_embedder, tiny_generator, device="cpu", seq_len=32, batch=2)
    for value in asdict(prof).values():
        if isinstance(value, float):
            assert value > 0 and math.isfinite(value)
    save_profile(prof, tmp_path / "p.json")
    assert load_profile(tmp_path / "p.json") == prof
