"""Reliability figures: kills and resumes, interrupted uploads, duplicate Jobs, bad inputs, reconciliation.

Runs the same fault scenarios as tests/reliability (their functions live there) with more repetitions, and
prints every figure with its goal as JSON:

    python benchmarks/reliability.py                 # about 10 minutes on 2 CPU cores
    python benchmarks/reliability.py --quick         # fewer kills and rounds

Figures: resume_identical=k/k, half_visible=0/N, orphan_uploads_after_sweep=0, manifests_per_step=1,
inputs=N clean_rejections=N crashes=0 hangs=0 escapes=0, lost=0, and the exit-code contract of the Jobs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path[:0] = [str(HERE), str(TESTS), str(TESTS / "reliability")]

from _common import write_result  # noqa: E402


def training(work: Path, quick: bool) -> dict:
    from faults_training import kill_and_resume, reference_sha, settings, sigterm_checkpoints_and_exits
    from tiny_models import make_tiny_embedder, make_tiny_generator

    s = settings(make_tiny_embedder(work / "tiny-embedder"), make_tiny_generator(work / "tiny-generator"))
    expected = reference_sha(work, s)
    kills = [("after-checkpoint", 4), ("mid-checkpoint", 8)]
    kills += [("random", 25.0)] * (1 if quick else 3) + ([] if quick else [("mid-checkpoint", 4)])
    fig = kill_and_resume(work, s, kills, expected=expected, seed=1)
    term = sigterm_checkpoints_and_exits(work, s, expected=expected)
    return {"resume_identical": fig["resume_identical"], "kills": fig["rows"], "sigterm": term,
            "goal_met": fig["identical"] == fig["runs"] and term["sigterm_exit_code"] == 1
            and term["within_grace"] and term["identical_after_resume"]}


def storage(work: Path, quick: bool) -> dict:
    import boto3
    from faults_storage import aws_env, duplicate_execution, interrupted_uploads
    from moto_server import moto_server

    with moto_server() as endpoint, aws_env():
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        up_bucket, dup_bucket = (f"rel-{uuid.uuid4().hex[:10]}" for _ in range(2))
        client.create_bucket(Bucket=up_bucket)
        client.create_bucket(Bucket=dup_bucket)
        up = interrupted_uploads(work / "uploads", endpoint, up_bucket)
        dup = duplicate_execution(work / "dups", endpoint, dup_bucket, rounds=2 if quick else 5,
                                  process_rounds=1 if quick else 3)
    rec = up["reconcile_commit_store"]
    lost = rec["lost"]
    return {
        "half_visible": f"{up['half_visible']}/{up['uploads_faulted']}",
        "orphan_uploads_before_sweep": up["orphan_uploads_before_sweep"],
        "orphan_uploads_after_sweep": up["orphan_uploads_after_sweep"],
        "manifests_per_step": dup["manifests_per_step"], "duplicate_rounds": dup["rounds"],
        "overwrites": dup["overwrites"], "loser_exit_clean": f"{dup['loser_exit_clean']}/{dup['losers']}",
        "lost": lost,
        "goal_met": up["half_visible"] == 0 and up["orphan_uploads_after_sweep"] == 0
        and dup["manifests_per_step"] == 1 and dup["overwrites"] == 0 and lost == 0,
    }


def exit_codes() -> dict:
    """The contract (2 = bad input, 1 = transient, 0 = already committed) and the Jobs' podFailurePolicy."""
    from rag_jobs.errors import (
        EXIT_BAD_INPUT,
        EXIT_TRANSIENT,
        AlreadyCommitted,
        ConfigError,
        DataError,
        IntegrityError,
        ModelError,
        StoreError,
        TransientError,
    )
    from rag_jobs.runners.k8s.config import ClusterConfig
    from rag_jobs.runners.k8s.render import render
    from rag_jobs.strategies import RunSettings, build_graph

    codes = {cls.__name__: cls("x").exit_code for cls in (ConfigError, DataError, ModelError, StoreError,
                                                           IntegrityError, TransientError, AlreadyCommitted)}
    policies = [j["spec"]["podFailurePolicy"]["rules"] for j in
                render(build_graph("two-phase", RunSettings(gpus=2)), ClusterConfig(), "s3://b/p")]
    fail_on_2 = all(any(r["action"] in ("FailJob", "FailIndex")  # a grid fails the child's index only
                        and r.get("onExitCodes", {}).get("values") == [EXIT_BAD_INPUT] for r in rules)
                    for rules in policies)
    ignore_disruption = all(any(r["action"] == "Ignore" and any(c.get("type") == "DisruptionTarget"
                                                                for c in r.get("onPodConditions", []))
                                for r in rules) for rules in policies)
    ok = (all(v == EXIT_BAD_INPUT for k, v in codes.items() if k not in ("TransientError", "AlreadyCommitted"))
          and codes["TransientError"] == EXIT_TRANSIENT and codes["AlreadyCommitted"] == 0
          and fail_on_2 and ignore_disruption)
    return {"codes": codes, "jobs": len(policies), "fail_job_on_exit_2": fail_on_2,
            "ignore_disruption": ignore_disruption, "goal_met": ok}


def inputs(work: Path, quick: bool) -> dict:
    import faults_inputs as F
    from tiny_models import make_tiny_embedder, make_tiny_generator

    embedder, generator = make_tiny_embedder(work / "tiny-embedder"), make_tiny_generator(work / "tiny-generator")
    groups = {f"rows-{reader}": (lambda r, reader=reader: F.run_dataset_row_faults(r, reader,
                                                                                  max_examples=20 if quick else 60))
              for reader in ("hotpotqa", "popqa", "jsonl")}
    groups.update({
        "dataset-files": F.run_dataset_file_faults, "index": F.run_index_faults,
        "index-forged-meta": F.run_index_forged_meta_faults,
        "model-files": lambda r: F.run_model_file_faults(r, embedder, generator),
        "checkpoint-store": F.run_checkpoint_store_faults, "checkpoint-folder": F.run_checkpoint_folder_faults,
        "config": F.run_config_faults, "unused-overrides": F.run_unused_override_faults, "cli": F.run_cli_faults,
        "cli-config-file": F.run_cli_config_file_faults, "s3-credentials": F.run_s3_credential_faults,
        "paths": F.run_path_faults, "graph-json": F.run_graph_file_faults,
    })
    keys = ("inputs", "must_reject", "clean_rejections", "accepted", "crashes", "hangs", "escapes", "wrong_accepts",
            "wrong_rejections", "untidy_rejections", "code_executed")
    total = dict.fromkeys(keys, 0)
    per_group, failures = {}, []
    for name, fn in groups.items():
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        fig = fn(folder)
        per_group[name] = {k: fig.get(k, 0) for k in keys}
        for k in keys:
            total[k] += int(fig.get(k, 0))
        failures += [f"{name}: {f}" for f in fig.get("failures", [])]
    bad = ("crashes", "hangs", "escapes", "wrong_accepts", "wrong_rejections", "untidy_rejections", "code_executed")
    return {"inputs": total["inputs"], "must_reject": total["must_reject"], **{k: total[k] for k in keys[2:]},
            "groups": per_group, "failures": failures[:50],
            "goal_met": total["clean_rejections"] >= total["must_reject"] and all(total[k] == 0 for k in bad)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer kills and rounds")
    ap.add_argument("--out", default=None, help="JSON result path (default bench-results/reliability.json)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAG_JOBS_CACHE", tempfile.mkdtemp(prefix="rag-jobs-rel-cache-"))
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="rag-jobs-reliability-") as tmp:
        work = Path(tmp)
        for name, fn in (("exit_codes", exit_codes), ("inputs", lambda: inputs(work / "inputs", args.quick)),
                         ("storage", lambda: storage(work / "storage", args.quick)),
                         ("training", lambda: training(work / "training", args.quick))):
            t0 = time.perf_counter()
            result[name] = fn()
            result[name]["seconds"] = round(time.perf_counter() - t0, 1)
    result["figures"] = {
        "resume_identical": result["training"]["resume_identical"],
        "half_visible": result["storage"]["half_visible"],
        "orphan_uploads_after_sweep": result["storage"]["orphan_uploads_after_sweep"],
        "manifests_per_step": result["storage"]["manifests_per_step"],
        "inputs": result["inputs"]["inputs"], "must_reject": result["inputs"]["must_reject"],
        "clean_rejections": result["inputs"]["clean_rejections"],
        "accepted_valid": result["inputs"]["accepted"], "wrong_accepts": result["inputs"]["wrong_accepts"],
        "crashes": result["inputs"]["crashes"], "hangs": result["inputs"]["hangs"],
        "escapes": result["inputs"]["escapes"],
        "lost": result["storage"]["lost"],
    }
    result["goal_met"] = all(result[k]["goal_met"] for k in ("exit_codes", "inputs", "storage", "training"))
    write_result("reliability", result, args.out)
    sys.exit(0 if result["goal_met"] else 1)


if __name__ == "__main__":
    main()
