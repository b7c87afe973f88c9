"""`rag-jobs export` and `rag-jobs ask` on a finished tiny two-phase run.

The bundle loads in a process that cannot import rag_jobs (sentence-transformers, transformers and peft only):
its query route gives the fine-tuned encoder's vectors, its document route the frozen base's, and the
generator with the adapter (and merged, in 16-bit) decodes what rag-jobs decodes. `ask` over the run's test
questions answers exactly what the evaluate step predicted, so the bundle's EM is the run's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from test_run_baseline import rag_jobs as _cli  # the CLI as a user runs it: a subprocess

TINY = ["--dataset", "demo", "--limit", "60", "--eval-limit", "6", "--train-limit", "8", "--val-limit", "4",
        "--batch-size", "4", "--device", "cpu", "--lr-grid", "1e-3"]

NO_RAG_JOBS = r"""
import json, sys
sys.modules["rag_jobs"] = None  # any import of rag_jobs raises ImportError
import numpy as np, torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
bundle, work = sys.argv[1], sys.argv[2]
job = json.load(open(f"{work}/job.json"))
emb = SentenceTransformer(f"{bundle}/embedder", device="cpu")
np.save(f"{work}/q.npy", emb.encode_query(job["questions"], normalize_embeddings=True))
np.save(f"{work}/d.npy", emb.encode_document(job["documents"], normalize_embeddings=True))
tok = AutoTokenizer.from_pretrained(f"{bundle}/generator")
ids = tok(job["prompt"], return_tensors="pt", add_special_tokens=False)
out = {}
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(f"{bundle}/generator"), f"{bundle}/adapter")
merged = AutoModelForCausalLM.from_pretrained(f"{bundle}/generator-merged")
assert merged.dtype == torch.float16, merged.dtype
for name, m in (("adapter", model), ("merged", merged.float())):
    m.eval()
    with torch.no_grad():
        g = m.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    out[name] = g[0, ids["input_ids"].shape[1]:].tolist()
# the merged 16-bit weights are the adapter's merge in full precision, rounded (and differ from the base)
full = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(f"{bundle}/generator"),
                                 f"{bundle}/adapter").merge_and_unload().state_dict()
base = AutoModelForCausalLM.from_pretrained(f"{bundle}/generator").state_dict()
half = merged.state_dict()
out["merge_err"] = max(float((half[k].float() - v).abs().max()) for k, v in full.items())
out["lora_delta"] = max(float((full[k] - base[k]).abs().max()) for k in full)
json.dump(out, open(f"{work}/generated.json", "w"))
"""


@pytest.mark.slow
def test_export_loads_without_rag_jobs_and_ask_answers_as_the_run_did(tmp_path, tiny_embedder, tiny_generator):
    import torch

    from rag_jobs.models import load_embedder, load_generator
    from rag_jobs.models.generation import format_prompt

    store = tmp_path / "store"
    res = _cli("run", "two-phase", "--in-process", "--store", str(store), *TINY, "--embedder", tiny_embedder,
               "--generator", tiny_generator, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    (run,) = list((store / "runs").iterdir())
    bundle = tmp_path / "bundle"
    res = _cli("export", str(run), "--out", str(bundle), "--merge", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "exported 2-Phase" in res.stdout
    desc = json.loads((bundle / "bundle.json").read_text())
    assert desc["embedder"]["query"] == "fine-tuned" and desc["generator"]["adapter"] == "adapter"
    assert "| 2-Phase |" in (bundle / "README.md").read_text()
    assert json.loads((bundle / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "generator"

    ev = json.loads((run / "evaluate-two-phase" / "_MANIFEST.json").read_text())
    preds = [json.loads(x) for x in (store / ev["files"]["predictions.jsonl"]["key"]).read_text().splitlines()]
    questions = [p["question"] for p in preds]
    documents = ["Warsaw is the capital of Poland.", "The pound is the currency of Jersey."]
    tok = load_generator(tiny_generator, device="cpu", quantization="none")[1]
    prompt = format_prompt(tok, questions[0], documents)
    work = tmp_path / "plain"
    work.mkdir()
    (work / "job.json").write_text(json.dumps({"questions": questions, "documents": documents, "prompt": prompt}))
    plain = subprocess.run([sys.executable, "-c", NO_RAG_JOBS, str(bundle), str(work)], capture_output=True,
                           text=True, timeout=600)
    assert plain.returncode == 0, plain.stderr[-3000:]

    sel = json.loads((run / "select-phase2" / "_MANIFEST.json").read_text())["extra"]["selected"]
    tuned = load_embedder(str(next((run / sel).glob("*/embedder"))), device="cpu")
    np.testing.assert_allclose(np.load(work / "q.npy"), tuned.encode(questions, normalize_embeddings=True),
                               atol=1e-5)
    base = load_embedder(tiny_embedder, device="cpu")
    np.testing.assert_allclose(np.load(work / "d.npy"), base.encode(documents, normalize_embeddings=True), atol=1e-5)
    assert not np.allclose(np.load(work / "q.npy"), base.encode(questions, normalize_embeddings=True), atol=1e-5)

    sel1 = json.loads((run / "select-phase1" / "_MANIFEST.json").read_text())["extra"]["selected"]
    model, tok = load_generator(tiny_generator, device="cpu", quantization="none",
                                adapter_dir=str(next((run / sel1).glob("*/adapter"))))
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        ours = model.eval().generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    generated = json.loads((work / "generated.json").read_text())
    assert generated["adapter"] == ours[0, ids["input_ids"].shape[1]:].tolist()
    assert generated["lora_delta"] > 0  # the adapter changed the weights the merge holds
    assert generated["merge_err"] < 2e-3  # merged = base + adapter, rounded to float16
    assert len(generated["merged"]) == len(generated["adapter"])

    qfile = tmp_path / "test.jsonl"
    qfile.write_text("".join(json.dumps({"question": q}) + "\n" for q in questions))
    res = _cli("ask", str(bundle), "--questions", str(qfile), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [r["answer"] for r in rows] == [p["prediction"] for p in preds]  # hence the run's EM
    assert [[s["id"] for s in r["sources"]] for r in rows] == [p["retrieved"] for p in preds]
    res = _cli("ask", str(bundle), questions[0], cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.startswith(f"Q: {questions[0]}\nA: "), res.stderr[-2000:]
    assert len([x for x in res.stdout.splitlines() if x.startswith("   ")]) == desc["prompt"]["k"]
    res = _cli("ask", str(run), questions[1], "--json", cwd=tmp_path)  # a run: exported into the cache first
    assert res.returncode == 0, res.stderr[-2000:]
    row = json.loads(res.stdout.strip().splitlines()[-1])
    assert row["question"] == questions[1] and len(row["sources"]) == desc["prompt"]["k"]
    assert [s["id"] for s in row["sources"]] == preds[1]["retrieved"]  # the same encoder and index
    res = _cli("ask", str(bundle), "--questions", str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert res.returncode == 2 and "nope.jsonl" in res.stderr
