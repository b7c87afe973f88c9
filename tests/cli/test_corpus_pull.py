"""`rag-jobs corpus pull SPEC` commits a corpus once; `rag-jobs plan --corpus SPEC` sizes it from its manifest."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rag_jobs.cli import app
from rag_jobs.planning import Profile, save_profile

UNIT = Profile(device="cpu", gen_forward_tokens_per_s=1.0, gen_train_tokens_per_s=1.0, gen_decode_tokens_per_s=1.0,
               embed_passages_per_s=1.0, embed_train_questions_per_s=1.0)


def _docs(path):
    path.write_text("".join(json.dumps({"id": f"d{i}", "title": f"Doc {i}", "text": ("Some words here. " * 100)})
                            + "\n" for i in range(30)))
    return path


def test_pull_then_plan_reads_the_manifest_only(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    docs = _docs(tmp_path / "docs.jsonl")
    store = tmp_path / "store"
    res = CliRunner().invoke(app, ["corpus", "pull", f"docs:{docs}", "--store", str(store)])
    assert res.exit_code == 0, res.output
    (run,) = (store / "runs").iterdir()
    m = json.loads((run / "corpus" / "_MANIFEST.json").read_text())["metrics"]
    assert m["rows"] == 60 and m["titles"] == 30 and m["shards"] == 1  # 1,700 characters: 2 chunks of 1000/200
    assert "corpus: 60 passages, 30 titles" in res.output

    prof = tmp_path / "profile.json"
    save_profile(UNIT, prof)
    plan_args = ["plan", "--corpus", f"docs:{docs}", "--store", str(store), "--profile", str(prof),
                 "--train-questions", "1000", "--context-labels", "yes"]
    plan = CliRunner().invoke(app, plan_args)
    assert plan.exit_code == 0, plan.output
    assert "60 passages" in plan.output
    docs.write_text(docs.read_text().replace("Doc 0", "Doc zero"))  # other content: another corpus
    plan = CliRunner().invoke(app, plan_args)
    assert plan.exit_code == 2 and "not committed" in plan.output and "rag-jobs corpus pull" in plan.output


def test_pull_refuses_a_bad_spec_with_exit_2(tmp_path):
    res = CliRunner().invoke(app, ["corpus", "pull", "wiki:/x", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and "unknown corpus spec 'wiki:/x'" in res.output
    assert not (tmp_path / "s").exists()
