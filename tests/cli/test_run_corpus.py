"""Questions here, corpus there: `rag-jobs run --corpus SPEC` as a user runs it (tiny embedder, retrieval only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag_jobs.corpus.chunking import chunk_document, make_splitter

TOPICS = ["Oslo", "Bergen", "Tromso", "Lima", "Cusco", "Quito", "Hanoi", "Hue", "Dakar", "Accra", "Lagos", "Kano"]


def _paragraph(t: str) -> list[str]:
    return [f"{t} is a city with a long history.", f" The river of {t} is called the {t} River.",
            f" {t} hosts a yearly festival of lights and music." * 3,
            f" The {t} Museum holds old maps of the coast and of the mountains around {t}."]


def _hotpotqa(path: Path, n: int, prefix: str = "q") -> Path:
    rows = []
    for i in range(n):
        a, b = TOPICS[i % len(TOPICS)], TOPICS[(i + 1) % len(TOPICS)]
        rows.append({"_id": f"{prefix}{i}", "question": f"Which river flows through {a}?", "answer": f"{a} River",
                     "supporting_facts": [[a, 1], [b, 3]], "context": [[a, _paragraph(a)], [b, _paragraph(b)]]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _medrag(root: Path) -> Path:
    """MedRAG's layout from the articles of TOPICS, chunked small so that every article has several chunks."""
    splitter = make_splitter(120, 30)
    (root / "chunk").mkdir(parents=True)
    for n, part in enumerate((TOPICS[:6], TOPICS[6:])):
        with open(root / "chunk" / f"wiki_{n:02d}.jsonl", "w") as f:
            for t in part:
                for p in chunk_document(splitter, t.lower(), t, "".join(_paragraph(t))):
                    f.write(json.dumps({"id": p.id, "title": p.title, "content": p.text,
                                        "contents": f"{p.title}. {p.text}"}) + "\n")
    return root


def rag_jobs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_jobs.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def _manifest(store: Path, step: str) -> dict:
    (run,) = [r for r in (store / "runs").iterdir() if (r / step / "_MANIFEST.json").exists()][:1]
    return json.loads((run / step / "_MANIFEST.json").read_text())


def _file(store: Path, step: str, name: str) -> list[dict]:
    """The JSON Lines rows of a committed file of a step (found through its manifest)."""
    (run,) = [r for r in (store / "runs").iterdir() if (r / step / "_MANIFEST.json").exists()][:1]
    key = json.loads((run / step / "_MANIFEST.json").read_text())["files"][name]["key"]
    return [json.loads(x) for x in (run / step / key.split(f"/{step}/", 1)[1]).read_text().splitlines()]


def test_baseline_over_a_medrag_corpus_counts_gold_titles_and_shares_the_corpus(tmp_path, tiny_embedder):
    corpus = _medrag(tmp_path / "medrag")
    store = tmp_path / "store"
    common = ["--corpus", f"medrag:{corpus}", "--store", str(store), "--embedder", tiny_embedder, "--device", "cpu",
              "--set", "evaluate.skip_generation=true", "--in-process"]
    first = rag_jobs("run", "baseline", "--dataset", f"hotpotqa:{_hotpotqa(tmp_path / 'h.jsonl', 20)}",
                     "--set", "data.split=[0.5,0.0,0.5]", *common, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    corpus_m = _manifest(store, "corpus")["metrics"]
    assert corpus_m["rows"] > 2 * len(TOPICS) and corpus_m["titles"] == len(TOPICS)
    splits_m = _manifest(store, "splits")
    labels = splits_m["extra"]["dataset"]["labels"]["test"]
    # sentence 1 of each first title fits a chunk; sentence 3 of the second title also does
    assert labels["questions_matched_by_sentence"] == 10 and labels["questions_unmatched"] == 0
    evaluate = _manifest(store, "evaluate")["metrics"]
    assert evaluate["recall_metric"] == "recall@5" and 0.0 <= evaluate["recall"] <= 1.0
    assert 0.0 <= evaluate["answer_recall"] <= 1.0 and evaluate["n"] == 10
    preds = _file(store, "evaluate", "predictions.jsonl")
    assert len(preds) == 10 and all(r["recall@5"] in (0.0, 0.5, 1.0) for r in preds)  # two gold titles each

    # another dataset over the same corpus files, copied elsewhere: the corpus step is shared by content
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "chunk").mkdir()
    for f in (corpus / "chunk").iterdir():
        (copy / "chunk" / f.name).write_bytes(f.read_bytes())
    second = rag_jobs("run", "index", "--dataset", f"hotpotqa:{_hotpotqa(tmp_path / 'h2.jsonl', 8, 'z')}",
                      *[a if not a.startswith("medrag:") else f"medrag:{copy}" for a in common], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "reuse corpus from run" in second.stdout and "reuse build-index from run" in second.stdout


def test_a_popqa_file_without_passages_against_a_jsonl_corpus(tmp_path, tiny_embedder):
    questions = tmp_path / "popqa.jsonl"
    questions.write_text("".join(json.dumps({"id": i, "question": f"What river flows through {t}?",
                                             "possible_answers": [f"{t} River"], "s_wiki_title": t}) + "\n"
                                 for i, t in enumerate(TOPICS)))
    corpus = tmp_path / "passages.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"{t}-{j}", "title": t, "text": s}) + "\n"
                              for t in TOPICS for j, s in enumerate(_paragraph(t))))
    store = tmp_path / "store"
    res = rag_jobs("run", "baseline", "--dataset", f"popqa:{questions}", "--corpus", f"jsonl:{corpus}",
                   "--test-dataset", f"popqa:{questions}", "--store", str(store), "--embedder", tiny_embedder,
                   "--device", "cpu", "--set", "evaluate.skip_generation=true", "--set", "data.split=[1.0,0.0,0.0]",
                   "--in-process", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    m = _manifest(store, "evaluate")["metrics"]
    assert m["n"] == len(TOPICS) and m["recall_metric"] == "recall@5"
    assert 0.0 <= m["recall"] <= 1.0 and 0.0 <= m["answer_recall"] <= 1.0
    labels = _manifest(store, "splits")["extra"]["dataset"]["labels"]["test"]
    assert labels["questions_matched_by_answer"] == len(TOPICS)


def test_a_test_dataset_is_exactly_the_test_split(tmp_path, tiny_embedder):
    main = _hotpotqa(tmp_path / "train.jsonl", 12, "t")
    held = _hotpotqa(tmp_path / "dev.jsonl", 5, "d")
    store = tmp_path / "store"
    res = rag_jobs("run", "baseline", "--dataset", f"hotpotqa:{main}", "--test-dataset", f"hotpotqa:{held}",
                   "--store", str(store), "--embedder", tiny_embedder, "--device", "cpu",
                   "--set", "evaluate.skip_generation=true", "--in-process", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    splits = _manifest(store, "splits")
    rows = _file(store, "splits", "splits.jsonl")
    assert sorted(r["id"] for r in rows if r["split"] == "test") == [f"d{i}" for i in range(5)]
    assert splits["extra"]["dataset"]["split_sources"]["test"] == f"hotpotqa:{held}"
    assert _manifest(store, "evaluate")["metrics"]["n"] == 5


@pytest.mark.parametrize("row, needle", [('{"id": "a", "title": "T"}', "w.jsonl:2: missing field 'content'"),
                                         ('{"id": "x_0", "title": "T", "content": "dup"}',
                                          "w.jsonl:2: duplicate passage id 'x_0'")])
def test_bad_corpus_rows_exit_2_and_commit_nothing(tmp_path, tiny_embedder, row, needle):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "w.jsonl").write_text('{"id": "x_0", "title": "T", "content": "ok"}\n' + row + "\n")
    store = tmp_path / "store"
    res = rag_jobs("run", "index", "--dataset", f"hotpotqa:{_hotpotqa(tmp_path / 'h.jsonl', 4)}", "--corpus",
                   f"medrag:{tmp_path / 'c'}", "--store", str(store), "--embedder", tiny_embedder, "--in-process",
                   cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle in res.stderr
    assert not list(store.rglob("_MANIFEST.json"))
