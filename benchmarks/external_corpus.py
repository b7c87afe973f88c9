"""The paper's retrieval setup in small: HotPotQA questions over a MedRAG-layout corpus built from the samples.

    python benchmarks/external_corpus.py [--data-dir ../shared/data] [--limit 600] [--store /tmp/ext-store]
        [--work /tmp/ext-corpus] [--out benchmarks/results/external_corpus-hotpotqa.json]

1. Builds DIR/chunk/wiki_NN.jsonl in MedRAG's layout from the union of the samples' HotPotQA paragraphs
   (dev, train, train-extra): the distinct paragraphs of a title form its article, chunked as MedRAG chunked
   Wikipedia (rag_jobs.corpus.chunking: LangChain 1000/200, white space collapsed, ids <article>_<j>), several
   files of 5,000 rows.
2. Runs `rag-jobs run baseline --dataset hotpotqa:<dev sample> --corpus medrag:DIR --limit N` (MiniLM,
   SmolLM2-135M, this machine) and reports the corpus counts, the splits step's label-matching counts, the
   evaluate step's title-based Recall@5, answer-recall@5, EM and F1, and the run's wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import write_result  # noqa: E402

SAMPLES = ("hotpotqa_dev_sample.jsonl", "hotpotqa_train_sample.jsonl", "hotpotqa_train_sample_extra_amor.jsonl")


def build_medrag_dir(data_dir: Path, out: Path, rows_per_file: int = 5000) -> dict:
    from rag_jobs.corpus.chunking import chunk_document, make_splitter
    from rag_jobs.data import read_hotpotqa

    articles: dict[str, list[str]] = {}
    for name in SAMPLES:
        for p in read_hotpotqa(data_dir / name).corpus:
            paragraphs = articles.setdefault(p.title, [])
            if p.text not in paragraphs:
                paragraphs.append(p.text)
    splitter = make_splitter()
    (out / "chunk").mkdir(parents=True, exist_ok=True)
    for old in (out / "chunk").glob("*.jsonl"):
        old.unlink()
    per_article: Counter[int] = Counter()
    rows, n_file, f = 0, 0, None
    for i, (title, paragraphs) in enumerate(sorted(articles.items())):
        chunks = chunk_document(splitter, f"a{i}", title, "\n\n".join(paragraphs))
        per_article[len(chunks)] += 1
        for c in chunks:
            if f is None or rows % rows_per_file == 0:
                if f is not None:
                    f.close()
                f = open(out / "chunk" / f"wiki_{n_file:02d}.jsonl", "w", encoding="utf-8")
                n_file += 1
            f.write(json.dumps({"id": c.id, "title": c.title, "content": c.text,
                                "contents": f"{c.title}. {c.text}"}, ensure_ascii=False) + "\n")
            rows += 1
    if f is not None:
        f.close()
    return {"articles": len(articles), "chunks": rows, "files": n_file,
            "articles_by_chunk_count": dict(sorted(per_article.items()))}


def manifest(store: Path, run_id: str, step: str) -> dict:
    return json.loads((store / "runs" / run_id / step / "_MANIFEST.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--store", default="/tmp/ext-store")
    ap.add_argument("--work", default="/tmp/ext-corpus")
    ap.add_argument("--out", default=str(HERE / "results" / "external_corpus-hotpotqa.json"))
    args = ap.parse_args()
    data_dir, work = Path(args.data_dir), Path(args.work)
    corpus = build_medrag_dir(data_dir, work)
    print(json.dumps(corpus), flush=True)
    cmd = [sys.executable, "-m", "rag_jobs.cli", "run", "baseline", "--dataset",
           f"hotpotqa:{data_dir / SAMPLES[0]}", "--corpus", f"medrag:{work}", "--limit", str(args.limit),
           "--store", args.store, "--in-process"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(res.stdout[-3000:], res.stderr[-2000:], flush=True)
    if res.returncode:
        sys.exit(res.returncode)
    run_id = next(line.split("/runs/")[1].strip() for line in res.stdout.splitlines() if line.startswith("run: "))
    store = Path(args.store)
    ev, sp, co = (manifest(store, run_id, s) for s in ("evaluate", "splits", "corpus"))
    m = ev["metrics"]
    write_result("external_corpus", {
        "command": " ".join(["rag-jobs", *cmd[3:]]),
        "corpus_built": corpus,
        "corpus_step": {k: co["metrics"].get(k) for k in ("rows", "titles", "shards", "dropped_empty", "mean_chars")},
        "labels": sp["extra"]["dataset"]["labels"],
        "test": {"n": m["n"], "recall_at_5_titles": m["recall"], "answer_recall_at_5": m["answer_recall"],
                 "em": m.get("em"), "f1": m.get("f1"), "f1_rule": m.get("f1_rule")},
        "wall_s": wall,
        "step_wall_s": {s: manifest(store, run_id, s)["wall_s"] for s in ("corpus", "splits", "build-index",
                                                                           "evaluate")},
    }, args.out)


if __name__ == "__main__":
    main()
