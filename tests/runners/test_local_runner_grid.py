"""The local runner's rule for a grid selection: it goes on without children that failed for good (exit 2),
and waits for a re-run when a child may pass on a retry (exit 1), so the committed selection never misses it."""

from __future__ import annotations

import sys

import pytest

import rag_jobs.runners.local as local
from rag_jobs.strategies.graph import Graph, StepSpec


def _graph() -> Graph:
    children = {"child-00": "train.lr-1e-04", "child-01": "train.lr-1e-03"}
    steps = [StepSpec("train.lr-1e-04", "finetune-gen", {"lr": 1e-4}),
             StepSpec("train.lr-1e-03", "finetune-gen", {"lr": 1e-3}),
             StepSpec("select-gen", "select", {"select_by": "em"}, children, needs="any"),
             StepSpec("evaluate-ft-gen", "evaluate", {}, {"select": "select-gen"})]
    return Graph("grid-rule", "ft-gen", steps)


@pytest.fixture()
def codes(monkeypatch):
    """Each step's exit code, set by the test; the steps themselves are `python -c 'exit(code)'`."""
    table: dict[str, int] = {}

    def command(kind: str, run: str, step: str) -> list[str]:
        return [sys.executable, "-c", f"raise SystemExit({table.get(step, 0)})"]

    monkeypatch.setattr(local, "step_command", command)
    return table


def _states(outcomes) -> dict[str, tuple[str, int | None]]:
    return {name: (o.state, o.exit_code) for name, o in outcomes.items()}


def test_a_child_that_failed_for_good_does_not_stop_the_selection(tmp_path, codes):
    codes["train.lr-1e-03"] = 2  # a diverged loss: retrying cannot help
    out = _states(local.run_graph(_graph(), (tmp_path / "s").as_uri()))
    assert out["train.lr-1e-03"] == ("failed", 2)
    assert out["select-gen"][0] == "done" and out["evaluate-ft-gen"][0] == "done"


def test_a_child_that_may_pass_on_retry_holds_the_selection_back(tmp_path, codes):
    codes["train.lr-1e-03"] = 1  # out of memory, a store timeout: the re-run retries it
    out = _states(local.run_graph(_graph(), (tmp_path / "s").as_uri()))
    assert out["train.lr-1e-03"] == ("failed", 1)
    assert out["select-gen"][0] == "skipped" and out["evaluate-ft-gen"][0] == "skipped"
    codes["train.lr-1e-03"] = 0
    again = _states(local.run_graph(_graph(), (tmp_path / "s").as_uri()))
    assert again["train.lr-1e-03"][0] == "done" and again["select-gen"][0] == "done"
